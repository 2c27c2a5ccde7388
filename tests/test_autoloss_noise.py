"""Label noise for the AutoLoss robustness benchmark: training labels only, at the given rate."""

import numpy as np
import pytest

from recloss.data.batches import SplitArrays
from recloss.data.noise import NoisyTraining, flip_labels
from recloss.errors import ConfigError


def split(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, size=(n, 2)).astype(np.int32)
    return SplitArrays(x, None, (rng.random(n) < 0.3).astype(np.int8))


class Prepared:
    def __init__(self):
        self.splits = {name: split(seed=i) for i, name in enumerate(("train", "valid", "test"))}
        self.schema = "schema"

    def split(self, name):
        return self.splits[name]


def test_uniform_noise_flips_the_given_share_of_both_classes():
    clean = split()
    noisy = flip_labels(clean, 0.2, "uniform", seed=1)
    flipped = noisy.y != clean.y
    assert flipped.mean() == pytest.approx(0.2, abs=0.01)
    assert (clean.y[flipped] == 1).any() and (clean.y[flipped] == 0).any()
    assert noisy.y.dtype == clean.y.dtype and noisy.x_cat is clean.x_cat


def test_positive_noise_turns_positives_into_negatives_only():
    clean = split()
    noisy = flip_labels(clean, 0.4, "positives", seed=1)
    flipped = noisy.y != clean.y
    assert (clean.y[flipped] == 1).all()
    assert flipped[clean.y == 1].mean() == pytest.approx(0.4, abs=0.02)


def test_only_the_training_split_is_noisy():
    data = Prepared()
    noisy = NoisyTraining(data, 0.4, "uniform", seed=3)
    assert (noisy.split("train").y != data.split("train").y).mean() > 0.35
    for name in ("valid", "test"):
        assert np.array_equal(noisy.split(name).y, data.split(name).y)
    assert noisy.schema == "schema"


@pytest.mark.parametrize(("rate", "mode"), [(1.5, "uniform"), (0.2, "swap")])
def test_bad_noise_settings_are_refused(rate, mode):
    with pytest.raises(ConfigError):
        flip_labels(split(100), rate, mode, seed=0)
