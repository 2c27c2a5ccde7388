"""The prepared cache: hits without reading, rebuilds on change, atomic writes, exact splits."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from datafiles import criteo_lines, data_config, write_csv, write_libfm

from recloss.config import TableSchema
from recloss.data import prepare_dataset
from recloss.data.formats import CriteoReader
from recloss.data.schema import FIRST_VALUE_INDEX, OOV_INDEX
from recloss.data.splits import assign_splits, split_sizes
from recloss.errors import ConfigError, DataError


@pytest.fixture
def criteo(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("\n".join(criteo_lines(300)) + "\n")
    return path


def prepare(tmp_path, path, **settings):
    return prepare_dataset(data_config(tmp_path, "criteo", path, **settings), progress=False)


def test_second_prepare_is_a_cache_hit_without_reading(tmp_path, criteo, monkeypatch):
    first = prepare(tmp_path, criteo, min_count=2)

    def fail(*args, **kwargs):
        raise AssertionError("the source was read again")

    monkeypatch.setattr(CriteoReader, "chunks", fail)
    second = prepare(tmp_path, criteo, min_count=2)
    assert second.root == first.root and second.meta == first.meta
    np.testing.assert_array_equal(second.split("train").x_cat, first.split("train").x_cat)


@pytest.mark.parametrize(
    "damage",
    ["cut train/x_cat.npy", "cut vocab.arrow", "remove valid/y.npy", "cut encoded array"],
)
def test_a_damaged_cache_is_prepared_again(tmp_path, criteo, caplog, damage):
    first = prepare(tmp_path, criteo)
    x_train = np.array(first.split("train").x_cat)  # copies: a cut file's mapping would fault
    encoded = np.array(first.encode_file(criteo).x_cat)
    action, name = damage.split(" ", 1)
    if name == "encoded array":
        target = next((first.root / "encoded").glob("*/all/x_cat.npy"))
    else:
        target = first.root / name
    if action == "cut":
        os.truncate(target, target.stat().st_size // 2)
    else:
        target.unlink()
    if name == "encoded array":
        np.testing.assert_array_equal(first.encode_file(criteo).x_cat, encoded)
        return
    again = prepare(tmp_path, criteo)
    assert f"the cache {first.root} is damaged; preparing it again" in caplog.text
    assert again.root == first.root and len(again.split("valid").y) == first.meta["rows"]["valid"]
    np.testing.assert_array_equal(again.split("train").x_cat, x_train)


def test_a_file_where_the_cache_folder_belongs_names_the_setting(tmp_path, criteo, monkeypatch):
    (tmp_path / "afile").touch()
    cfg = data_config(tmp_path, "criteo", criteo)
    cfg.cache_dir = str(tmp_path / "afile")
    with pytest.raises(ConfigError, match=f"^data.cache_dir: {tmp_path}/afile is a file, not a"):
        prepare_dataset(cfg)
    cfg.cache_dir = None
    monkeypatch.setenv("RECLOSS_HOME", str(tmp_path / "afile"))
    with pytest.raises(ConfigError, match="^RECLOSS_HOME: .* is a file, not a folder$"):
        prepare_dataset(cfg)


def test_changed_source_or_config_rebuilds(tmp_path, criteo):
    first = prepare(tmp_path, criteo)
    other_config = prepare(tmp_path, criteo, min_count=1)
    assert other_config.root != first.root
    with open(criteo, "a") as f:
        f.write(criteo_lines(1, seed=9)[0] + "\n")
    changed = prepare(tmp_path, criteo)
    assert changed.root != first.root
    assert changed.meta["total_rows"] == first.meta["total_rows"] + 1


def test_same_size_edit_with_restored_mtime_is_still_detected(tmp_path, criteo):
    first = prepare(tmp_path, criteo)
    stat = criteo.stat()
    text = criteo.read_text()
    criteo.write_text(text.replace("0", "1", 1))  # same size, content differs in the first MB
    os.utime(criteo, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert prepare(tmp_path, criteo).root != first.root


def test_interrupted_prepare_leaves_no_cache(tmp_path, criteo, monkeypatch):
    from recloss.data import build

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "encode_pass", interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare(tmp_path, criteo)
    assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.undo()
    ds = prepare(tmp_path, criteo)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [ds.root.name]


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (errno.ENOSPC, r"criteo-\w+: the cache could not be written, with [\d.,]+ MB free on its "
         r"disk; make room, or put caches elsewhere \(data.cache_dir, or RECLOSS_HOME\)$"),
        (errno.EACCES, r"^\[Errno 13\] Permission denied$"),  # other errors as they were
    ],
    ids=["disk-full", "other"],
)  # fmt: skip
def test_a_full_disk_while_preparing_names_the_cache_and_leaves_none(
    tmp_path, criteo, monkeypatch, failure, expected
):
    from recloss.data import build

    def disk_full(*args, **kwargs):  # as pyarrow's writers raise it, with no file name
        raise OSError(failure, os.strerror(failure))

    monkeypatch.setattr(build, "encode_pass", disk_full)
    with pytest.raises(OSError, match=expected):
        prepare(tmp_path, criteo)
    assert list((tmp_path / "cache").iterdir()) == []


def test_cache_layout_and_metadata(tmp_path, criteo):
    ds = prepare(tmp_path, criteo, split=(0.8, 0.1, 0.1))
    meta = ds.meta
    assert meta["format_version"] == 1 and meta["dataset"] == "criteo"
    assert meta["rows"] == {"train": 240, "valid": 30, "test": 30} and meta["bad_lines"] == 0
    assert meta["sources"][0]["path"] == str(criteo.resolve())
    assert meta["sources"][0]["size"] == criteo.stat().st_size
    assert ds.root.parent == tmp_path / "cache" and ds.root.name.startswith("criteo-")
    train = ds.split("train")
    assert isinstance(train.x_cat, np.memmap) and train.x_cat.dtype == np.int32
    assert train.y.dtype == np.int8 and train.x_num is None
    assert ds.schema.cardinalities == tuple(meta["encoding"]["vocab_sizes"].values())
    with pytest.raises(ConfigError, match="unknown split 'val'"):
        ds.split("val")


def test_default_cache_location_is_under_recloss_home(tmp_path, criteo, monkeypatch):
    monkeypatch.setenv("RECLOSS_HOME", str(tmp_path / "home"))
    cfg = data_config(tmp_path, "criteo", criteo).model_copy(update={"cache_dir": None})
    ds = prepare_dataset(cfg, progress=False)
    assert ds.root.parent == tmp_path / "home" / "cache"


def test_split_sizes_are_exact_and_assignment_deterministic():
    assert split_sizes(100_000, (0.8, 0.1, 0.1)) == (80_000, 10_000, 10_000)
    assert split_sizes(7, (0.8, 0.1, 0.1)) == (5, 1, 1)
    a = assign_splits(1000, (0.8, 0.1, 0.1), seed=5)
    assert np.bincount(a).tolist() == [800, 100, 100]
    np.testing.assert_array_equal(a, assign_splits(1000, (0.8, 0.1, 0.1), seed=5))
    assert (a != assign_splits(1000, (0.8, 0.1, 0.1), seed=6)).any()


def test_splits_partition_the_rows(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("label,id\n" + "".join(f"{i % 2},{i}\n" for i in range(1000)))
    table = TableSchema(label="label", categorical=["id"])
    # every id is its row's own value: with vocabularies counted on all rows, ids tell rows apart
    cfg = data_config(
        tmp_path, "csv", path, table=table, split=(0.8, 0.1, 0.1), split_seed=3, vocab_from="all"
    )
    ds = prepare_dataset(cfg, progress=False)
    ids = {s: set(ds.split(s).x_cat[:, 0].tolist()) for s in ("train", "valid", "test")}
    assert [len(v) for v in ids.values()] == [800, 100, 100]
    assert set().union(*ids.values()) == set(range(FIRST_VALUE_INDEX, 1000 + FIRST_VALUE_INDEX))
    again = prepare_dataset(cfg.model_copy(update={"split_seed": 3}), progress=False)
    assert set(again.split("test").x_cat[:, 0].tolist()) == ids["test"]


def test_min_count_sends_rare_values_to_oov(tmp_path):
    path = tmp_path / "t.csv"
    values = ["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"] + [""]
    path.write_text("label,v\n" + "".join(f"1,{v}\n" for v in values))
    table = TableSchema(label="label", categorical=["v"])
    ds = prepare_dataset(
        data_config(tmp_path, "csv", path, table=table, min_count=3), progress=False
    )
    # Known values by count, ties by value: a=2, b=3, c=4; d is rare, the empty value missing.
    assert ds.split("train").x_cat[:, 0].tolist() == [2] * 5 + [3] * 3 + [4] * 3 + [OOV_INDEX, 0]
    assert ds.schema.cardinalities == (5,)


def test_encode_file_uses_the_stored_vocabulary(tmp_path):
    path = write_csv(tmp_path / "train.csv", rows=50)
    table = TableSchema(label="label", categorical=["color", "shape"], numeric=["size"])
    ds = prepare_dataset(data_config(tmp_path, "csv", path, table=table), progress=False)
    new = tmp_path / "new.csv"
    new.write_text("label,color,shape,size,weight\n1,red,box,3,1.0\n0,purple,cone,,2.0\n")
    encoded = ds.encode_file(new)
    codes = encoded.x_cat
    known = ds.split("train").x_cat
    red = known[[line.split(",")[1] == "red" for line in path.read_text().splitlines()[1:]], 0]
    assert codes[0, 0] == red[0] and codes[1, 0] == OOV_INDEX and codes[1, 1] == OOV_INDEX
    assert codes[1, 2] == 0 and encoded.y.tolist() == [1, 0]
    assert ds.encode_file(new).x_cat.tolist() == codes.tolist()  # cached


def test_encode_file_rejects_another_layout(tmp_path):
    path = write_libfm(tmp_path / "a.libfm", rows=20, fields=3)
    ds = prepare_dataset(data_config(tmp_path, "libfm", path), progress=False)
    other = write_libfm(tmp_path / "b.libfm", rows=5, fields=4)
    with pytest.raises(DataError, match=r"b\.libfm: fields f1, f2, f3, f4 differ"):
        ds.encode_file(other)
