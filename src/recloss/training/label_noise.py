"""The label-flip channel of the training split, estimated against the validation split.

`train.label_noise: channel` assumes the training labels may be flipped, at a rate that may
depend on the row's categorical values, and that the validation labels are clean and drawn like
the training rows. Flips of both classes alike at rate `r` pull a positive rate `m` to
`m + r (1 - 2m)`, towards 1/2; flips of positives only (clicks or conversions not recorded, as
with delayed feedback) to `(1 - r) m`, down; flips of negatives only to `m + r (1 - m)`, up
(`FlipKind`: `m + r c(m)`). Which kind, and its overall rate `(m_train - m_valid) / c(m_valid)`
shrunk against its sampling variance, come from the two splits' positive rates: a rate that moved
away from 1/2 or past it is read as flips of the one class that can move it so; one that moved
towards 1/2 as flips of both classes, unless the values' rates moved along the line flips of that
one class draw (`_along_one_class`). A row's rate is the overall rate plus, per field, its value's
deviation `d` from it, which leaves the residual `m_train - r alpha - (1 - r beta) m_valid =
d c(m)`; each field's spread of true deviations (a moment estimate as DerSimonian and Laird's,
counted where Cochran's test on the residuals finds one) shrinks each value's deviation against
its sampling variance (empirical Bayes). The idea of a clean "trusted" split for estimating the
corruption is Hendrycks et al.'s (NeurIPS 2018). The model then trains through the estimated
channel (`recloss.training.flip_channel`).

A field whose values' rates moved against the flips of the kind found beyond chance (away from
1/2 under flips of both classes, up under flips of positives) turns the correction off: the
splits were drawn unlike each other, as in a split in time. What it cannot see: flips whose
overall shift another kind's would explain and whose values' rates vary too little to tell the
two lines apart (flips of one class that move the rate towards 1/2 are then read as flips of
both), flips where a value's contrast is small (a rate near 1/2 under flips of
both classes, near 0 under flips of positives), values the validation split has few rows of
(their deviations shrink to none), and splits drawn unlike each other whose shift moves rates
only as flips would (read as flips).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.stats import chi2, norm

from recloss.data.batches import SplitArrays
from recloss.training.flip_channel import BOTH, NEGATIVES, POSITIVES, FlipKind, FlipRates

MIN_CONTRAST = 0.1  # the least |1 - 2m| divided by: values near m = 1/2 say little of flips

# A variance from a rare value's own few rows is often too small, and the tests then find spreads
# or shifts that are chance: a value's rate is shrunk with these many rows at its split's rate.
VARIANCE_PRIOR_ROWS = 20
SPREAD_LEVEL = 0.01  # the tests' false-alarm rate on labels flipped alike, all fields together
COUNT_BLOCK = 1 << 20  # rows counted at a time

Counts = list[tuple[np.ndarray, np.ndarray]]  # per field: each value's positives and rows


def estimate_flip_rates(
    train: SplitArrays, valid: SplitArrays, cardinalities: Sequence[int]
) -> FlipRates:
    """The flip rates of `train`'s labels, judged against `valid`'s (taken as clean);
    `cardinalities`: the values of each categorical field (the schema's)."""
    y_train, y_valid = np.asarray(train.y, np.float64), np.asarray(valid.y, np.float64)
    level = SPREAD_LEVEL / max(len(cardinalities), 1)  # Bonferroni over the fields
    (in_train,) = _value_counts(train.x_cat, y_train, cardinalities)
    halves = _value_counts(valid.x_cat, y_valid, cardinalities, parts=2)
    kind = _flip_kind(y_train, y_valid, in_train, halves, level)
    overall, variance = _shrunk_rate(*_overall_rate(y_train, y_valid, kind), kind)
    per_field = [
        (*counts_train, first[0] + second[0], first[1] + second[1])
        for counts_train, first, second in zip(in_train, *halves, strict=True)
    ]
    means = (y_train.mean(), y_valid.mean())
    for index, counts in enumerate(per_field):
        if _moved_away(counts, means, level, kind):
            return FlipRates.contradicted(len(cardinalities), moved_field=index)
    tables, spreads = [], []
    for counts in per_field:
        deviation, spread = _value_deviations(
            counts, (overall, variance), y_valid.mean(), level, kind
        )
        tables.append(deviation)
        spreads.append(spread)
    offsets = np.concatenate(([0], np.cumsum(cardinalities)))[: len(cardinalities)]
    return FlipRates(
        overall,
        torch.from_numpy(np.concatenate(tables)).float() if tables else torch.zeros(0),
        torch.from_numpy(offsets.astype(np.int64)),
        tuple(spreads),
        kind,
    )


def _flip_kind(
    y_train: np.ndarray,
    y_valid: np.ndarray,
    in_train: Counts,
    halves: list[Counts],
    level: float,
) -> FlipKind:
    """Which labels flip, from the two splits' positive rates (and the counts per value of the
    training split, `in_train`, and of the validation split's two halves). Flips of both classes
    alike pull the rate towards 1/2, never away from it or past it; a rate that moved so beyond
    chance moved as only flips of one class move it: down, positives turned negative; up, the
    reverse. A rate that moved towards 1/2 beyond chance is read as flips of that one class where
    the values' rates moved along its line."""
    rate, variance = _overall_rate(y_train, y_valid, BOTH)
    one_class = POSITIVES if y_train.mean() < y_valid.mean() else NEGATIVES
    if not -2 * variance**0.5 <= rate < 0.5:
        return one_class
    if rate > 2 * variance**0.5 and _along_one_class(y_train, y_valid, in_train, halves, level):
        return one_class
    return BOTH


def _along_one_class(
    y_train: np.ndarray,
    y_valid: np.ndarray,
    in_train: Counts,
    halves: list[Counts],
    level: float,
) -> bool:
    """Whether a rate that moved towards 1/2 moved as flips of one class move it. Both kinds
    move it so, but along different lines in the values' clean rates `m` (slopes `1 - 2r` and
    `1 - r`): read as flips of both classes, flips of one class leave residuals that rise with
    `m` (`(2r - rho) (m - mean)`). Tested per field at `level`, with `m` from one half of the
    validation rows and the residuals from the other, so that the two share no sampling noise."""
    overall = _shrunk_rate(*_overall_rate(y_train, y_valid[::2], BOTH), BOTH)
    prior = y_valid.mean()
    for counts_train, counts_first, (s_x, n_x) in zip(in_train, *halves, strict=True):
        found = _residuals((*counts_train, *counts_first), overall, prior, BOTH)
        if found is None:
            continue
        both, residual, residual_variance, contrast = found
        m = _shrunk_to(s_x[both], n_x[both], prior)
        # a field's own spread of rates (flips by feature) is noise to the slope, not signal
        spread2 = _true_spread2(residual, residual_variance, contrast, level)
        weight = 1.0 / (residual_variance + contrast**2 * spread2)
        centred = m - np.sum(weight * m) / np.sum(weight)
        spread = np.sum(weight * centred**2)
        if spread > 0 and np.sum(weight * centred * residual) / spread**0.5 > norm.isf(level):
            return True
    return False


def _value_counts(
    x_cat: np.ndarray, y: np.ndarray, cardinalities: Sequence[int], parts: int = 1
) -> list[Counts]:
    """Per part of the rows (row r in part r % parts) and field, each value's positives and rows,
    in one pass over blocks of rows (a memory-mapped table is read once, never copied whole)."""
    found = [
        [(np.zeros(size), np.zeros(size, np.int64)) for size in cardinalities] for _ in range(parts)
    ]
    for lo in range(0, len(x_cat), COUNT_BLOCK):  # COUNT_BLOCK is a multiple of parts
        block, labels = np.asarray(x_cat[lo : lo + COUNT_BLOCK]), y[lo : lo + COUNT_BLOCK]
        for part, counts in enumerate(found):
            in_part = block[part::parts]
            for (positives, rows), values in zip(counts, in_part.T, strict=True):
                positives += np.bincount(values, labels[part::parts], len(positives))
                rows += np.bincount(values, minlength=len(rows))
    return found


def _overall_rate(y_train: np.ndarray, y_valid: np.ndarray, kind: FlipKind) -> tuple[float, float]:
    """The rate of flips of `kind` that moves the clean (validation) positive rate `m_v` to the
    noisy (training) one `m_t`, `(m_t - m_v) / contrast(m_v)`, and its sampling variance were the
    labels alike in both splits (their pooled rate, with two rows at `m_v`: no variance of 0 where
    a few labels agree). Flips of both classes: `|1 - 2 m_v|` at least MIN_CONTRAST; of one, the
    contrast vanishes only where the validation labels are all of one class."""
    s_t, n_t, s_v, n_v = y_train.sum(), len(y_train), y_valid.sum(), len(y_valid)
    m_v = s_v / n_v
    least = MIN_CONTRAST if kind is BOTH else 1.0 / n_v
    contrast = math.copysign(max(abs(kind.contrast(m_v)), least), kind.contrast(m_v))
    pooled = (s_t + s_v + 2 * m_v) / (n_t + n_v + 2)
    variance = pooled * (1 - pooled) * (1 / n_t + 1 / n_v) / contrast**2
    return float((s_t / n_t - m_v) / contrast), float(variance)


def _shrunk_rate(rate: float, variance: float, kind: FlipKind) -> tuple[float, float]:
    """The rate kept in the share its square exceeds its sampling variance (none when within
    the noise), in `[0, kind.max_rate]`, and its variance."""
    shrunk = rate * max(0.0, 1.0 - variance / max(rate**2, 1e-12))
    return min(max(shrunk, 0.0), kind.max_rate) + 0.0, variance


def _shrunk_to(positives: np.ndarray, rows: np.ndarray, prior: float) -> np.ndarray:
    """Values' positive rates with VARIANCE_PRIOR_ROWS more rows at `prior` each."""
    return (positives + VARIANCE_PRIOR_ROWS * prior) / (rows + VARIANCE_PRIOR_ROWS)


def _in_both(counts: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Which values both splits have rows of, and their `(positives, rows)` counts in each."""
    both = (counts[1] > 0) & (counts[3] > 0)
    return both, tuple(np.asarray(c, np.float64)[both] for c in counts)


def _moved_away(
    counts: tuple[np.ndarray, ...], means: tuple[float, float], level: float, kind: FlipKind
) -> bool:
    """Whether a field's values' positive rates moved against the flips of `kind` between the
    splits beyond chance (at `level`), from each value's `(positives, rows)` in the training split
    and then the validation split, and the two splits' positive rates. Flips of both classes alike
    pull every rate towards 1/2, whatever their rate, and flips of positives pull every rate down,
    so such a shift is the splits' own: drawn unlike each other, as a split in time is."""
    both, (s_t, n_t, s_v, n_v) = _in_both(counts)
    if not both.any():
        return False
    m_t, m_v = _shrunk_to(s_t, n_t, means[0]), _shrunk_to(s_v, n_v, means[1])
    scale = np.sqrt(m_t * (1 - m_t) / n_t + m_v * (1 - m_v) / n_v)
    with_flips = (s_t / n_t - s_v / n_v) * np.sign(kind.contrast(m_v)) / scale
    # with no rate moved, the squares of the negative ones sum to n/2 on average, variance 1.25 n
    away = float(np.sum(np.minimum(with_flips, 0.0) ** 2))
    n = len(with_flips)
    return (away - n / 2) / np.sqrt(1.25 * n) > norm.isf(level)


def _value_deviations(
    counts: tuple[np.ndarray, ...],
    overall: tuple[float, float],
    prior: float,
    level: float,
    kind: FlipKind,
) -> tuple[np.ndarray, float]:
    """One field's per-value deviations from the overall rate, shrunk, and their spread, from
    each value's `(positives, rows)` in the training split and then the validation split;
    `overall`: the overall rate and its sampling variance, `level`: the test's."""
    deviations = np.zeros(len(counts[0]))
    found = _residuals(counts, overall, prior, kind)
    if found is None:
        return deviations, 0.0
    both, residual, variance, contrast = found
    spread2 = _true_spread2(residual, variance, contrast, level)
    deviations[both] = contrast * spread2 * residual / (contrast**2 * spread2 + variance)
    return deviations, spread2**0.5


def _residuals(
    counts: tuple[np.ndarray, ...], overall: tuple[float, float], prior: float, kind: FlipKind
) -> tuple[np.ndarray, ...] | None:
    """Which values both splits have rows of, and their residuals, the residuals' variances and
    the values' contrasts (None: fewer than two such values).

    Flips at `r + d` move a value's clean rate `m` to `a + b m + d c(m)` (`a = alpha r`,
    `b = 1 - beta r`, the contrast `c(m) = alpha - beta m`; for flips of both classes
    `r + (1 - 2r) m + d (1 - 2m)`), so the residual `m_train - a - b m_valid` is `d c(m)` plus
    sampling noise of known variance. Tested and shrunk in this form, a value whose validation
    rows are few or whose contrast is small adds noise to the test, not a division by a noisy
    contrast; its deviation shrinks towards none.
    """
    both, (s_t, n_t, s_v, n_v) = _in_both(counts)
    if both.sum() < 2:
        return None
    rate, rate_variance = overall
    intercept, slope = kind.alpha * rate, 1.0 - kind.beta * rate
    residual = s_t / n_t - intercept - slope * s_v / n_v
    # the residual's variance were flips at `rate` alike: the value's clean rate from both splits
    # (the training rows' with the flips undone), shrunk towards the prior
    from_train = np.clip((s_t / n_t - intercept) / slope, 0.0, 1.0) * n_t
    clean = _shrunk_to(from_train + s_v, n_t + n_v, prior)
    noisy = intercept + slope * clean
    variance = noisy * (1 - noisy) / n_t + slope**2 * clean * (1 - clean) / n_v
    # the overall rate's own error moves every residual by about (r_true - r) c(prior)
    variance = np.maximum(variance + rate_variance * kind.contrast(prior) ** 2, 1e-12)
    contrast = kind.contrast((s_v + 2 * prior) / (n_v + 2))
    return both, residual, variance, contrast


def _true_spread2(
    residual: np.ndarray, variance: np.ndarray, contrast: np.ndarray, level: float
) -> float:
    """The variance of a field's true deviations `d` from its values' residuals `d (1 - 2m)`
    (`contrast`) and their sampling variances, a moment estimate as DerSimonian and Laird's
    (Controlled Clinical Trials, 1986), counted only where Cochran's test finds a spread beyond
    chance at `level`."""
    dof = len(residual) - 1
    q = float(np.sum(residual**2 / variance))
    if q <= chi2.isf(level, dof):
        return 0.0
    return (q - dof) / float(np.sum(contrast**2 / variance))


__all__ = ["estimate_flip_rates"]
