"""`train.calibration`: the map fitted on validation after training, in the record, the test
metrics, `evaluate` and `predict`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import recloss
from recloss.calibration import fit_platt
from recloss.errors import ConfigError
from recloss.rundir import RunDir
from recloss.runs.scoring import best_model
from recloss.training import predict_split


def _config(tmp_path, loss: str = "focal", calibration: str = "platt", **synthetic) -> dict:
    return {
        "data": {
            "dataset": "synthetic",
            "cache_dir": str(tmp_path / "cache"),
            "synthetic": {"rows": 4000, "fields": 5, "cardinality": 30, **synthetic},
        },
        "model": {"name": "deepfm", "embed_dim": 8, "params": {"hidden_dims": [16]}},
        "loss": {"name": loss},
        "train": {"epochs": 2, "batch_size": 256, "progress": False, "calibration": calibration},
    }


def raw_scores(best, split) -> np.ndarray:
    """The best model's uncalibrated probabilities of `split`."""
    return predict_split(best.model, split, 4096, best.device)


@pytest.fixture(scope="module")
def focal_run(tmp_path_factory):
    """Focal loss, a calibrated run: focal's probabilities are far from calibrated."""
    tmp_path = tmp_path_factory.mktemp("calibrated")
    return recloss.train(_config(tmp_path), run_dir=tmp_path / "run")


def test_the_map_is_platts_fit_to_the_best_models_validation_logits(focal_run):
    best = best_model(RunDir(focal_run.run_dir), None)
    valid = best.dataset.split("valid")
    logits = torch.logit(torch.from_numpy(raw_scores(best, valid)).double(), eps=1e-12)
    scale, bias = fit_platt(logits, torch.from_numpy(np.asarray(valid.y, dtype=np.int64)))
    c = focal_run.calibration
    assert c.method == "platt" and best.calibration == c
    assert c.scale == pytest.approx(scale, rel=1e-4) and c.bias == pytest.approx(bias, abs=1e-4)


def test_test_metrics_are_calibrated_and_the_uncalibrated_ones_are_kept(focal_run):
    test, raw = focal_run.test, focal_run.test_uncalibrated
    assert test["auc"] == pytest.approx(raw["auc"], abs=1e-6)  # a monotone map
    assert test["logloss"] < raw["logloss"] - 0.01  # focal's calibration is repaired
    assert recloss.evaluate(focal_run.run_dir) == test  # the saved run applies its map
    best = best_model(RunDir(focal_run.run_dir), None)
    test_split = best.dataset.split("test")
    expected = torch.sigmoid(
        focal_run.calibration.apply(torch.logit(torch.from_numpy(raw_scores(best, test_split))))
    )
    np.testing.assert_allclose(recloss.predict(focal_run.run_dir), expected.numpy(), rtol=1e-5)


def test_an_uncalibrated_run_has_no_map(tmp_path):
    record = recloss.train(_config(tmp_path, "ce", "none"), run_dir=tmp_path / "run")
    assert record.calibration is None and record.test_uncalibrated is None


def _three_classes(tmp_path, calibration: str) -> tuple[dict, dict]:
    """A config and in-memory rows whose label is one of 3 classes, set by two fields."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 6, 3000), rng.integers(0, 6, 3000)
    rows = {"a": a.astype(str), "b": b.astype(str), "y": (a + b) % 3}
    cfg = _config(tmp_path, "ce", calibration)
    cfg["data"] = {
        "cache_dir": str(tmp_path / "cache"),
        "task": "multiclass",
        "table": {"label": "y", "categorical": ["a", "b"]},
    }
    return cfg, rows


def test_platt_on_a_multiclass_task_is_refused_and_temperature_scales(tmp_path):
    cfg, rows = _three_classes(tmp_path, "platt")
    with pytest.raises(ConfigError, match=r"train\.calibration: platt is for binary tasks"):
        recloss.train(cfg, run_dir=tmp_path / "run", data=rows)
    assert not (tmp_path / "run").exists()
    cfg, rows = _three_classes(tmp_path, "temperature")
    record = recloss.train(cfg, run_dir=tmp_path / "t", data=rows)
    assert record.calibration.method == "temperature" and record.calibration.bias == 0.0
    assert record.test["accuracy"] == record.test_uncalibrated["accuracy"]  # argmax is kept
    assert recloss.evaluate(record.run_dir, train_data=rows) == record.test
    cfg, rows = _three_classes(tmp_path, "auto")  # auto: temperature scaling for classes
    assert recloss.train(cfg, tmp_path / "auto", data=rows).calibration == record.calibration
