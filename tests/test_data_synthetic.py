"""Synthetic CTR data: calibrated positive rate, a known Bayes-optimal AUC, a Criteo TSV writer."""

from __future__ import annotations

import numpy as np
import pytest
from datafiles import data_config
from sklearn.metrics import roc_auc_score

from recloss.config import SyntheticConfig
from recloss.data import prepare_dataset, write_criteo_tsv
from recloss.data.synthetic import generate, planted_model
from recloss.errors import ConfigError


def synthetic(tmp_path, **params):
    cfg = data_config(tmp_path, "synthetic", split=(0.8, 0.1, 0.1), synthetic=params)
    return prepare_dataset(cfg, progress=False)


def test_positive_rate_and_bayes_auc(tmp_path):
    ds = synthetic(tmp_path, rows=40_000, positive_rate=0.1, signal=1.5, seed=4)
    assert ds.meta["rows"] == {"train": 32_000, "valid": 4_000, "test": 4_000}
    train, test = ds.split("train"), ds.split("test")
    assert abs(train.y.mean() - 0.1) < 0.015
    assert abs(train.extra["p_true"].mean() - 0.1) < 0.01
    bayes = roc_auc_score(test.y, test.extra["p_true"])
    assert bayes > 0.75
    assert ds.schema.cardinalities == (1002,) * 39 and train.x_cat.min() >= 2


def test_signal_scales_the_bayes_auc():
    def auc(signal: float) -> float:
        blocks = list(generate(SyntheticConfig(rows=20_000, signal=signal, seed=1)))
        return roc_auc_score(
            np.concatenate([b[1] for b in blocks]), np.concatenate([b[2] for b in blocks])
        )

    assert 0.5 < auc(0.3) < auc(1.0) < auc(2.5)


def test_generation_is_deterministic_and_has_planted_pairs(tmp_path):
    cfg = SyntheticConfig(rows=5_000, interactions=7, seed=2)
    model = planted_model(cfg)
    assert len(model.pairs) == 7 and len({tuple(p) for p in model.pairs}) == 7
    a = [b[0] for b in generate(cfg)]
    b = [b[0] for b in generate(cfg)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    first = synthetic(tmp_path / "a", rows=5_000, seed=2, interactions=7)
    again = synthetic(tmp_path / "b", rows=5_000, seed=2, interactions=7)
    np.testing.assert_array_equal(first.split("valid").x_cat, again.split("valid").x_cat)


def test_zipf_frequencies_make_low_codes_common():
    codes = np.concatenate([b[0] for b in generate(SyntheticConfig(rows=20_000, fields=3))])
    counts = np.bincount(codes[:, 0], minlength=1000)
    assert counts[0] > counts[10] > counts[500]


def test_criteo_tsv_writer_round_trips_through_the_criteo_reader(tmp_path):
    path = write_criteo_tsv(tmp_path / "train.txt", SyntheticConfig(rows=3_000, seed=3))
    lines = path.read_text().splitlines()
    assert len(lines) == 3_000 and {len(line.split("\t")) for line in lines} == {40}
    ints = [line.split("\t")[1] for line in lines]
    assert "" in ints and "-2" in ints and "-1" in ints
    assert any(line.split("\t")[20] == "" for line in lines)
    assert all(len(t) == 8 for line in lines for t in line.split("\t")[14:] if t)
    ds = prepare_dataset(data_config(tmp_path, "criteo", path, min_count=1), progress=False)
    assert ds.meta["total_rows"] == 3_000
    assert ds.split("train").y.tolist() == [int(line[0]) for line in lines]


def test_criteo_tsv_writer_needs_39_fields(tmp_path):
    with pytest.raises(ConfigError, match="Criteo files have 39 fields, not 10"):
        write_criteo_tsv(tmp_path / "x.txt", SyntheticConfig(rows=10, fields=10))
