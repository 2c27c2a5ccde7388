"""Every reader on small files written here: fields, side features, labels, numeric transforms."""

from __future__ import annotations

import gzip
import math
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datafiles import (
    GENRES,
    data_config,
    decode,
    write_avazu,
    write_csv,
    write_frappe,
    write_libfm,
    write_ml1m,
    write_ml20m,
    write_ml100k_grouplens,
    write_recbole_atomic,
)
from pydantic import ValidationError

from recloss.config import TableSchema, config_from_dict
from recloss.data import prepare_dataset
from recloss.data.encode import BUCKET_KEY_OFFSET, bucket_keys
from recloss.data.schema import MISSING_INDEX
from recloss.errors import ConfigError, DataError


def criteo_line(label: int, ints: list, cats: list) -> str:
    ints = [*ints, *[""] * (13 - len(ints))]
    cats = [*cats, *["a"] * (26 - len(cats))]
    return "\t".join(str(v) for v in [label, *ints, *cats])


def test_criteo_fields_missing_values_and_buckets(tmp_path):
    lines = [
        criteo_line(1, [0, -1], ["68fd1e64", ""]),
        criteo_line(0, [1, ""], ["", "x"]),
        criteo_line(1, [3, 2], ["68fd1e64", "x"]),
        criteo_line(0, [1000, -2], ["05db9164", "x"]),
    ]
    path = tmp_path / "train.txt"
    path.write_text("\n".join(lines) + "\n")
    ds = prepare_dataset(data_config(tmp_path, "criteo", tmp_path, min_count=1), progress=False)
    assert ds.schema.cat_fields[:2] == ("C1", "C2") and ds.schema.cat_fields[26:28] == ("I1", "I2")
    assert len(ds.schema.cat_fields) == 39 and ds.schema.num_fields == ()
    assert ds.split("train").y.tolist() == [1, 0, 1, 0]
    assert decode(ds, "C1") == ["68fd1e64", None, "68fd1e64", "05db9164"]
    assert decode(ds, "C2") == [None, "x", "x", "x"]
    # I1 = 1 (raw) and I1 = 3 (bucket floor(ln(3)^2) = 1) must not share an index.
    assert decode(ds, "I1") == [0, 1, BUCKET_KEY_OFFSET + 1, BUCKET_KEY_OFFSET + 47]
    assert decode(ds, "I2") == [-1, None, 2, -2]


def test_bucket_keys_keep_small_values_and_log_square_the_rest():
    keys = bucket_keys(pa.array([-3, 0, 1, 2, 3, None, 1000, 2.5, 7.9]))
    expected = [-3, 0, 1, 2, 3 + math.floor(math.log(3) ** 2), None, 3 + 47, 3, 3 + 4]
    assert keys.to_pylist() == expected


def test_criteo_continuous_numeric_fields_are_standardised_log_values(tmp_path):
    ints = [[5, 1], [0, ""], [-4, 3], [20, 7]]
    lines = [criteo_line(i % 2, row, []) for i, row in enumerate(ints)]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    cfg = data_config(tmp_path, "criteo", tmp_path / "train.txt", numeric="continuous")
    ds = prepare_dataset(cfg, progress=False)
    assert ds.schema.num_fields[:2] == ("I1", "I2") and len(ds.schema.cat_fields) == 26
    x = ds.split("train").x_num
    assert x.dtype == np.float32 and x.shape == (4, 13)
    logs = np.log1p([5, 0, 0, 20])  # negative values clip to 0
    np.testing.assert_allclose(x[:, 0], (logs - logs.mean()) / logs.std(), rtol=1e-5)
    assert x[1, 1] == 0.0  # missing -> the mean
    assert np.all(x[:, 2:] == 0)  # all-missing fields


def test_avazu_drops_id_and_derives_hour_and_weekday(tmp_path):
    path = write_avazu(tmp_path / "train.csv", rows=30)
    ds = prepare_dataset(data_config(tmp_path, "avazu", path, min_count=1), progress=False)
    fields = ds.schema.cat_fields
    assert fields[:2] == ("hour", "weekday") and "id" not in fields and "click" not in fields
    assert len(fields) == 23
    # Rows 0..23 fall on 2014-10-21 (a Tuesday, weekday 1) at hours 0..23; rows 24.. on Wednesday.
    assert decode(ds, "hour")[:26] == [str(h) for h in range(24)] + ["0", "1"]
    assert decode(ds, "weekday")[:26] == ["1"] * 24 + ["2"] * 2


def test_avazu_header_without_click_is_rejected(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("id,hour,C1\n1,14102100,5\n")
    with pytest.raises(Exception, match=r"train.csv:1: Avazu header lacks column\(s\) click"):
        prepare_dataset(data_config(tmp_path, "avazu", path), progress=False)


def ratings_of(folder, name: str) -> list[float]:
    text = (folder / name).read_text(encoding="latin-1").splitlines()
    if name.endswith(".csv") or name.endswith(".inter"):
        text = text[1:]
    sep = "::" if name.endswith(".dat") else "," if name.endswith(".csv") else "\t"
    return [float(line.split(sep)[2]) for line in text]


def test_movielens_100k_grouplens_layout_with_side_features(tmp_path):
    folder = write_ml100k_grouplens(tmp_path / "ml-100k", rows=200)
    ds = prepare_dataset(data_config(tmp_path, "movielens-100k", folder), progress=False)
    s = ds.schema
    assert s.task == "multiclass" and s.num_classes == 5
    assert s.cat_fields == (
        "user_id",
        "item_id",
        "age",
        "gender",
        "occupation",
        "zip",
        "year",
        "genre1",
        "genre2",
        "genre3",
    )
    stars = ratings_of(folder, "u.data")
    assert ds.split("train").y.tolist() == [int(r) - 1 for r in stars]
    users = {
        line.split("|")[0]: line.split("|") for line in (folder / "u.user").read_text().splitlines()
    }
    items = {
        line.split("|")[0]: line.split("|")
        for line in (folder / "u.item").read_text(encoding="latin-1").splitlines()
    }
    rows = list(zip(decode(ds, "user_id"), decode(ds, "item_id"), strict=True))
    for (user, _item), age, zip_code, gender in zip(
        rows, decode(ds, "age"), decode(ds, "zip"), decode(ds, "gender"), strict=True
    ):
        raw_age = int(users[user][1])
        expected = max(c for c in (1, 18, 25, 35, 45, 50, 56) if c <= raw_age or c == 1)
        assert age == str(expected)
        assert zip_code == users[user][4][:3] and gender == users[user][2]
    for (_, item), g1, g2, year in zip(
        rows, decode(ds, "genre1"), decode(ds, "genre2"), decode(ds, "year"), strict=True
    ):
        flagged = [g for g, f in zip(GENRES, items[item][5:], strict=True) if f == "1"]
        assert [g1, g2] == (flagged + [None, None])[:2]
        date = items[item][2]
        assert year == (date[-4:] if date else None)


def test_movielens_100k_recbole_atomic_layout(tmp_path):
    folder = write_recbole_atomic(tmp_path / "atomic", rows=150)
    ds = prepare_dataset(data_config(tmp_path, "movielens-100k", folder), progress=False)
    assert ds.schema.cat_fields[:3] == ("user_id", "item_id", "age")
    assert ds.split("train").y.tolist() == [int(r) - 1 for r in ratings_of(folder, "ml-100k.inter")]
    item_lines = (folder / "ml-100k.item").read_text().splitlines()[1:]
    genres = {line.split("\t")[0]: line.split("\t")[3].split(" ") for line in item_lines}
    for item, g1, g3 in zip(
        decode(ds, "item_id"), decode(ds, "genre1"), decode(ds, "genre3"), strict=True
    ):
        assert g1 == genres[item][0]
        assert g3 == (genres[item][2] if len(genres[item]) > 2 else None)
    assert set(decode(ds, "age")) <= {"1", "18", "25", "35", "45", "50", "56"}


def test_movielens_1m_double_colon_layout(tmp_path):
    folder = write_ml1m(tmp_path / "ml-1m", rows=120)
    ds = prepare_dataset(data_config(tmp_path, "movielens-1m", folder), progress=False)
    assert ds.split("train").y.tolist() == [int(r) - 1 for r in ratings_of(folder, "ratings.dat")]
    users = {
        line.split("::")[0]: line.split("::")
        for line in (folder / "users.dat").read_text().splitlines()
    }
    for user, age, zip_code, occupation, year, item in zip(
        decode(ds, "user_id"),
        decode(ds, "age"),
        decode(ds, "zip"),
        decode(ds, "occupation"),
        decode(ds, "year"),
        decode(ds, "item_id"),
        strict=True,
    ):
        assert age == users[user][2] and occupation == users[user][3]
        assert zip_code == users[user][4][:3]
        assert year == f"19{60 + int(item) % 40}"  # from "Star Wars: Episode i (19xx)"


def test_movielens_20m_half_stars_round_up_into_classes(tmp_path):
    folder = write_ml20m(tmp_path / "ml-20m", rows=200, items=10)
    ds = prepare_dataset(data_config(tmp_path, "movielens-20m", folder), progress=False)
    assert ds.schema.cat_fields == ("user_id", "item_id", "year", "genre1", "genre2", "genre3")
    stars = ratings_of(folder, "ratings.csv")
    assert ds.split("train").y.tolist() == [math.ceil(r) - 1 for r in stars]
    assert {0.5, 3.5, 5.0} <= set(stars)
    no_genres = [
        g
        for item, g in zip(decode(ds, "item_id"), decode(ds, "genre1"), strict=True)
        if item == "10"
    ]
    assert no_genres and set(no_genres) == {None}  # "(no genres listed)"
    years = {
        item: year for item, year in zip(decode(ds, "item_id"), decode(ds, "year"), strict=True)
    }
    assert years["3"] == "1953"  # quoted title "Movie, The 3 (1953)"


@pytest.mark.parametrize("name", ["movielens-100k", "movielens-1m", "movielens-20m"])
def test_a_movielens_download_still_zipped_is_sent_to_be_extracted(tmp_path, name, monkeypatch):
    folder = write_ml20m(tmp_path / "ml-20m", rows=20)
    with zipfile.ZipFile(tmp_path / "ml-20m.zip", "w") as archive:
        archive.write(folder / "ratings.csv", "ml-20m/ratings.csv")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=f"^{name}: ml-20m.zip is a zip archive; extract it and "):
        prepare_dataset(data_config(tmp_path, name, Path("ml-20m.zip")))
    (folder / "movies.csv").unlink()  # a file given for its folder: the folder is named whole
    with pytest.raises(DataError, match=f"^movielens-20m: {folder} lacks movies.csv; expected "):
        prepare_dataset(data_config(tmp_path, "movielens-20m", Path("ml-20m/ratings.csv")))


def test_movielens_binary_task_is_rating_at_least_4(tmp_path):
    folder = write_ml20m(tmp_path / "ml-20m", rows=200)
    cfg = data_config(tmp_path, "movielens-20m", folder, task="binary")
    ds = prepare_dataset(cfg, progress=False)
    assert ds.schema.task == "binary" and ds.schema.num_classes == 2
    stars = ratings_of(folder, "ratings.csv")
    assert ds.split("train").y.tolist() == [int(r >= 4) for r in stars]


@pytest.mark.parametrize("signed", [True, False])
def test_libfm_labels_and_positional_fields(tmp_path, signed):
    path = write_libfm(tmp_path / "data.libfm", rows=50, fields=4, signed=signed)
    ds = prepare_dataset(data_config(tmp_path, "libfm", path), progress=False)
    lines = path.read_text().splitlines()
    assert ds.schema.cat_fields == ("f1", "f2", "f3", "f4")
    assert ds.split("train").y.tolist() == [int(line.split()[0] == "1") for line in lines]
    assert decode(ds, "f3") == [line.split()[3].split(":")[0] for line in lines]


def test_frappe_uses_its_own_split_files(tmp_path):
    folder = write_frappe(tmp_path / "frappe", rows=(40, 7, 9))
    ds = prepare_dataset(data_config(tmp_path, "frappe", folder), progress=False)
    assert ds.meta["rows"] == {"train": 40, "valid": 7, "test": 9}
    assert ds.meta["splits_from"] == "files" and len(ds.schema.cat_fields) == 10
    test_lines = (folder / "frappe.test.libfm").read_text().splitlines()
    assert ds.split("test").y.tolist() == [int(line.split()[0] == "1") for line in test_lines]


TABLE = TableSchema(label="label", categorical=["color", "shape"], numeric=["size"])


def test_csv_with_table_schema(tmp_path):
    path = write_csv(tmp_path / "t.csv", rows=60)
    ds = prepare_dataset(data_config(tmp_path, "csv", path, table=TABLE), progress=False)
    assert ds.schema.cat_fields == ("color", "shape", "size")
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    assert ds.split("train").y.tolist() == [int(r[0]) for r in rows]
    assert decode(ds, "color") == [r[1] for r in rows]
    sizes = decode(ds, "size")
    for raw, key in zip((r[3] for r in rows), sizes, strict=True):
        if raw == "":
            assert key is None
        else:
            v = int(raw)
            assert key == (v if v <= 2 else BUCKET_KEY_OFFSET + math.floor(math.log(v) ** 2))


def test_a_csv_file_that_starts_with_a_byte_order_mark_reads_as_without_it(tmp_path):
    plain = write_csv(tmp_path / "plain.csv", rows=30)
    marked = tmp_path / "excel.csv"  # spreadsheets write UTF-8 with a byte order mark
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    a, b = (prepare_dataset(data_config(tmp_path, "csv", p, table=TABLE)) for p in (plain, marked))
    assert a.schema == b.schema and decode(b, "color") == decode(a, "color")
    assert b.split("train").y.tolist() == a.split("train").y.tolist()


@pytest.mark.parametrize(
    "columns, message",
    [
        ({"categorical": ["color", "label"]}, "categorical: 'label' is the label column"),
        ({"numeric": ["size", "size"]}, "numeric: 'size' is listed twice"),
        ({"categorical": ["size"], "numeric": ["size"]}, "'size' is both categorical and numeric"),
    ],
)
def test_a_table_uses_each_column_once_and_never_the_label_as_a_feature(columns, message):
    with pytest.raises(ValidationError, match=message):
        TableSchema(label="label", **columns)


def test_continuous_numeric_columns_alone_are_refused_before_any_data(tmp_path):
    table = TableSchema(label="label", numeric=["size", "weight"])
    with pytest.raises(ValidationError, match="no categorical column, .* or use numeric: bucket"):
        data_config(tmp_path, "csv", tmp_path / "t.csv", table=table, numeric="continuous")
    path = write_csv(tmp_path / "t.csv", rows=20)  # bucketed, they are categorical fields
    bucketed = prepare_dataset(data_config(tmp_path, "csv", path, table=table))
    assert bucketed.schema.cat_fields == ("size", "weight")


def test_a_file_of_another_separator_gets_a_hint(tmp_path):
    path = write_csv(tmp_path / "t.csv", rows=5, sep=";")
    with pytest.raises(ConfigError, match="; is the separator ';'. set data.table.separator$"):
        prepare_dataset(data_config(tmp_path, "csv", path, table=TABLE))


def test_a_tab_typed_in_a_shell_is_a_tab_and_a_longer_separator_is_refused(tmp_path):
    path = write_csv(tmp_path / "t.tsv", rows=20, sep="\t")
    typed = TABLE.model_validate(TABLE.model_dump() | {"separator": "\\t"})  # --set ...=\t
    assert typed.separator == "\t"
    ds = prepare_dataset(data_config(tmp_path, "csv", path, table=typed), progress=False)
    assert ds.schema.cat_fields == ("color", "shape", "size")
    for separator in (";;", "", '"', "\n"):
        with pytest.raises(ValidationError, match="is not one character .*; a tab is \\\\t"):
            TableSchema(label="label", separator=separator)


def test_numbers_padded_with_spaces_are_numbers_as_pandas_reads_them(tmp_path):
    (tmp_path / "t.csv").write_text("color, size, label\nred, 3.5, 1\nblue, 10 , 0\nred,, 1\n")
    table = TableSchema(label="label", categorical=["color"], numeric=["size"])
    cfg = data_config(tmp_path, "csv", tmp_path / "t.csv", table=table, numeric="continuous")
    ds = prepare_dataset(cfg, progress=False)
    assert ds.split("train").y.tolist() == [1, 0, 1]
    assert np.isnan(ds.split("train").x_num[:, 0]).tolist() == [False, False, False]  # mean-filled
    assert decode(ds, "color") == ["red", "blue", "red"]
    (tmp_path / "u.csv").write_text("color,size,label\nred,3, x \n")
    with pytest.raises(DataError, match=r"u\.csv:2: label label: ' x ' is not 0 or 1; name other"):
        prepare_dataset(data_config(tmp_path, "csv", tmp_path / "u.csv", table=table))


def test_a_folder_of_compressed_csv_files_reads_each_as_a_single_one_is_read(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    for k, (suffix, codec) in enumerate({".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}.items()):
        plain = write_csv(tmp_path / f"p{k}.csv", rows=10, seed=k).read_bytes()
        with pa.CompressedOutputStream(str(folder / f"part-{k}.csv{suffix}"), codec) as out:
            out.write(plain)
    cfg = data_config(tmp_path, "csv", folder, table=TABLE)
    assert len(prepare_dataset(cfg, progress=False).split("train")) == 30


def test_csv_without_header_names_columns_by_position(tmp_path):
    path = write_csv(tmp_path / "t.tsv", rows=20, sep=";", header=False)
    table = TableSchema(label="0", categorical=["1"], numeric=["4"], separator=";", header=False)
    cfg = data_config(tmp_path, "csv", path, table=table, numeric="continuous")
    ds = prepare_dataset(cfg, progress=False)
    assert ds.schema.cat_fields == ("1",) and ds.schema.num_fields == ("4",)
    assert ds.split("train").x_num.shape == (20, 1)
    by_number = config_from_dict({"data": {"table": {"label": 0, "categorical": [1, "x"]}}})
    assert by_number.data.table.label == "0" and by_number.data.table.categorical == ["1", "x"]


def test_a_header_longer_than_the_sample_is_read_whole(tmp_path):
    names = [f"column_number_{i}" for i in range(6000)]  # a header of about 100 kB
    rows = "".join(",".join(["1"] * 6000 + [str(r % 2)]) + "\n" for r in range(10))
    (tmp_path / "wide.csv").write_text(",".join([*names, "y"]) + "\n" + rows)
    table = TableSchema(label="y", categorical=["column_number_0", "column_number_5999"])
    ds = prepare_dataset(data_config(tmp_path, "csv", tmp_path / "wide.csv", table=table))
    assert ds.split("train").y.tolist() == [0, 1] * 5


def test_a_file_without_a_line_break_is_refused_after_a_bound(tmp_path, monkeypatch):
    monkeypatch.setattr("recloss.data.text.MAX_HEADER_BYTES", 1 << 18)
    (tmp_path / "blob.csv").write_bytes(b"a," * (1 << 18))
    table = TableSchema(label="y", categorical=["a"])
    with pytest.raises(DataError, match=r"blob\.csv: no line break in its first 262\.1 kB$"):
        prepare_dataset(data_config(tmp_path, "csv", tmp_path / "blob.csv", table=table))


def test_parquet_with_table_schema(tmp_path):
    table = pa.table(
        {
            "clicked": pa.array([0, 1, 1, 0, 1], pa.int8()),
            "city": ["a", "b", None, "a", "b"],
            "age": pa.array([3, 7, 3, None, 7], pa.int64()),  # categorical ints become tokens
            "price": [0.5, 10.0, None, 3.0, 1.0],
        }
    )
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=2)
    schema = TableSchema(label="clicked", categorical=["city", "age"], numeric=["price"])
    cfg = data_config(tmp_path, "parquet", tmp_path / "data.parquet", table=schema, chunk_rows=2)
    ds = prepare_dataset(cfg, progress=False)
    assert ds.split("train").y.tolist() == [0, 1, 1, 0, 1]
    assert decode(ds, "city") == ["a", "b", None, "a", "b"]
    assert decode(ds, "age") == ["3", "7", "3", None, "7"]
    assert decode(ds, "price") == [0, BUCKET_KEY_OFFSET + 5, None, BUCKET_KEY_OFFSET + 1, 1]


def test_binary_labels_may_be_booleans_or_their_text(tmp_path):
    clicked = [True, False, True, True, False]
    schema = TableSchema(label="clicked", categorical=["c"])
    pq.write_table(pa.table({"clicked": clicked, "c": list("abcab")}), tmp_path / "d.parquet")
    (tmp_path / "d.csv").write_text("clicked,c\nTrue,a\nfalse,b\nTRUE,c\ntrue,a\nFalse,b\n")
    for kind, name in (("parquet", "d.parquet"), ("csv", "d.csv")):
        cfg = data_config(tmp_path / kind, kind, tmp_path / name, table=schema)
        assert prepare_dataset(cfg).split("train").y.tolist() == [1, 0, 1, 1, 0]
    (tmp_path / "e.csv").write_text("clicked,c\nyes,a\n")
    with pytest.raises(DataError, match="e.csv:2: label clicked: 'yes' is not 0 or 1"):
        prepare_dataset(data_config(tmp_path, "csv", tmp_path / "e.csv", table=schema))


@pytest.mark.parametrize(
    ("task", "text", "labels"),
    [("binary", "1.0 0.0 1.0", [1, 0, 1]), ("multiclass", "2.0 0 1.0", [2, 0, 1])],
)
def test_labels_of_a_float_column_read_as_pandas_writes_them(tmp_path, task, text, labels):
    rows = "".join(f"{label},{c}\n" for label, c in zip(text.split(), "abc", strict=True))
    (tmp_path / "f.csv").write_text("y,c\n" + rows)
    schema = TableSchema(label="y", categorical=["c"])
    cfg = data_config(tmp_path, "csv", tmp_path / "f.csv", table=schema, task=task)
    assert prepare_dataset(cfg).split("train").y.tolist() == labels
    (tmp_path / "g.csv").write_text("y,c\n1,a\n0.5,b\n")
    cfg = cfg.model_copy(update={"path": str(tmp_path / "g.csv")})
    with pytest.raises(DataError, match=r"g\.csv:3: label y: '0\.5' is not (0 or 1|a class index)"):
        prepare_dataset(cfg)
    (tmp_path / "h.csv").write_text("y,c\n1,a\nnan,b\ninf,c\n1e30,a\nx,b\n0,c\n")
    cfg = cfg.model_copy(update={"path": str(tmp_path / "h.csv"), "on_bad_line": "skip"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no invalid cast of a bad row's label either
        skipped = prepare_dataset(cfg)
    assert skipped.split("train").y.tolist() == [1, 0] and skipped.meta["bad_lines"] == 4


def test_a_named_column_twice_in_a_header_is_one_line(tmp_path):
    (tmp_path / "d.csv").write_text("a,a,y,b,b\n1,2,0,3,4\n")
    schema = TableSchema(label="y", categorical=["a"])  # b, twice too, is not used
    with pytest.raises(DataError) as err:
        prepare_dataset(data_config(tmp_path, "csv", tmp_path / "d.csv", table=schema))
    assert str(err.value) == (
        f"{tmp_path}/d.csv: column 'a' appears 2 times; rename all but one, so that data.table "
        "names one column"
    )


def test_a_csv_file_in_another_encoding_reads_with_data_table_encoding(tmp_path):
    rows = "".join(f"{city},{i % 2}\n" for i, city in enumerate(["café", "zürich", "köln"] * 4))
    (tmp_path / "l.csv").write_bytes(("ville é,y\n" + rows).encode("cp1252"))
    schema = TableSchema(label="y", categorical=["ville é"], encoding="cp1252")
    ds = prepare_dataset(data_config(tmp_path, "csv", tmp_path / "l.csv", table=schema))
    assert sorted(ds.encoding.vocabs[0].values.to_pylist()) == ["café", "köln", "zürich"]
    assert "encoding" in ds.meta["settings"]["table"]
    utf8 = schema.model_copy(update={"encoding": "UTF8"})  # the default, spelled otherwise
    with pytest.raises(DataError) as err:
        prepare_dataset(data_config(tmp_path, "csv", tmp_path / "l.csv", table=utf8))
    assert str(err.value).startswith(f"{tmp_path}/l.csv: not utf-8 text (line 1: invalid ")
    assert str(err.value).endswith(
        "); for a CSV file in another encoding, set data.table.encoding (latin-1, cp1252, ...)"
    )
    (tmp_path / "r.csv").write_bytes(("c,y\n" + rows).encode("cp1252"))  # a row, not the header
    ascii_header = TableSchema(label="y", categorical=["c"])
    with pytest.raises(
        DataError, match=r"r\.csv: not utf-8 text \(.*\); for a CSV file in another"
    ):
        prepare_dataset(data_config(tmp_path, "csv", tmp_path / "r.csv", table=ascii_header))


@pytest.mark.parametrize(
    ("encoding", "message"),
    [("nope", "unknown text encoding 'nope'"), ("utf-16", "lines must end in the byte")],
)
def test_an_encoding_recloss_cannot_read_is_refused_by_name(encoding, message):
    with pytest.raises(ConfigError, match=f"data.table.encoding: .*{message}"):
        config_from_dict({"data": {"table": {"label": "y", "encoding": encoding}}})


def test_multiclass_labels_numbered_from_one_are_refused_with_the_fix(tmp_path):
    (tmp_path / "r.csv").write_text("rating,u\n1,a\n5,b\n3,c\n")
    cfg = data_config(
        tmp_path, "csv", tmp_path / "r.csv", task="multiclass",
        table=TableSchema(label="rating", categorical=["u"]),
    )  # fmt: skip
    fix = r"number the .* \(label - 1\), or name them in data.table.classes: \[1, 3, 5\]$"
    with pytest.raises(DataError, match=rf"lowest label here is 1; {fix}"):
        prepare_dataset(cfg)
    cfg.table = TableSchema(label="rating", categorical=["u"], classes=[1, 2, 3, 4, 5])
    ds = prepare_dataset(cfg)
    assert ds.schema.num_classes == 5 and ds.split("train").y.tolist() == [0, 4, 2]


def test_parquet_label_outside_task_names_the_row(tmp_path):
    pq.write_table(pa.table({"y": [0, 1, 2], "c": ["a", "b", "c"]}), tmp_path / "d.parquet")
    cfg = data_config(
        tmp_path, "parquet", tmp_path / "d.parquet", table=TableSchema(label="y", categorical=["c"])
    )
    with pytest.raises(Exception, match=r"d\.parquet:row 3: label y: '2' is not 0 or 1"):
        prepare_dataset(cfg, progress=False)


def test_missing_index_is_zero_for_empty_categorical_values(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("label,c\n1,\n0,a\n1,a\n")
    cfg = data_config(tmp_path, "csv", path, table=TableSchema(label="label", categorical=["c"]))
    x = prepare_dataset(cfg, progress=False).split("train").x_cat
    assert x[:, 0].tolist() == [MISSING_INDEX, 2, 2]


def test_criteo_folder_reads_day_files_in_day_order_and_gzip(tmp_path):
    folder = tmp_path / "criteo"
    folder.mkdir()
    for day in (0, 2, 10):
        with gzip.open(folder / f"day_{day}.gz", "wt") as f:
            f.write(criteo_line(day % 2, [day], [f"d{day}"]) + "\n")
    ds = prepare_dataset(data_config(tmp_path, "criteo", folder, min_count=1), progress=False)
    assert decode(ds, "C1") == ["d0", "d2", "d10"]
    assert [Path(s["path"]).name for s in ds.meta["sources"]] == [
        "day_0.gz",
        "day_2.gz",
        "day_10.gz",
    ]


def test_csv_folder_with_split_files_keeps_them(tmp_path):
    for name, rows in (("train", 30), ("valid", 5), ("test", 7)):
        write_csv(tmp_path / "data" / f"{name}.csv", rows=rows, seed=len(name))
    cfg = data_config(tmp_path, "csv", tmp_path / "data", table=TABLE)
    ds = prepare_dataset(cfg, progress=False)
    assert ds.meta["rows"] == {"train": 30, "valid": 5, "test": 7}
    assert ds.meta["splits_from"] == "files"
