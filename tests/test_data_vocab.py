"""Vocabularies and numeric statistics fitted on the training split only (`data.vocab_from`)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from datafiles import data_config, decode

from recloss.config import TableSchema
from recloss.data import prepare_dataset
from recloss.data.schema import OOV_INDEX
from recloss.data.summary import format_info

TABLE = TableSchema(label="label", categorical=["v"])


def write_rows(path, values, numbers=None):
    numbers = numbers if numbers is not None else [0.0] * len(values)
    lines = "".join(
        f"{k % 2},{v},{x}\n" for k, (v, x) in enumerate(zip(values, numbers, strict=True))
    )
    path.write_text("label,v,x\n" + lines)
    return path


@pytest.fixture
def given(tmp_path):
    """Split files: `seen` in train and test, `testonly` in test only, `validonly` in valid."""
    folder = tmp_path / "data"
    folder.mkdir()
    write_rows(folder / "train.csv", ["seen", "seen", "other"])
    write_rows(folder / "valid.csv", ["validonly", "seen"])
    write_rows(folder / "test.csv", ["testonly", "seen", "other"])
    return folder


def test_a_value_seen_only_in_test_maps_to_oov(tmp_path, given):
    ds = prepare_dataset(data_config(tmp_path, "csv", given, table=TABLE), progress=False)
    assert ds.encoding.vocabs[0].values.to_pylist() == ["seen", "other"]
    assert decode(ds, "v", "test") == ["<oov>", "seen", "other"]
    assert decode(ds, "v", "valid") == ["<oov>", "seen"]
    assert ds.split("test").x_cat[0, 0] == OOV_INDEX
    assert ds.schema.cardinalities == (2 + 2,)


def test_vocab_from_all_counts_every_split(tmp_path, given):
    cfg = data_config(tmp_path, "csv", given, table=TABLE, vocab_from="all")
    ds = prepare_dataset(cfg, progress=False)
    assert decode(ds, "v", "test") == ["testonly", "seen", "other"]
    assert ds.schema.cardinalities == (4 + 2,)


def test_min_count_counts_training_rows_only(tmp_path, given):
    # `other` is seen once in train and once in test: rare in train at min_count 2
    train = prepare_dataset(
        data_config(tmp_path, "csv", given, table=TABLE, min_count=2), progress=False
    )
    assert decode(train, "v", "test") == ["<oov>", "seen", "<oov>"]
    every = data_config(tmp_path, "csv", given, table=TABLE, min_count=2, vocab_from="all")
    assert decode(prepare_dataset(every, progress=False), "v", "test") == ["<oov>", "seen", "other"]


def test_a_field_with_no_value_seen_min_count_times_is_reported(tmp_path, given, caplog):
    table = TableSchema(label="label", categorical=["v", "x"])
    with caplog.at_level(logging.WARNING, logger="recloss.data"):
        prepare_dataset(data_config(tmp_path, "csv", given, table=table, min_count=3))
    warned = "no value seen min_count (3) times carry nothing, every row being out of their"
    assert f"{warned} vocabulary: v\n" in caplog.text  # not x: its one value is seen 3 times


def test_random_split_counts_only_its_training_rows(tmp_path):
    # every row has its own id: ids of validation and test rows are unseen in training
    path = write_rows(tmp_path / "t.csv", [f"id{i}" for i in range(200)])
    cfg = data_config(tmp_path, "csv", path, table=TABLE, split=(0.7, 0.1, 0.2), chunk_rows=9)
    ds = prepare_dataset(cfg, progress=False)
    assert ds.schema.cardinalities == (140 + 2,)
    assert (ds.split("valid").x_cat == OOV_INDEX).all()
    assert (ds.split("test").x_cat == OOV_INDEX).all()
    assert len(set(ds.split("train").x_cat[:, 0].tolist())) == 140
    assert OOV_INDEX not in ds.split("train").x_cat


def test_the_training_rows_counted_do_not_depend_on_chunking(tmp_path):
    values = [f"v{i % 37}" for i in range(300)]
    path = write_rows(tmp_path / "t.csv", values)
    cards = []
    for chunk_rows in (7, 1000):
        cfg = data_config(
            tmp_path, "csv", path, table=TABLE, split=(0.5, 0.25, 0.25), chunk_rows=chunk_rows
        )
        ds = prepare_dataset(cfg, progress=False)
        cards.append((ds.encoding.vocabs[0].values.to_pylist(), ds.split("test").x_cat.tolist()))
    assert cards[0] == cards[1]


def test_continuous_statistics_come_from_training_rows(tmp_path, given):
    folder = tmp_path / "num"
    folder.mkdir()
    write_rows(folder / "train.csv", ["a", "a"], [0.0, np.e - 1])  # log1p: 0 and 1
    write_rows(folder / "valid.csv", ["a"], [1000.0])
    write_rows(folder / "test.csv", ["a"], [1000.0])
    table = TableSchema(label="label", categorical=["v"], numeric=["x"])
    cfg = data_config(tmp_path, "csv", folder, table=table, numeric="continuous")
    ds = prepare_dataset(cfg, progress=False)
    np.testing.assert_allclose(ds.encoding.mean, [0.5])
    np.testing.assert_allclose(ds.encoding.std, [0.5])
    np.testing.assert_allclose(ds.split("train").x_num[:, 0], [-1.0, 1.0], atol=1e-6)


def test_the_cache_fingerprint_includes_vocab_from(tmp_path, given):
    train = prepare_dataset(data_config(tmp_path, "csv", given, table=TABLE), progress=False)
    every = data_config(tmp_path, "csv", given, table=TABLE, vocab_from="all")
    every = prepare_dataset(every, progress=False)
    assert train.root != every.root
    assert (train.meta["settings"]["vocab_from"], every.meta["settings"]["vocab_from"]) == (
        "train",
        "all",
    )


def test_data_info_says_which_rows_were_counted(tmp_path, given):
    ds = prepare_dataset(data_config(tmp_path, "csv", given, table=TABLE), progress=False)
    assert "vocabulary  fitted on the training split (3 rows)" in format_info(ds)
    every = data_config(tmp_path, "csv", given, table=TABLE, vocab_from="all")
    assert "fitted on all rows" in format_info(prepare_dataset(every, progress=False))
