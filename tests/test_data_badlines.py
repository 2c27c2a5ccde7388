"""Malformed input stops preparation at its file and line, or is skipped and counted."""

from __future__ import annotations

import bz2
import gzip
import logging

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from datafiles import criteo_lines, data_config, write_csv, write_libfm, write_ml20m

from recloss.config import TableSchema
from recloss.data import prepare_dataset
from recloss.errors import ConfigError, DataError


def write_lines(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def criteo_with(tmp_path, bad: dict[int, str], rows: int = 30):
    """A Criteo file whose line numbers in `bad` (1-based) are replaced."""
    lines = criteo_lines(rows, seed=1)
    for line_no, text in bad.items():
        lines[line_no - 1] = text
    return write_lines(tmp_path / "train.txt", lines)


def prepare(tmp_path, dataset, path, **settings):
    return prepare_dataset(data_config(tmp_path, dataset, path, **settings), progress=False)


def replace_field(line: str, index: int, value: str) -> str:
    fields = line.split("\t")
    fields[index] = value
    return "\t".join(fields)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        (0, "2", "label: '2' is not 0 or 1"),
        (0, "yes", "label: 'yes' is not 0 or 1"),
        (0, "", "label is missing"),
        (3, "4.5", "I3: '4.5' is not an integer"),
        (13, "abc", "I13: 'abc' is not an integer"),
    ],
)
def test_bad_values_name_file_and_line(tmp_path, field, value, problem):
    line = replace_field(criteo_lines(1, seed=7)[0], field, value)
    path = criteo_with(tmp_path, {17: line})
    with pytest.raises(DataError) as err:
        prepare(tmp_path, "criteo", path)
    assert str(err.value) == f"{path}:17: {problem}"


def test_wrong_field_count_names_file_and_line(tmp_path):
    short = "\t".join(criteo_lines(1)[0].split("\t")[:39])
    path = criteo_with(tmp_path, {5: short})
    with pytest.raises(DataError, match=r"train\.txt:5: expected 40 fields, found 39$"):
        prepare(tmp_path, "criteo", path)


def test_first_bad_line_is_reported_across_kinds_and_blocks(tmp_path):
    lines = criteo_lines(400, seed=2)
    lines[300] = "1\t2"  # line 301: field count, found by the parser
    lines[350] = replace_field(lines[350], 1, "x")  # line 351: conversion
    path = write_lines(tmp_path / "train.txt", lines)
    with pytest.raises(DataError, match=r":301: expected 40 fields"):
        prepare(tmp_path, "criteo", path, chunk_rows=64)
    lines[300] = criteo_lines(1)[0]
    lines[40] = "1\t2"
    lines[20] = replace_field(lines[20], 1, "x")
    write_lines(path, lines)
    with pytest.raises(DataError, match=r":21: I1: 'x' is not an integer"):
        prepare(tmp_path, "criteo", path, chunk_rows=64)


def test_line_numbers_count_blank_lines_and_the_header(tmp_path):
    path = write_csv(tmp_path / "t.csv", rows=10)
    lines = path.read_text().splitlines()
    lines.insert(3, "")  # a blank line 4 is no data and no error
    lines[6] = "7,red,box,1,2.0"  # line 7: label 7
    write_lines(path, lines)
    table = TableSchema(label="label", categorical=["color"])
    with pytest.raises(DataError, match=r"t\.csv:7: label label: '7' is not 0 or 1"):
        prepare(tmp_path, "csv", path, table=table)


def test_skip_mode_counts_and_logs_bad_lines(tmp_path, caplog):
    short = "1\t2\t3"
    bad_int = replace_field(criteo_lines(1)[0], 2, "1.5")
    bad_label = replace_field(criteo_lines(1)[0], 0, "-1")
    path = criteo_with(tmp_path, {2: short, 9: bad_int, 10: bad_label, 30: short}, rows=30)
    with caplog.at_level(logging.WARNING, logger="recloss.data"):
        ds = prepare(tmp_path, "criteo", path, on_bad_line="skip", chunk_rows=8)
    assert ds.meta["bad_lines"] == 4
    assert ds.meta["total_rows"] == 26 and len(ds.split("train")) == 26
    logged = caplog.text
    assert "train.txt:2: expected 40 fields, found 3" in logged
    assert "train.txt:9: I2: '1.5' is not an integer" in logged
    assert "skipped 4 bad lines" in logged


def test_skip_mode_drops_bad_rows_consistently_in_both_passes(tmp_path):
    lines = criteo_lines(200, seed=3)
    for i in range(5, 200, 17):
        lines[i] = replace_field(lines[i], 5, "nope")
    path = write_lines(tmp_path / "train.txt", lines)
    ds = prepare(tmp_path, "criteo", path, on_bad_line="skip", chunk_rows=16, split=(0.8, 0.1, 0.1))
    kept = 200 - len(range(5, 200, 17))
    assert ds.meta["bad_lines"] == len(range(5, 200, 17))
    assert sum(ds.meta["rows"].values()) == kept
    assert sum(len(ds.split(s)) for s in ("train", "valid", "test")) == kept


def test_libfm_lines_with_another_feature_count_are_malformed(tmp_path):
    path = write_libfm(tmp_path / "d.libfm", rows=20, fields=3)
    lines = path.read_text().splitlines()
    lines[11] = "1 1:1 2:1"
    lines[14] = "1 1:1 2:1 3"
    write_lines(path, lines)
    with pytest.raises(DataError, match=r"d\.libfm:12: expected 4 tokens, found 3"):
        prepare(tmp_path, "libfm", path)
    ds = prepare(tmp_path, "libfm", path, on_bad_line="skip")
    assert ds.meta["bad_lines"] == 2 and len(ds.split("train")) == 18


def test_rating_outside_the_task(tmp_path):
    folder = write_ml20m(tmp_path / "ml", rows=20)
    lines = (folder / "ratings.csv").read_text().splitlines()
    lines[4] = "1,2,6.0,1100000000"
    write_lines(folder / "ratings.csv", lines)
    with pytest.raises(DataError, match=r"ratings\.csv:5: rating: '6\.0' is not in \(0, 5\]"):
        prepare(tmp_path, "movielens-20m", folder)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "train.txt").write_text("")
    with pytest.raises(DataError, match=r"train\.txt: file is empty"):
        prepare(tmp_path, "criteo", tmp_path / "train.txt")
    with pytest.raises(
        DataError, match=r"criteo: .*nothing\.txt does not exist; expected a Criteo"
    ):
        prepare(tmp_path, "criteo", tmp_path / "nothing.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"avazu: .*empty holds no data files; expected Avazu"):
        prepare(tmp_path, "avazu", tmp_path / "empty")
    with pytest.raises(DataError, match=r"movielens-1m: .*lacks ratings\.dat, users\.dat"):
        prepare(tmp_path, "movielens-1m", tmp_path / "empty")


@pytest.mark.parametrize("dataset", ["csv", "criteo", "frappe"])
def test_a_binary_file_where_text_is_expected_is_one_line(tmp_path, dataset):
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "rows.csv"  # a Parquet file under a text name
    pq.write_table(pa.table({"label": [0, 1], "color": ["red", "blue"]}), parquet)
    table = TableSchema(label="label", categorical=["color"]) if dataset == "csv" else None
    with pytest.raises(DataError, match=r"rows\.csv: a Parquet file, where delimited text is"):
        prepare(tmp_path, dataset, parquet, **({"table": table} if table else {}))
    binary = tmp_path / "noise.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match=r"noise\.txt: not a text file, where delimited text"):
        prepare(tmp_path, dataset, binary, **({"table": table} if table else {}))
    text = b"label,color\n0,red\n1,blue\n"
    packed = {"gz": gzip.compress(text), "bz2": bz2.compress(text), "zip": b"PK\x03\x04..."}
    for suffix, data in packed.items():
        (tmp_path / f"{suffix}.txt").write_bytes(data)
        fix = "extract it first" if suffix == "zip" else f"name it {suffix}.txt.{suffix}$"
        with pytest.raises(DataError, match=rf"{suffix}\.txt: .*, where delimited text .*; {fix}"):
            prepare(
                tmp_path, dataset, tmp_path / f"{suffix}.txt", **({"table": table} if table else {})
            )


def test_a_named_data_set_without_path_says_what_it_expects(tmp_path):
    with pytest.raises(DataError, match=r"criteo: no data path given \(--data PATH\); expected"):
        prepare(tmp_path, "criteo", None)


def test_table_config_errors_list_the_columns_to_name(tmp_path):
    path = write_csv(tmp_path / "t.csv", rows=5)
    columns = "label, color, shape, size, weight"
    with pytest.raises(
        ConfigError,
        match=rf"^data\.table: the csv data set needs a table schema .*; .*t\.csv has the "
        rf"columns {columns}$",
    ):
        prepare(tmp_path, "csv", path)
    semicolons = write_csv(tmp_path / "s.csv", rows=5, sep=";")
    with pytest.raises(ConfigError, match=r"; is the separator ';'\? set data\.table\.separator$"):
        prepare(tmp_path, "csv", semicolons)
    pq.write_table(pa_csv.read_csv(path), tmp_path / "t.parquet")
    with pytest.raises(ConfigError, match=rf"t\.parquet has the columns {columns}$"):
        prepare(tmp_path, "parquet", tmp_path / "t.parquet")
    with pytest.raises(
        ConfigError, match=rf"^data\.table: name at least one categorical or numeric column \(.*"
        rf"t\.csv has the columns {columns}\)$",
    ):  # fmt: skip
        prepare(tmp_path, "csv", path, table=TableSchema(label="label"))
    table = TableSchema(label="label", categorical=["colour"])
    with pytest.raises(
        ConfigError,
        match=rf"data\.table\.categorical: column 'colour' is not in .*t\.csv \(columns: {columns}"
        r"\); did you mean color\?$",
    ):
        prepare(tmp_path, "csv", path, table=table)


def test_a_table_given_to_a_folder_data_set_is_pointed_to_the_table_data_sets(tmp_path):
    path = write_csv(tmp_path / "t.csv", rows=5)
    with pytest.raises(
        DataError,
        match=r"^movielens-100k: .*t\.csv holds no data files; expected .*; a table of your own "
        r"is read with --dataset csv and a data\.table naming its columns",
    ):
        prepare(tmp_path, "movielens-100k", path)


def test_header_only_file_has_no_data_rows(tmp_path):
    path = write_lines(tmp_path / "t.csv", ["label,color"])
    table = TableSchema(label="label", categorical=["color"])
    with pytest.raises(DataError, match=r"t\.csv: no data rows"):
        prepare(tmp_path, "csv", path, table=table)


def test_unsupported_task_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.task: criteo supports binary, not multiclass"):
        prepare(tmp_path, "criteo", tmp_path, task="multiclass")
