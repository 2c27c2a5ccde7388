"""Labels named by value (`data.table.classes`): yes/no, -1/1, ratings 1-5, typed columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datafiles import data_config
from pydantic import ValidationError

import recloss
from recloss.classes import class_key
from recloss.config import TableSchema
from recloss.data import prepare_dataset
from recloss.errors import ConfigError, DataError
from recloss.runs import predict_to_file


@pytest.mark.parametrize(
    ("a", "b"),
    [("1", 1), (" 1", 1.0), ("1.0", 1), ("yes", True), ("True", True), ("no", False), ("x", "x")],
)
def test_a_label_compares_with_a_class_as_yaml_reads_both(a, b):
    assert class_key(a) == class_key(b)


@pytest.mark.parametrize(("a", "b"), [("1", True), ("0", False), ("1", "1.5"), ("x", "X")])
def test_labels_of_other_values_or_kinds_differ(a, b):
    assert class_key(a) != class_key(b)


@pytest.mark.parametrize(
    ("classes", "message"),
    [([1], "name at least two label values"), ([1, "1.0"], "'1.0' is the same label as 1")],
)
def test_classes_are_at_least_two_distinct_values(classes, message):
    with pytest.raises(ValidationError, match=message):
        TableSchema(label="y", categorical=["c"], classes=classes)


def _prepare(tmp_path, text: str, classes, task="binary"):
    (tmp_path / "d.csv").write_text(text)
    table = TableSchema(label="y", categorical=["c"], classes=classes)
    return prepare_dataset(data_config(tmp_path, "csv", tmp_path / "d.csv", table=table, task=task))


def test_text_labels_are_the_positions_of_their_classes(tmp_path):
    ds = _prepare(tmp_path, "y,c\nno,a\nyes,b\nYes,c\n no,d\n", ["no", "yes"])
    assert ds.split("train").y.tolist() == [0, 1, 1, 0]


def test_a_label_that_is_no_class_is_a_bad_line_naming_the_classes(tmp_path):
    with pytest.raises(DataError, match=r"d\.csv:3: label y: 'maybe' is not one of \[-1, 1\]"):
        _prepare(tmp_path, "y,c\n-1,a\nmaybe,b\n1,c\n", [-1, 1])


def test_a_binary_task_takes_two_classes(tmp_path):
    with pytest.raises(ConfigError, match=r"^data.table.classes: a binary task has two classes"):
        _prepare(tmp_path, "y,c\n1,a\n2,b\n3,c\n", [1, 2, 3])


def test_ratings_from_one_are_classes_even_one_no_row_has(tmp_path):
    ds = _prepare(tmp_path, "y,c\n5,a\n1,b\n3.0,c\n", [1, 2, 3, 4, 5], task="multiclass")
    assert ds.schema.num_classes == 5 and ds.split("train").y.tolist() == [4, 0, 2]


@pytest.mark.parametrize(
    ("values", "classes", "expected"),
    [([3, 1, 2], [1, 2, 3], [2, 0, 1]), ([True, False], [False, True], [1, 0]),
     ([0.5, 1.5], [0.5, 1.5], [0, 1])],
)  # fmt: skip
def test_typed_parquet_labels_match_their_classes(tmp_path, values, classes, expected):
    n = len(values)
    pq.write_table(pa.table({"y": values, "c": list("abc")[:n]}), tmp_path / "d.parquet")
    table = TableSchema(label="y", categorical=["c"], classes=classes)
    task = "binary" if len(classes) == 2 else "multiclass"
    cfg = data_config(tmp_path, "parquet", tmp_path / "d.parquet", table=table, task=task)
    assert prepare_dataset(cfg).split("train").y.tolist() == expected


def test_predictions_are_named_by_the_classes(tmp_path):
    rng = np.random.default_rng(0)
    rows = {"c": rng.choice(list("abcd"), 400), "y": rng.choice(["low", "mid", "high"], 400)}
    table = {"label": "y", "categorical": ["c"], "classes": ["low", "mid", "high"]}
    cfg = {"data": {"task": "multiclass", "table": table, "cache_dir": str(tmp_path / "cache")}}
    record = recloss.train(
        cfg, data=rows, loss__name="ce", train__epochs=1, train__progress=False,
        out=str(tmp_path / "runs"),
    )  # fmt: skip
    written = predict_to_file(record.run_dir, rows, tmp_path / "p.parquet", train_data=rows)
    assert written.rows == 400
    assert pq.read_table(written.path).column_names == ["p_low", "p_mid", "p_high"]
    with pytest.raises(ConfigError, match="^--group c: the group AUC is for binary tasks$"):
        recloss.evaluate(record.run_dir, rows, train_data=rows, group="c")
