"""Label noise for robustness benchmarks: flip a share of the TRAINING labels, never the others.

`flip_labels` returns a copy of a split with labels flipped uniformly (`uniform`: each row with
probability `rate` gets another class, uniformly among the others), class-dependently
(`positives`: binary positives become negatives with probability `rate`, as unrecorded clicks do;
`negatives`: negatives become positives, as accidental clicks do), or feature-dependently
(`feature`: the rows of a random half of the values of the categorical field with the most values,
such as an item id, flip as `uniform` does at twice the rate, the other rows not at all; so
`rate` <= 0.25), or both (`feature-positives`: those rows' positives become negatives at twice
the rate, `rate` <= 0.5, as where some publishers' clicks go unrecorded). Flips that ignore the
features keep the noisy labels' positive rate an increasing function of the clean one, and with
it the ranking the labels call for; flips by feature do not: `feature` pulls the noisy values'
rows towards the middle, `feature-positives` pulls them down. `flip_channel` describes the flips
drawn, each row's flip probability (`FlipChannel`), for a benchmark's ceiling that knows them.
`NoisyTraining` wraps a prepared data set so that only its `train` split is noisy; validation and
test stay clean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recloss.data.batches import SplitArrays
from recloss.errors import ConfigError

NOISE_MODES = ("uniform", "positives", "negatives", "feature", "feature-positives")
POSITIVES_LOST = ("positives", "feature-positives")  # positives become negatives, never the reverse
ONE_SIDED = (*POSITIVES_LOST, "negatives")


@dataclass(frozen=True)
class FlipChannel:
    """How a mode flips labels: each row's flip probability, a function of its features and its
    clean label. For binary labels, `P(noisy = 1) = a + b * P(clean = 1)` (`coefficients`)."""

    mode: str
    rate: float
    field: int = 0  # `feature*`: the categorical field whose values decide
    noisy_values: np.ndarray | None = None  # `feature*`: whether each of its values is noisy

    def flip_rates(self, x_cat: np.ndarray) -> np.ndarray:
        """Per row, the probability that its label flips (one-sided: if it is a positive)."""
        if self.noisy_values is None:
            return np.full(len(x_cat), self.rate)
        values = np.asarray(x_cat)[:, self.field]
        seen = values < len(self.noisy_values)  # values after the training split's: clean
        noisy = np.zeros(len(values), dtype=bool)
        noisy[seen] = self.noisy_values[values[seen]]
        return 2 * self.rate * noisy

    def coefficients(self, x_cat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row `(a, b)` of a binary label: `P(noisy = 1) = a + b * P(clean = 1)`."""
        r = self.flip_rates(x_cat)
        if self.mode in POSITIVES_LOST:
            return np.zeros_like(r), 1.0 - r
        if self.mode == "negatives":
            return r, 1.0 - r
        return r, 1.0 - 2.0 * r


def flip_labels(split: SplitArrays, rate: float, mode: str, seed: int) -> SplitArrays:
    """A copy of `split` with noisy labels (`mode`: one of NOISE_MODES); the rest shared."""
    y = np.array(split.y, copy=True)
    classes = int(y.max()) + 1 if len(y) else 2
    if mode in ONE_SIDED and classes > 2:
        raise ConfigError(f"noise mode: {mode!r} is for binary labels")
    rng = np.random.default_rng(seed)
    draws = rng.random(len(y))
    hit = draws < _channel(split, rate, mode, rng).flip_rates(split.x_cat)
    if mode in ONE_SIDED:
        from_class = 1 if mode in POSITIVES_LOST else 0
        y[hit & (y == from_class)] = 1 - from_class
    else:
        shift = rng.integers(1, max(classes, 2), size=len(y))
        y[hit] = ((y.astype(np.int64) + shift) % max(classes, 2))[hit].astype(y.dtype)
    return SplitArrays(split.x_cat, split.x_num, y, dict(split.extra), source=split.source)


def flip_channel(split: SplitArrays, rate: float, mode: str, seed: int) -> FlipChannel:
    """The channel `flip_labels(split, rate, mode, seed)` draws its flips from."""
    rng = np.random.default_rng(seed)
    rng.random(len(split))  # the flips' draws come first, as in flip_labels
    return _channel(split, rate, mode, rng)


def _channel(split: SplitArrays, rate: float, mode: str, rng: np.random.Generator) -> FlipChannel:
    if mode not in NOISE_MODES:
        raise ConfigError(f"noise mode: unknown {mode!r}; choose one of: {', '.join(NOISE_MODES)}")
    by_feature = mode.startswith("feature")  # half the values at twice the rate
    highest = {"feature": 0.25, "feature-positives": 0.5}.get(mode, 1.0)
    if not 0.0 <= rate <= highest:
        raise ConfigError(f"noise rate: must be in [0, {highest}] for {mode!r}, got {rate!r}")
    if not by_feature:
        return FlipChannel(mode, rate)
    return FlipChannel(mode, rate, *_noisy_values(split, rng))


def _noisy_values(split: SplitArrays, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """The categorical field with the most values, and whether each of its values is among a
    random half of them."""
    if split.x_cat is None or split.x_cat.shape[1] == 0:
        raise ConfigError("noise mode: 'feature' and 'feature-positives' need a categorical field")
    x_cat = np.asarray(split.x_cat)
    if len(x_cat) == 0:
        return 0, np.zeros(0, dtype=bool)
    sizes = x_cat.max(axis=0).astype(np.int64) + 1
    field = int(np.argmax(sizes))
    return field, rng.random(int(sizes[field])) < 0.5


class NoisyTraining:
    """A prepared data set whose `train` split has flipped labels; the rest passes through."""

    def __init__(self, dataset: Any, rate: float, mode: str, seed: int) -> None:
        self._dataset, self.rate, self.mode, self.seed = dataset, rate, mode, seed

    def split(self, name: str) -> SplitArrays:
        """The split `name`; `train` with its labels flipped."""
        split = self._dataset.split(name)
        return flip_labels(split, self.rate, self.mode, self.seed) if name == "train" else split

    def channel(self) -> FlipChannel:
        """The channel the training labels' flips were drawn from."""
        return flip_channel(self._dataset.split("train"), self.rate, self.mode, self.seed)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._dataset, attr)


__all__ = ["NOISE_MODES", "FlipChannel", "NoisyTraining", "flip_channel", "flip_labels"]
