"""Label noise for the AutoLoss robustness benchmark: training labels only, at the given rate."""

import numpy as np
import pytest

from recloss.data.batches import SplitArrays
from recloss.data.noise import NoisyTraining, flip_channel, flip_labels
from recloss.errors import ConfigError


def split(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, size=(n, 2)).astype(np.int32)
    return SplitArrays(x, None, (rng.random(n) < 0.3).astype(np.int8))


def two_fields(n: int, width: int) -> SplitArrays:
    """A field of 3 values and one of `width` values; labels positive at 0.3, by chance."""
    rng = np.random.default_rng(0)
    x = np.stack([rng.integers(0, 3, n), rng.integers(0, width, n)], axis=1).astype(np.int32)
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


def test_feature_noise_flips_half_the_values_of_the_widest_field_at_twice_the_rate():
    clean = two_fields(40_000, 50)
    x = clean.x_cat
    flipped = flip_labels(clean, 0.2, "feature", seed=1).y != clean.y
    rate_by_value = np.array([flipped[x[:, 1] == v].mean() for v in range(50)])
    noisy = rate_by_value > 0.2  # field 1 (50 values) decides, each value all or nothing
    assert 15 <= noisy.sum() <= 35
    assert rate_by_value[noisy] == pytest.approx(0.4, abs=0.08)
    assert (rate_by_value[~noisy] == 0).all()
    assert flipped.mean() == pytest.approx(0.4 * noisy[x[:, 1]].mean(), abs=0.01)
    assert (clean.y[flipped] == 1).any() and (clean.y[flipped] == 0).any()


def test_feature_positive_noise_turns_positives_of_half_the_values_negative():
    clean = two_fields(40_000, 50)
    x = clean.x_cat
    flipped = flip_labels(clean, 0.3, "feature-positives", seed=1).y != clean.y
    assert (clean.y[flipped] == 1).all()
    positives = clean.y == 1
    rate_by_value = np.array([flipped[positives & (x[:, 1] == v)].mean() for v in range(50)])
    noisy = rate_by_value > 0.3
    assert 15 <= noisy.sum() <= 35
    assert rate_by_value[noisy] == pytest.approx(0.6, abs=0.15)
    assert (rate_by_value[~noisy] == 0).all()


def test_negative_noise_turns_negatives_into_positives_only():
    clean = split()
    flipped = flip_labels(clean, 0.1, "negatives", seed=1).y != clean.y
    assert (clean.y[flipped] == 0).all()
    assert flipped[clean.y == 0].mean() == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize(
    "mode", ["uniform", "positives", "negatives", "feature", "feature-positives"]
)
def test_the_channel_describes_the_flips_drawn(mode):
    clean = two_fields(60_000, 40)
    x = clean.x_cat
    noisy = flip_labels(clean, 0.2, mode, seed=4).y
    a, b = flip_channel(clean, 0.2, mode, seed=4).coefficients(x)
    for coefficients in set(zip(a.tolist(), b.tolist(), strict=True)):  # rows alike in the channel
        rows = (a == coefficients[0]) & (b == coefficients[1])
        for label in (0, 1):  # P(noisy = 1 | clean = label) = a + b * label
            among = rows & (clean.y == label)
            expected = coefficients[0] + coefficients[1] * label
            assert noisy[among].mean() == pytest.approx(expected, abs=0.02)


def test_only_the_training_split_is_noisy():
    data = Prepared()
    noisy = NoisyTraining(data, 0.4, "uniform", seed=3)
    assert (noisy.split("train").y != data.split("train").y).mean() > 0.35
    for name in ("valid", "test"):
        assert np.array_equal(noisy.split(name).y, data.split(name).y)
    assert noisy.schema == "schema"
    assert noisy.channel().flip_rates(data.split("train").x_cat).tolist() == [0.4] * 20_000


@pytest.mark.parametrize(
    ("rate", "mode"),
    [(1.5, "uniform"), (0.2, "swap"), (0.3, "feature"), (0.6, "feature-positives")],
)
def test_bad_noise_settings_are_refused(rate, mode):
    with pytest.raises(ConfigError):
        flip_labels(split(100), rate, mode, seed=0)
