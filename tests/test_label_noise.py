"""`train.label_noise: channel`: flip rates estimated against the validation split, and training
through them (forward correction)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import recloss
from recloss.config import config_from_dict
from recloss.data import SplitArrays, prepare_dataset
from recloss.data.noise import NoisyTraining, flip_channel, flip_labels
from recloss.errors import ConfigError
from recloss.rundir import RunDir
from recloss.runs.online import build_trainer
from recloss.training.flip_channel import BOTH, MAX_FLIP_RATE, NEGATIVES, POSITIVES, noisy_logit
from recloss.training.label_noise import estimate_flip_rates

CARDINALITIES = (4, 40, 60)


def clean_split(n: int, seed: int, base: float = -1.0) -> SplitArrays:
    """Three fields; the label's log-odds add up per-value effects of two of them."""
    rng = np.random.default_rng(seed)
    x = np.stack([rng.integers(0, k, n) for k in CARDINALITIES], axis=1).astype(np.int32)
    effects = np.random.default_rng(99).normal(0, 1, size=(2, 60))  # the same in every split
    logit = base + effects[0][x[:, 0]] + effects[1][x[:, 1]]
    return SplitArrays(x, None, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8))


def estimate(train: SplitArrays, valid: SplitArrays):
    return estimate_flip_rates(train, valid, CARDINALITIES)


def rates_of(train: SplitArrays, valid: SplitArrays) -> np.ndarray:
    return estimate(train, valid)(torch.from_numpy(train.x_cat)).numpy()


def test_uniform_flips_are_estimated_at_their_rate():
    train, valid = clean_split(60_000, 0), clean_split(20_000, 1)
    rates = rates_of(flip_labels(train, 0.2, "uniform", seed=2), valid)
    assert rates.mean() == pytest.approx(0.2, abs=0.03)
    assert rates.std() < 0.03


def test_flips_that_depend_on_a_value_are_found_per_row():
    train, valid = clean_split(60_000, 0), clean_split(20_000, 1)
    rates = rates_of(flip_labels(train, 0.2, "feature", seed=2), valid)
    true = flip_channel(train, 0.2, "feature", seed=2).flip_rates(train.x_cat)
    assert np.corrcoef(rates, true)[0, 1] > 0.8
    assert rates[true > 0].mean() == pytest.approx(0.4, abs=0.08)
    assert rates[true == 0].mean() < 0.08


def test_flips_of_a_value_are_found_with_few_validation_rows_per_value():
    """About 33 validation rows per value of the noisy field: a per-value rate divided by a noisy
    `1 - 2 m_valid` would say nothing; the residual form still finds the noisy half."""
    train, valid = clean_split(60_000, 0), clean_split(2_000, 1)
    rates = rates_of(flip_labels(train, 0.2, "feature", seed=2), valid)
    true = flip_channel(train, 0.2, "feature", seed=2).flip_rates(train.x_cat)
    assert np.corrcoef(rates, true)[0, 1] > 0.8
    assert rates[true > 0].mean() - rates[true == 0].mean() > 0.2


def test_uniform_flips_spread_no_field():
    train, valid = clean_split(60_000, 0), clean_split(2_000, 1)
    for seed in range(3):
        assert estimate(flip_labels(train, 0.3, "uniform", seed=seed), valid).spreads == (0.0,) * 3


def test_clean_labels_get_rates_near_zero():
    rates = rates_of(clean_split(60_000, 0), clean_split(20_000, 1))
    assert rates.mean() < 0.02 and rates.max() <= MAX_FLIP_RATE


def test_a_shift_past_one_half_is_read_as_positives_turned_negative():
    train, valid = clean_split(60_000, 0, base=1.5), clean_split(20_000, 1, base=1.5)
    assert valid.y.mean() > 0.6  # positives turned negatives at 40% take the rate below 1/2
    noisy = flip_labels(train, 0.4, "positives", seed=2)
    assert noisy.y.mean() < 0.5
    rates = estimate(noisy, valid)
    assert rates.kind is POSITIVES and rates.spreads == (0.0,) * 3
    assert rates.overall == pytest.approx(0.4, abs=0.02)


def test_one_sided_flips_that_move_a_rate_away_from_one_half_are_read_as_such():
    train, valid = clean_split(60_000, 0), clean_split(20_000, 1)
    assert valid.y.mean() < 0.4  # positives turned negatives move the rate away from 1/2
    rates = estimate(flip_labels(train, 0.2, "positives", seed=2), valid)
    assert rates.kind is POSITIVES and rates.overall == pytest.approx(0.2, abs=0.03)
    assert "rate of positives turned negative 0.2" in rates.describe(("a", "b", "c"))


def test_negatives_turned_positive_are_read_as_such():
    train, valid = clean_split(60_000, 0, base=1.5), clean_split(20_000, 1, base=1.5)
    rates = estimate(flip_labels(train, 0.3, "negatives", seed=3), valid)
    assert rates.kind is NEGATIVES and rates.overall == pytest.approx(0.3, abs=0.03)


def test_negatives_turned_positive_towards_one_half_are_told_from_flips_of_both_classes():
    """With positives the minority, accidental clicks move the rate towards 1/2 as flips of both
    classes would; the values' rates tell the two apart (slope 1 - r, not 1 - 2r)."""
    train, valid = clean_split(60_000, 0), clean_split(20_000, 1)
    assert valid.y.mean() < 0.4
    rates = estimate(flip_labels(train, 0.2, "negatives", seed=3), valid)
    assert rates.kind is NEGATIVES and rates.overall == pytest.approx(0.2, abs=0.03)
    for seed in range(3):  # and flips of both classes, by value or not, stay what they are
        for mode in ("uniform", "feature"):
            assert estimate(flip_labels(train, 0.2, mode, seed=seed), valid).kind is BOTH


def test_positives_turned_negative_by_value_are_found_per_row():
    train, valid = clean_split(60_000, 0), clean_split(20_000, 1)
    noisy = flip_labels(train, 0.3, "feature-positives", seed=2)
    rates = rates_of(noisy, valid)
    true = flip_channel(train, 0.3, "feature-positives", seed=2).flip_rates(train.x_cat)
    assert estimate(noisy, valid).kind is POSITIVES
    assert np.corrcoef(rates, true)[0, 1] > 0.8
    assert rates[true > 0].mean() - rates[true == 0].mean() > 0.4


def test_a_split_whose_rates_moved_away_from_one_half_is_not_read_as_flips():
    """Training rows drawn with the second field's effects doubled, as a split in time drifts:
    their rates sit farther from 1/2 than the validation rows', which no symmetric flips do."""
    train, valid = clean_split(60_000, 0), clean_split(20_000, 1)
    effects = np.random.default_rng(99).normal(0, 1, size=(2, 60))
    logit = -1.0 + effects[0][train.x_cat[:, 0]] + 2 * effects[1][train.x_cat[:, 1]]
    drifted = np.random.default_rng(5).random(len(logit)) < 1 / (1 + np.exp(-logit))
    rates = estimate(SplitArrays(train.x_cat, None, drifted.astype(np.int8)), valid)
    assert rates.kind is None and rates.moved_field == 1
    assert "the positive rates of b's values moved" in rates.describe(("a", "b", "c"))
    assert rates(torch.from_numpy(train.x_cat)).abs().max() == 0


def test_a_split_whose_rates_moved_up_under_a_lower_overall_rate_is_not_read_as_flips():
    """A lower positive rate overall reads as positives turned negative, which pull every
    value's rate down; the second field's effects doubled take some of its values' rates up."""
    train, valid = clean_split(60_000, 0), clean_split(20_000, 1)
    effects = np.random.default_rng(99).normal(0, 1, size=(2, 60))
    logit = -1.5 + effects[0][train.x_cat[:, 0]] + 2 * effects[1][train.x_cat[:, 1]]
    drifted = np.random.default_rng(5).random(len(logit)) < 1 / (1 + np.exp(-logit))
    assert drifted.mean() < valid.y.mean() - 0.02
    rates = estimate(SplitArrays(train.x_cat, None, drifted.astype(np.int8)), valid)
    assert rates.kind is None and rates.moved_field == 1


def test_the_noisy_logit_is_that_of_the_flipped_probability():
    z = torch.linspace(-20, 20, 41, dtype=torch.float64)
    for r in (0.0, 0.1, 0.3, MAX_FLIP_RATE):
        rate = torch.full_like(z, r)
        q = r + (1 - 2 * r) * torch.sigmoid(z)
        torch.testing.assert_close(noisy_logit(z, rate), torch.log(q) - torch.log1p(-q))
    torch.testing.assert_close(noisy_logit(z, torch.zeros_like(z)), z)
    far = torch.tensor([-1e4, 1e4], requires_grad=True)
    noisy_logit(far, torch.full((2,), 0.2)).sum().backward()
    assert torch.isfinite(far.grad).all()


def test_the_noisy_logit_of_positives_lost_is_that_of_the_scaled_probability():
    z = torch.linspace(-20, 20, 41, dtype=torch.float64)
    for r in (0.0, 0.2, 0.6, POSITIVES.max_rate):
        q = (1 - r) * torch.sigmoid(z)
        got = noisy_logit(z, torch.full_like(z, r), POSITIVES)
        torch.testing.assert_close(got, torch.log(q) - torch.log1p(-q))
    far = torch.tensor([-1e4, 1e4], requires_grad=True)
    noisy_logit(far, torch.tensor([0.0, 0.3]), POSITIVES).sum().backward()
    assert torch.isfinite(far.grad).all()


def _config(tmp_path, label_noise: str = "channel", loss: str = "ce") -> dict:
    return {
        "data": {
            "dataset": "synthetic",
            "cache_dir": str(tmp_path / "cache"),
            "synthetic": {"rows": 6000, "fields": 5, "cardinality": 20},
        },
        "model": {"name": "deepfm", "embed_dim": 8, "params": {"hidden_dims": [16]}},
        "loss": {"name": loss},
        "train": {"epochs": 3, "batch_size": 256, "progress": False, "label_noise": label_noise},
    }


@pytest.mark.parametrize("mode", ["uniform", "positives"])
def test_training_through_the_channel_predicts_the_clean_labels(tmp_path, mode):
    """Flipped training labels pull CE's probabilities towards 1/2 (lost positives: down);
    through the estimated channel the model's probabilities match the clean validation labels'
    rate again."""
    means = {}
    for option in ("none", "channel"):
        cfg = _config(tmp_path, option)
        cfg["train"].update(lr=0.01, batch_size=128)  # long enough to fit the class prior
        cfg = config_from_dict(cfg)
        dataset = NoisyTraining(prepare_dataset(cfg.data), 0.3, mode, seed=0)
        trainer = build_trainer(cfg, dataset, None)
        trainer.fit()
        means[option] = trainer.predict(dataset.split("valid")).mean()
    clean = dataset.split("valid").y.mean()
    assert abs(means["channel"] - clean) < 0.5 * abs(means["none"] - clean)


def test_a_run_logs_the_estimate(tmp_path):
    record = recloss.train(_config(tmp_path), run_dir=tmp_path / "run")
    log = (tmp_path / "run" / "train.log").read_text()
    assert log.startswith("label noise: estimated flip rate 0.000")
    assert record.label_noise == {
        "overall": 0.0,
        "flips": "both",
        "spread_by_field": {},
        "moved_field": None,
    }
    assert RunDir(tmp_path / "run").read_record().label_noise == record.label_noise
    assert 0.5 < record.test["auc"] <= 1.0


def test_autoloss_trains_through_the_channel(tmp_path):
    cfg = _config(tmp_path, loss="autoloss")
    record = recloss.train(cfg, run_dir=tmp_path / "run")
    assert (tmp_path / "run" / "train.log").read_text().startswith("label noise: estimated")
    assert 0.5 < record.test["auc"] <= 1.0 and record.weights


@pytest.mark.parametrize("loss", ["slf", "race"])
def test_a_strategy_blind_to_the_channel_is_refused_before_training(tmp_path, loss):
    with pytest.raises(
        ConfigError, match=rf"label_noise: channel trains a single loss or .*autoloss.*, not {loss}"
    ):
        recloss.train(_config(tmp_path, loss=loss), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_multiclass_task_is_refused_before_training(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 6, 600), rng.integers(0, 6, 600)
    rows = {"a": a.astype(str), "b": b.astype(str), "y": (a + b) % 3}
    cfg = _config(tmp_path)
    cfg["data"] = {
        "cache_dir": str(tmp_path / "cache"),
        "task": "multiclass",
        "table": {"label": "y", "categorical": ["a", "b"]},
    }
    with pytest.raises(ConfigError, match=r"label_noise: channel is for binary tasks, not 3 class"):
        recloss.train(cfg, run_dir=tmp_path / "run", data=rows)
    assert not (tmp_path / "run").exists()
