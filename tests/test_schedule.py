"""Learning-rate schedules: plateau drops and restores, cosine and step follow their formula,
and every schedule resumes exactly."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import InterruptAfter
from test_train import small_config

from recloss.errors import ConfigError
from recloss.rundir import RunDir
from recloss.runs import resume, train
from recloss.training import checkpoint


def _rates(saved: dict) -> list[float]:
    return [g["lr"] for opt in saved["optimizers"] for g in opt["param_groups"]]


def _first_bad_epoch(scores: list[float]) -> int:
    """The first epoch (1-based) whose validation score is no better than an earlier one's."""
    return next(i + 1 for i in range(1, len(scores)) if scores[i] <= max(scores[:i]))


def _overfitting(tmp_path, **schedule):
    """A rate this large stops improving the validation AUC within a few epochs."""
    return small_config(
        tmp_path,
        **{
            "train.epochs": 12,
            "train.patience": 3,
            "train.lr": 0.05,
            "train.lr_schedule": {"name": "plateau", **schedule},
        },
    )


def _scores(history, monitor: str) -> list[float]:
    return [h.valid["auc"] if monitor == "auc" else -h.valid["logloss"] for h in history]


@pytest.mark.parametrize("monitor", ["auc", "logloss"])
def test_plateau_drops_the_rate_and_goes_back_to_the_best_weights(tmp_path, monitor):
    cfg = _overfitting(tmp_path)
    cfg.train.monitor = monitor
    full = train(cfg, run_dir=tmp_path / "full")
    scores = _scores(full.history, monitor)
    assert full.best_epoch == scores.index(max(scores)) + 1
    bad = _first_bad_epoch(scores)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "cut", callbacks=[InterruptAfter(bad)])
    cut = RunDir(tmp_path / "cut")
    saved = checkpoint.load(cut.checkpoint)
    assert _rates(saved) == pytest.approx([0.005, 0.005])
    best = checkpoint.load(cut.best)
    for key, value in best.items():
        assert torch.equal(saved["model"][key], value), key


def test_plateau_without_restore_keeps_the_current_weights(tmp_path):
    cfg = _overfitting(tmp_path, restore_best=False)
    full = train(cfg, run_dir=tmp_path / "full")
    saved = checkpoint.load(RunDir(full.run_dir).checkpoint)
    best = checkpoint.load(RunDir(full.run_dir).best)
    assert min(_rates(saved)) < 0.05  # the rate did drop
    assert any(not torch.equal(saved["model"][k], v) for k, v in best.items())


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ({"name": "cosine", "min_lr": 0.0}, 0.01 * (1 + math.cos(math.pi / 3)) / 2),
        ({"name": "step", "every": 1, "factor": 0.5}, 0.005),
        ({"name": "none"}, 0.01),
    ],
)
def test_epoch_schedules_follow_their_formula(tmp_path, schedule, expected):
    cfg = small_config(
        tmp_path, **{"train.lr": 0.01, "train.epochs": 3, "train.lr_schedule": schedule}
    )
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "cut", callbacks=[InterruptAfter(1)])
    saved = checkpoint.load(RunDir(tmp_path / "cut").checkpoint)
    assert _rates(saved) == pytest.approx([expected, expected])


@pytest.mark.parametrize("name", ["plateau", "cosine"])
def test_a_scheduled_run_resumes_exactly(tmp_path, name):
    cfg = _overfitting(tmp_path, name=name)
    full = train(cfg, run_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "cut", callbacks=[InterruptAfter(full.epochs // 2 + 1)])
    resumed = resume(tmp_path / "cut")
    assert [h.valid for h in resumed.history] == [h.valid for h in full.history]
    assert resumed.test == full.test


def test_an_unknown_schedule_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="train.lr_schedule.name"):
        small_config(tmp_path, **{"train.lr_schedule": {"name": "warmup"}})
