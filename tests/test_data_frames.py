"""In-memory data: frames prepare exactly like the same rows in a Parquet file, keyed by content."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from datafiles import data_config, decode, write_criteo

from recloss.config import TableSchema
from recloss.data import prepare_dataset, prepare_frame
from recloss.data.formats import ArrowReader
from recloss.data.schema import MISSING_INDEX, OOV_INDEX
from recloss.data.splits import SPLITS
from recloss.errors import ConfigError, DataError

BINARY_ADVICE = "; name other labels in data.table.classes, negative first: [-1, 1], [no, yes]"

TABLE = TableSchema(label="clicked", categorical=["city", "age"], numeric=["price"])
VIEWS = getattr(pa, "string_view", pa.string)()  # polars's strings (pyarrow >= 16)
SPLIT = (0.8, 0.1, 0.1)


def columns(rows: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    """Columns of mixed kinds: string tokens with gaps, integer tokens, floats with NaN."""
    rng = np.random.default_rng(seed)
    price = rng.lognormal(1.0, 1.5, rows)
    price[rng.random(rows) < 0.1] = np.nan
    city = rng.choice(np.array(["paris", "rome", "oslo", "lima", "", "kyiv"]), rows)
    return {
        "clicked": rng.integers(0, 2, rows),
        "city": city,
        "age": rng.integers(18, 40, rows),
        "price": price,
        "unused": rng.random(rows),
    }


def frame_config(tmp_path, **settings):
    settings.setdefault("split", SPLIT)
    return data_config(tmp_path, "parquet", table=TABLE, chunk_rows=64, **settings)


def assert_same_data(a, b) -> None:
    assert a.schema == b.schema
    assert a.meta["rows"] == b.meta["rows"] and a.meta["label_counts"] == b.meta["label_counts"]
    assert a.meta["encoding"] == b.meta["encoding"]
    for va, vb in zip(a.encoding.vocabs, b.encoding.vocabs, strict=True):
        assert va.values.equals(vb.values)
    for split in SPLITS:
        sa, sb = a.split(split), b.split(split)
        np.testing.assert_array_equal(sa.x_cat, sb.x_cat)
        np.testing.assert_array_equal(sa.y, sb.y)
        assert (sa.x_num is None) == (sb.x_num is None)
        if sa.x_num is not None:
            np.testing.assert_array_equal(sa.x_num, sb.x_num)


@pytest.mark.parametrize("kind", ["arrow", "numpy", "lists"])
@pytest.mark.parametrize("numeric", ["bucket", "continuous"])
def test_frame_prepares_like_the_same_rows_in_a_parquet_file(tmp_path, kind, numeric):
    cols = columns()
    table = pa.table(cols)
    pq.write_table(table, tmp_path / "rows.parquet", row_group_size=50)
    cfg = frame_config(tmp_path, numeric=numeric)
    from_file = prepare_dataset(
        cfg.model_copy(update={"path": str(tmp_path / "rows.parquet")}), progress=False
    )
    data = {"arrow": table, "numpy": cols, "lists": {k: v.tolist() for k, v in cols.items()}}
    from_frame = prepare_frame(data[kind], cfg)
    assert from_frame.root != from_file.root and from_frame.meta["dataset"] == "frame"
    assert_same_data(from_frame, from_file)
    assert sum(from_frame.meta["rows"].values()) == 300 and from_frame.meta["rows"]["test"] == 30
    assert len(set(decode(from_frame, "city", "test"))) > 2  # the splits hold real rows


def test_frame_keeps_types_like_parquet(tmp_path):
    table = pa.table(
        {
            "clicked": pa.array([0, 1, 1, 0, 1], pa.int8()),
            "city": pa.array(["a", "b", None, "a", "b"]).dictionary_encode(),
            "age": pa.array([3, 7, 3, None, 7], pa.int64()),
            "price": [0.5, 10.0, None, 3.0, float("inf")],
        }
    )
    ds = prepare_frame(table, frame_config(tmp_path, split=(1.0, 0.0, 0.0)))
    assert ds.split("train").y.tolist() == [0, 1, 1, 0, 1]
    assert decode(ds, "city") == ["a", "b", None, "a", "b"]
    assert decode(ds, "age") == ["3", "7", "3", None, "7"]
    assert decode(ds, "price")[2] is None and decode(ds, "price")[4] is None  # inf: missing


def test_same_frame_reuses_its_cache_and_another_frame_does_not(tmp_path, monkeypatch):
    cfg = frame_config(tmp_path)
    first = prepare_frame(columns(), cfg)
    assert first.meta["sources"][0]["rows"] == 300 and len(first.meta["sources"][0]["sha256"]) == 64

    def fail(*args, **kwargs):
        raise AssertionError("the frame was read again")

    with monkeypatch.context() as patched:
        patched.setattr(ArrowReader, "chunks", fail)
        again = prepare_frame(pa.table(columns()), cfg)  # same content, another object
        assert again.root == first.root and again.meta == first.meta
        unused = {**columns(), "unused": np.zeros(300)}  # a column the table does not name
        assert prepare_frame(unused, cfg).root == first.root
    edited = columns()
    edited["city"][7] = "bern"  # fits the <U5 array
    other = prepare_frame(edited, cfg)
    assert other.root != first.root
    assert "bern" in decode(other, "city", "train") + decode(other, "city", "valid") + decode(
        other, "city", "test"
    )
    assert prepare_frame(columns(seed=1), cfg).root not in (first.root, other.root)
    assert prepare_frame(columns(), frame_config(tmp_path, min_count=2)).root != first.root


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_column_is_a_config_error_naming_it(tmp_path):
    cols = columns()
    del cols["city"]
    with pytest.raises(ConfigError) as err:
        prepare_frame(cols, frame_config(tmp_path))
    assert one_line(err).startswith("data.table.categorical: column 'city' is not in frame")
    assert "clicked" in one_line(err)  # the columns it has are listed
    indexed = pd.DataFrame(columns()).set_index("city")
    with pytest.raises(ConfigError) as err:
        prepare_frame(indexed, frame_config(tmp_path))
    assert one_line(err) == (
        "data.table.categorical: 'city' is the frame's index, not one of its columns; pass "
        "frame.reset_index()"
    )
    assert prepare_frame(indexed.reset_index(), frame_config(tmp_path)).schema.n_fields > 0


def test_bad_label_is_a_data_error_naming_column_and_row(tmp_path):
    cols = columns(rows=100)
    cols["clicked"][70] = 2
    with pytest.raises(DataError) as err:
        prepare_frame(cols, frame_config(tmp_path))
    assert one_line(err) == f"frame:row 71: label clicked: '2' is not 0 or 1{BINARY_ADVICE}"


def test_labels_minus_one_and_one_are_refused_with_the_setting_that_reads_them(tmp_path):
    cols = columns(rows=100)
    cols["clicked"] = np.where(np.asarray(cols["clicked"]) == 1, 1, -1)
    with pytest.raises(DataError) as err:
        prepare_frame(cols, frame_config(tmp_path))
    assert one_line(err).endswith(f"label clicked: '-1' is not 0 or 1{BINARY_ADVICE}")
    table = TABLE.model_copy(update={"classes": [-1, 1]})
    ds = prepare_frame(cols, data_config(tmp_path, "parquet", table=table))  # rows in order
    assert ds.split("train").y.tolist() == (cols["clicked"] == 1).astype(int).tolist()


def test_empty_or_malformed_data_is_rejected_in_one_line(tmp_path):
    cfg = frame_config(tmp_path)
    empty = {k: v[:0] for k, v in columns().items()}
    with pytest.raises(DataError, match=r"^frame: no data rows$"):
        prepare_frame(empty, cfg)
    with pytest.raises(DataError, match=r"^frame: no columns$"):
        prepare_frame({}, cfg)
    with pytest.raises(
        ConfigError,
        match=r"^data\.table: in-memory data needs a table schema .*; frame has the columns "
        r"clicked, city, age, price, unused$",
    ):
        prepare_frame(columns(), cfg.model_copy(update={"table": None}))
    short = {**columns(), "age": np.arange(10)}
    with pytest.raises(DataError, match=r"^frame: column 'age' has 10 rows, column 'clicked'"):
        prepare_frame(short, cfg)
    wide = {**columns(), "city": np.zeros((300, 2))}
    with pytest.raises(DataError, match=r"^frame: column 'city' has shape \(300, 2\)"):
        prepare_frame(wide, cfg)
    with pytest.raises(TypeError, match="not ndarray"):
        prepare_frame(np.zeros((300, 4)), cfg)


def test_multiclass_frame_labels(tmp_path):
    cols = columns()
    cols["clicked"] = np.arange(300) % 3
    ds = prepare_frame(cols, frame_config(tmp_path, task="multiclass"))
    assert ds.schema.task == "multiclass" and ds.schema.num_classes == 3
    assert ds.meta["label_counts"] == [100, 100, 100]


def test_encode_frame_maps_unseen_values_to_oov_like_encode_file(tmp_path):
    ds = prepare_frame(columns(), frame_config(tmp_path))
    new = {
        "clicked": np.array([1, 0, 1]),
        "city": np.array(["rome", "atlantis", ""]),
        "age": np.array([20, 99, 25]),
        "price": np.array([5.0, np.nan, 1e9]),
    }
    encoded = ds.encode_frame(new)
    city, age = ds.schema.cat_fields.index("city"), ds.schema.cat_fields.index("age")
    rome = ds.encoding.vocabs[city].values.to_pylist().index("rome") + 2
    assert encoded.x_cat[:, city].tolist() == [rome, OOV_INDEX, MISSING_INDEX]
    assert encoded.x_cat[1, age] == OOV_INDEX and encoded.x_cat[0, age] > OOV_INDEX
    assert encoded.y.tolist() == [1, 0, 1]
    # The same rows as a Parquet file, through encode_file: the same codes.
    pq.write_table(pa.table(new), tmp_path / "new.parquet")
    from_file = ds.encode_file(tmp_path / "new.parquet")
    np.testing.assert_array_equal(encoded.x_cat, from_file.x_cat)
    np.testing.assert_array_equal(encoded.y, from_file.y)


@pytest.mark.parametrize("source", ["frame", "csv", "parquet"])
def test_a_table_data_set_reads_a_new_file_as_parquet_or_csv_by_its_content(tmp_path, source):
    if source == "frame":
        ds = prepare_frame(columns(), frame_config(tmp_path))
    else:
        table = pa.table(columns())
        path = tmp_path / f"rows.{source}"
        write = pq.write_table if source == "parquet" else pa_csv.write_csv
        write(table, path)
        ds = prepare_dataset(data_config(tmp_path, source, path, table=TABLE, split=SPLIT))
    new = pa.table({"clicked": [1, 0], "city": ["rome", "atlantis"], "age": [20, 99]})
    new = new.append_column("price", pa.array([5.0, 1.5]))
    pq.write_table(new, tmp_path / "new.data")
    pa_csv.write_csv(new, tmp_path / "new.csv")
    from_parquet, from_csv = (
        ds.encode_file(tmp_path / "new.data"),
        ds.encode_file(tmp_path / "new.csv"),
    )
    np.testing.assert_array_equal(from_parquet.x_cat, from_csv.x_cat)
    assert from_csv.y.tolist() == [1, 0]
    with pytest.raises(DataError, match="missing.csv"):
        ds.encode_file(tmp_path / "missing.csv")


def test_rows_in_memory_for_a_data_set_without_named_columns_say_so(tmp_path):
    criteo = prepare_dataset(data_config(tmp_path, "criteo", write_criteo(tmp_path / "t.txt")))
    with pytest.raises(ConfigError, match="^criteo: rows in memory need a data set whose columns"):
        criteo.encode_frame(columns())


def test_nan_in_an_object_column_of_strings_is_a_missing_value(tmp_path):
    cols = columns()
    city = cols["city"].astype(object)
    city[3], city[4] = np.nan, None  # as pandas leaves gaps in a column of strings
    cols["city"] = city
    ds = prepare_frame(cols, frame_config(tmp_path, split=(1.0, 0.0, 0.0)))
    assert decode(ds, "city")[3:5] == [None, None]


def test_encode_frame_keeps_row_order_and_caches_by_content(tmp_path):
    ds = prepare_frame(columns(), frame_config(tmp_path, numeric="continuous"))
    new = columns(rows=200, seed=5)  # more rows than a chunk (64)
    forward = ds.encode_frame(new)
    backward = ds.encode_frame({k: v[::-1].copy() for k, v in new.items()})
    assert len(forward) == 200
    np.testing.assert_array_equal(backward.x_cat, forward.x_cat[::-1])
    np.testing.assert_array_equal(backward.x_num, forward.x_num[::-1])
    np.testing.assert_array_equal(backward.y, forward.y[::-1])
    assert forward.y.tolist() == new["clicked"].tolist()
    assert len({tuple(r) for r in forward.x_cat.tolist()}) > 100  # rows differ: order matters
    encoded = sorted(p.name for p in (ds.root / "encoded").iterdir())
    assert len(encoded) == 2
    ds.encode_frame(pa.table(new))  # the same content again: cached
    assert sorted(p.name for p in (ds.root / "encoded").iterdir()) == encoded


def test_encode_frame_bad_label_names_the_row(tmp_path):
    ds = prepare_frame(columns(), frame_config(tmp_path))
    new = {**columns(rows=5), "clicked": np.array([0, 1, 0, 1, 7])}
    with pytest.raises(DataError) as err:
        ds.encode_frame(new)
    assert one_line(err) == f"frame:row 5: label clicked: '7' is not 0 or 1{BINARY_ADVICE}"


def test_pandas_dataframe_is_prepared_like_its_columns(tmp_path):
    cols = columns()
    frame = pd.DataFrame(cols, index=np.arange(300) * 7 + 3)  # an index is not a column
    frame["city"] = frame["city"].astype("category")
    cfg = frame_config(tmp_path)
    from_pandas = prepare_frame(frame, cfg)
    assert_same_data(from_pandas, prepare_frame(cols, cfg))
    assert from_pandas.schema.cat_fields == ("city", "age", "price")
    encoded = from_pandas.encode_frame(frame.iloc[:10])
    np.testing.assert_array_equal(
        encoded.x_cat, from_pandas.encode_frame(pa.table(cols)).x_cat[:10]
    )


def test_float_and_boolean_tokens_are_written_as_pandas_writes_them_integers_as_such(tmp_path):
    table = pa.table(
        {
            "clicked": [0, 1, 1, 0, 1],
            "city": pa.array([True, False, None, True, False]).dictionary_encode(),  # a category
            "age": [20.0, 3.5, None, float("nan"), 1e-5],  # integer ids with gaps become floats
            "price": ["7.0", "7.5", "-3.00", "1.0e2", "x.0"],  # text: only integers lose ".0"
            "shop": pa.array(["a", "b", None, "a", "c"], VIEWS).dictionary_encode(),
        }
    )
    table_schema = TableSchema(label="clicked", categorical=["city", "age", "price", "shop"])
    cfg = frame_config(tmp_path, split=(1.0, 0.0, 0.0)).model_copy(update={"table": table_schema})
    ds = prepare_frame(table, cfg)
    assert decode(ds, "city") == ["True", "False", None, "True", "False"]
    assert decode(ds, "age") == ["20", "3.5", None, None, "1e-05"]
    assert decode(ds, "price") == ["7", "7.5", "-3", "1.0e2", "x.0"]
    assert decode(ds, "shop") == ["a", "b", None, "a", "c"]  # a polars category's layout


def test_a_frame_and_the_csv_pandas_writes_of_it_encode_alike(tmp_path):
    rng = np.random.default_rng(0)
    user = rng.integers(0, 40, 300).astype(float)
    user[::9] = np.nan  # a column of integer ids with gaps: pandas keeps it as floats
    frame = pd.DataFrame(
        {"clicked": rng.integers(0, 2, 300), "city": rng.random(300) < 0.5, "age": user,
         "price": rng.random(300)}
    )  # fmt: skip
    frame.to_csv(tmp_path / "rows.csv", index=False)
    ds = prepare_frame(frame, frame_config(tmp_path))
    from_csv, from_frame = ds.encode_file(tmp_path / "rows.csv"), ds.encode_frame(frame)
    np.testing.assert_array_equal(from_csv.x_cat, from_frame.x_cat)
    assert (from_csv.x_cat[:, :2] != OOV_INDEX).all()  # every value known to the model


def test_integer_ids_as_text_and_as_pandas_floats_are_the_same_values(tmp_path):
    ids = np.arange(300) % 40
    frame = pd.DataFrame({"clicked": ids % 2, "city": ids.astype(float), "age": ids % 7,
                          "price": np.ones(300)})  # fmt: skip
    frame.loc[::9, "city"] = np.nan  # gaps: pandas writes 20.0, a database export 20
    frame.to_csv(tmp_path / "pandas.csv", index=False)
    frame.astype({"city": "Int64"}).to_csv(tmp_path / "export.csv", index=False)
    assert ",20.0," in (tmp_path / "pandas.csv").read_text()
    assert ",20.0," not in (tmp_path / "export.csv").read_text()
    encoded = []
    for source in ("export.csv", "pandas.csv"):
        cfg = data_config(
            tmp_path / "c" / source, "csv", tmp_path / source, table=TABLE, split=SPLIT
        )
        ds = prepare_dataset(cfg)
        encoded += [ds.encode_frame(frame).x_cat, ds.encode_file(tmp_path / "pandas.csv").x_cat]
        encoded.append(ds.encode_file(tmp_path / "export.csv").x_cat)
        assert (encoded[-1][:, 0] != OOV_INDEX).all()
    for other in encoded[1:]:
        np.testing.assert_array_equal(other, encoded[0])


def test_a_field_whose_new_values_are_nearly_all_unknown_is_warned_of(tmp_path, caplog):
    ds = prepare_frame(columns(), frame_config(tmp_path))
    renamed = {**columns(seed=3), "city": np.char.add("c-", columns(seed=3)["city"])}
    ds.encode_frame(columns(seed=3))
    assert not caplog.records
    encoded = ds.encode_frame(renamed)
    assert (encoded.x_cat[:, 0] == OOV_INDEX).all()
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "frame: field city: 300 of its 300 values (100%) are unknown to the model, which knows "
        "values such as 'kyiv', "
    )
    caplog.clear()
    ds.encode_frame(renamed)  # from the cache: warned again
    assert len(caplog.records) == 1
    caplog.clear()
    ds.encode_frame({k: v[:99] for k, v in renamed.items()})  # too few values to tell
    assert not caplog.records


def test_a_field_unknown_in_the_data_sets_own_rows_too_is_not_warned_of(tmp_path, caplog):
    ids = {**columns(), "age": np.arange(300)}  # an id per row: validation's are unknown too
    ds = prepare_frame(ids, frame_config(tmp_path))
    ds.encode_frame({**columns(seed=3), "age": np.arange(300, 600)})
    assert not caplog.records


def test_only_the_most_recently_used_encodings_are_kept(tmp_path):
    ds = prepare_frame(columns(), frame_config(tmp_path))

    def encode(frame) -> str:
        """The name of the folder holding the frame's encoding."""
        before = {p.name for p in (ds.root / "encoded").glob("*")}  # no folder before the first
        ds.encode_frame(frame)
        return ({p.name for p in (ds.root / "encoded").iterdir()} - before).pop()

    frames = [columns(rows=20, seed=seed) for seed in range(6)]
    names = [encode(frame) for frame in frames[:5]]
    assert {p.name for p in (ds.root / "encoded").iterdir()} == set(names[1:])  # the oldest went
    ds.encode_frame(frames[1])  # used again: now the most recent
    names.append(encode(frames[5]))
    assert {p.name for p in (ds.root / "encoded").iterdir()} == {names[i] for i in (1, 3, 4, 5)}


def test_a_column_of_mixed_types_twice_or_of_lists_is_one_line_naming_it(tmp_path):
    mixed = pd.DataFrame({**columns(rows=6), "city": [1, "x", None, 2, "y", "z"]})
    with pytest.raises(DataError) as err:
        prepare_frame(mixed, frame_config(tmp_path))
    message = one_line(err)  # Arrow's own words in between
    assert message.startswith("frame: column 'city': ") and "'x'" in message
    assert message.endswith("; give the column values of one type (text: .astype(str))")
    twice = pd.DataFrame(columns(rows=6)).rename(columns={"age": "city"})
    with pytest.raises(DataError) as err:
        prepare_frame(twice, frame_config(tmp_path))
    assert one_line(err) == "frame: column 'city' appears 2 times; rename all but one"
    lists = {**columns(rows=6), "age": pa.array([[1], [2, 3], None, [], [4], [5]])}
    with pytest.raises(DataError) as err:
        prepare_frame(lists, frame_config(tmp_path))
    assert one_line(err) == (
        "frame: column 'age' holds list<item: int64> values; a column is one value per row (a "
        "list per row, a multi-valued field, is not supported)"
    )


def test_an_encoding_in_a_read_only_cache_is_used_as_it_is(tmp_path, monkeypatch):
    ds = prepare_frame(columns(), frame_config(tmp_path))
    first = ds.encode_frame(columns(seed=4)).x_cat.copy()

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr("recloss.data.cache.os.utime", read_only)
    np.testing.assert_array_equal(ds.encode_frame(columns(seed=4)).x_cat, first)
