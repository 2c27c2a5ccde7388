"""Given split files: a folder's train/valid/test files, or `data.splits`, in every file format."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from datafiles import (
    data_config,
    write_avazu,
    write_criteo,
    write_csv,
    write_frappe,
    write_libfm,
    write_split_files,
)

from recloss.config import DataConfig, TableSchema
from recloss.data import prepare_dataset
from recloss.errors import ConfigError, DataError

TABLE = TableSchema(label="label", categorical=["color", "shape"], numeric=["size"])
ROWS = (30, 7, 11)


def labels_of(path: Path, dataset: str) -> list[int]:
    """The label column of a written file, in file order."""
    if dataset == "criteo":
        return [int(line.split("\t")[0]) for line in path.read_text().splitlines()]
    if dataset == "avazu":
        return [int(line.split(",")[1]) for line in path.read_text().splitlines()[1:]]
    if dataset == "libfm":
        return [int(line.split()[0] == "1") for line in path.read_text().splitlines()]
    if dataset == "parquet":
        return pq.read_table(path)["label"].to_pylist()
    return [int(line.split(",")[0]) for line in path.read_text().splitlines()[1:]]


def write_parquet(path: Path, rows: int, seed: int) -> Path:
    csv = write_csv(path.with_suffix(".tmp"), rows=rows, seed=seed)
    pq.write_table(pacsv.read_csv(csv), path)
    csv.unlink()
    return path


FORMATS = {  # data set -> (writer, file names of the three splits, settings)
    "criteo": (write_criteo, ("train.txt", "valid.txt", "test.txt"), {"min_count": 1}),
    "avazu": (write_avazu, ("train.csv", "validation.csv", "test.csv"), {"min_count": 1}),
    "csv": (write_csv, ("train.csv", "valid.csv", "test.csv"), {"table": TABLE}),
    "parquet": (
        write_parquet,
        ("train.parquet", "valid.parquet", "test.parquet"),
        {"table": TABLE},
    ),
    "libfm": (write_libfm, ("train.libfm", "valid.libfm", "test.libfm"), {}),
}


@pytest.mark.parametrize("dataset", FORMATS)
def test_a_folder_of_split_files_gives_the_splits(tmp_path, dataset):
    write, names, settings = FORMATS[dataset]
    folder = write_split_files(tmp_path / "data", write, names, ROWS)
    ds = prepare_dataset(data_config(tmp_path, dataset, folder, **settings), progress=False)
    assert ds.meta["splits_from"] == "files"
    assert ds.meta["rows"] == dict(zip(("train", "valid", "test"), ROWS, strict=True))
    for split, name in zip(("train", "valid", "test"), names, strict=True):
        assert ds.split(split).y.tolist() == labels_of(folder / name, dataset)


@pytest.mark.parametrize("dataset", FORMATS)
def test_data_splits_names_the_files(tmp_path, dataset):
    write, names, settings = FORMATS[dataset]
    folder = write_split_files(tmp_path / "data", write, [f"part{k}.x" for k in range(3)], ROWS)
    splits = {"train": "part2.x", "valid": "part0.x", "test": str(folder / "part1.x")}
    cfg = data_config(tmp_path, dataset, folder, splits=splits, **settings)
    ds = prepare_dataset(cfg, progress=False)
    assert ds.meta["rows"] == {"train": ROWS[2], "valid": ROWS[0], "test": ROWS[1]}
    assert ds.split("valid").y.tolist() == labels_of(folder / "part0.x", dataset)


def test_data_splits_without_a_path_takes_absolute_files(tmp_path):
    folder = write_split_files(tmp_path / "d", write_csv, ("a.csv", "b.csv", "c.csv"), ROWS)
    splits = {s: str(folder / n) for s, n in zip(("train", "valid", "test"), "abc", strict=True)}
    splits = {s: f"{p}.csv" for s, p in splits.items()}
    ds = prepare_dataset(data_config(tmp_path, "csv", splits=splits, table=TABLE), progress=False)
    assert ds.meta["rows"]["test"] == ROWS[2]


def test_one_file_for_the_train_and_a_held_out_split_is_refused(tmp_path, caplog):
    folder = write_split_files(tmp_path / "d", write_csv, ("a.csv", "b.csv"), ROWS[:2])
    for held_out in ("valid", "test"):
        splits = {"train": "a.csv", "valid": "b.csv", "test": "b.csv", held_out: "./a.csv"}
        with pytest.raises(DataError) as err:
            prepare_dataset(data_config(tmp_path, "csv", folder, splits=splits, table=TABLE))
        assert str(err.value) == (
            f"csv: data.splits: {folder}/a.csv is both the train and the {held_out} split; the "
            "model would be judged on the rows it trains on"
        )
    assert not caplog.records
    splits = {"train": "a.csv", "valid": "b.csv", "test": "b.csv"}  # allowed, but said
    ds = prepare_dataset(data_config(tmp_path, "csv", folder, splits=splits, table=TABLE))
    assert ds.meta["rows"]["test"] == ROWS[1]
    assert "b.csv is both the valid and the test split" in caplog.records[0].getMessage()


def test_frappe_names_keep_working(tmp_path):
    folder = write_frappe(tmp_path / "frappe", rows=(40, 9, 6))
    ds = prepare_dataset(data_config(tmp_path, "frappe", folder), progress=False)
    assert ds.meta["rows"] == {"train": 40, "valid": 9, "test": 6}


def test_a_frappe_folder_without_its_train_file_is_an_error(tmp_path):
    folder = write_frappe(tmp_path / "frappe")
    (folder / "frappe.train.libfm").unlink()
    with pytest.raises(DataError, match=r"no train\.libfm; give all three splits"):
        prepare_dataset(data_config(tmp_path, "frappe", folder), progress=False)


def test_criteo_train_and_test_without_valid_is_an_error(tmp_path):
    write_criteo(tmp_path / "dac" / "train.txt", rows=20)
    write_criteo(tmp_path / "dac" / "test.txt", rows=5, seed=1)
    with pytest.raises(DataError, match=r"train\.txt, test\.txt but no valid/validation\.\*"):
        prepare_dataset(data_config(tmp_path, "criteo", tmp_path / "dac"), progress=False)


def test_a_lone_train_file_is_the_whole_source(tmp_path):
    write_criteo(tmp_path / "dac" / "train.txt", rows=50)
    cfg = data_config(tmp_path, "criteo", tmp_path / "dac", split=(0.6, 0.2, 0.2))
    ds = prepare_dataset(cfg, progress=False)
    assert ds.meta["splits_from"] == "random"
    assert ds.meta["rows"] == {"train": 30, "valid": 10, "test": 10}


def test_two_files_for_one_split_are_an_error(tmp_path):
    names = ("train.csv", "valid.csv", "test.csv")
    folder = write_split_files(tmp_path / "d", write_csv, names, ROWS)
    write_csv(folder / "test.csv.gz", rows=3)
    with pytest.raises(DataError, match=r"2 test files \(test\.csv, test\.csv\.gz\)"):
        prepare_dataset(data_config(tmp_path, "csv", folder, table=TABLE), progress=False)


def test_a_missing_split_file_is_named(tmp_path):
    folder = write_split_files(tmp_path / "d", write_csv, ("a.csv", "b.csv"), ROWS[:2])
    splits = {"train": "a.csv", "valid": "b.csv", "test": "c.csv"}
    cfg = data_config(tmp_path, "csv", folder, splits=splits, table=TABLE)
    with pytest.raises(DataError, match=r"data\.splits\.test: .*c\.csv is not a file"):
        prepare_dataset(cfg, progress=False)


def test_every_split_must_be_named():
    with pytest.raises(ValueError, match="valid, test missing"):
        DataConfig(splits={"train": "a.csv"})


def test_a_data_set_without_split_files_refuses_them(tmp_path):
    cfg = data_config(tmp_path, "movielens-1m", splits={"train": "a", "valid": "b", "test": "c"})
    with pytest.raises(ConfigError, match="data.splits: movielens-1m takes no split files"):
        prepare_dataset(cfg, progress=False)


def test_given_and_random_splits_of_the_same_files_are_cached_apart(tmp_path):
    folder = write_split_files(tmp_path / "d", write_csv, ("a.csv", "b.csv", "c.csv"), ROWS)
    random = prepare_dataset(data_config(tmp_path, "csv", folder, table=TABLE), progress=False)
    splits = {"train": "a.csv", "valid": "b.csv", "test": "c.csv"}
    given = data_config(tmp_path, "csv", folder, splits=splits, table=TABLE)
    given = prepare_dataset(given, progress=False)
    assert random.root != given.root
    assert (random.meta["splits_from"], given.meta["splits_from"]) == ("random", "files")


def test_encode_file_of_a_data_set_with_given_splits(tmp_path):
    names = ("train.libfm", "valid.libfm", "test.libfm")
    folder = write_split_files(tmp_path / "d", write_libfm, names, ROWS)
    ds = prepare_dataset(data_config(tmp_path, "libfm", folder), progress=False)
    encoded = ds.encode_file(folder / "test.libfm")
    assert encoded.x_cat.tolist() == ds.split("test").x_cat.tolist()
