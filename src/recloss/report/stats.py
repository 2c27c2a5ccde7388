"""Mean and spread over seeds, a paired t-test, and table cells with their bold and marks.

The best mean is bold, and the compared method (AutoLoss) gets `*` where a paired t-test against
the best rival gives p < ALPHA in its favour (`†` where against it). A grid trains every method
on the same split with the same seeds, so the test pairs the two methods' runs by seed, on the
seeds both finished: a seed's split, initialisation and batch order are shared, and pairing
removes their variance from the comparison.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from recloss.errors import ConfigError

ALPHA = 0.05
BETTER, WORSE = "*", "\u2020"
Key = tuple[str, str, str, str]  # dataset, model, method, source ("" unless a transfer cell)
Index = dict[Key, list[dict[str, Any]]]


@dataclass(frozen=True)
class Stat:
    """One metric of one cell group over its seeds."""

    values: tuple[float, ...]
    seeds: tuple[int, ...] = ()  # the seed of each value; none: the values pair with nothing

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return math.fsum(self.values) / self.n if self.n else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); 0 for a single seed."""
        if self.n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(math.fsum((v - m) ** 2 for v in self.values) / (self.n - 1))


def index_rows(rows: Iterable[dict[str, Any]]) -> Index:
    """Finished rows grouped by (dataset, model, method, source)."""
    index: Index = defaultdict(list)
    for row in rows:
        if row.get("status", "done") == "done":
            key = (row["dataset"], row["model"], row["method"], row.get("source") or "")
            index[key].append(row)
    return index


def stat(index: Index, key: Key, metric: str) -> Stat:
    """The finite values of `metric` over the rows of `key`, with their seeds."""
    pairs = [(r.get("seed"), r.get(metric)) for r in index.get(key, [])]
    kept = [(seed, float(v)) for seed, v in pairs if v is not None and math.isfinite(float(v))]
    return Stat(tuple(v for _, v in kept), tuple(seed for seed, _ in kept))


def paired_p(a: Stat, b: Stat) -> float:
    """Two-sided p-value of the paired t-test of `a` and `b` on their common seeds.

    NaN when undefined: fewer than two common seeds, or the same difference on every seed.
    """
    try:
        from scipy.stats import t
    except ImportError:
        raise ConfigError("significance tests need SciPy: pip install scipy") from None
    of_b = dict(zip(b.seeds, b.values, strict=True))
    diffs = Stat(tuple(v - of_b[s] for s, v in zip(a.seeds, a.values, strict=True) if s in of_b))
    if diffs.n < 2 or diffs.std == 0:
        return math.nan
    statistic = diffs.mean / (diffs.std / math.sqrt(diffs.n))
    return float(2 * t.sf(abs(statistic), diffs.n - 1))


@dataclass(frozen=True)
class Entry:
    """A formatted table cell with its emphasis."""

    text: str
    bold: bool = False
    mark: str = ""


def marked(
    stats: dict[str, Stat], higher: bool, compare: str | None = None, digits: int = 4
) -> dict[str, Entry]:
    """Format competing methods: the best mean bold (every mean that shows as the best one, so
    that a tie at the digits shown is bold twice), `compare` tested against the best rival."""
    means = {k: s.mean for k, s in stats.items() if s.n}
    best = (max if higher else min)(means.values()) if means else None
    shown_best = None if best is None else f"{best:.{digits}f}"
    marks = {compare: _significance(stats, compare, higher)} if compare in means else {}
    return {
        k: Entry(
            fmt(s, digits),
            bold=k in means and f"{means[k]:.{digits}f}" == shown_best,
            mark=marks.get(k, ""),
        )
        for k, s in stats.items()
    }


def _significance(stats: dict[str, Stat], compare: str, higher: bool) -> str:
    """`*` (better) or `†` (worse) where `compare` differs from the best rival at p < ALPHA."""
    rivals = {k: s for k, s in stats.items() if k != compare and s.n >= 2}
    if not rivals or stats[compare].n < 2:
        return ""
    sign = 1 if higher else -1
    rival = max(rivals.values(), key=lambda s: sign * s.mean)
    if not paired_p(stats[compare], rival) < ALPHA:
        return ""
    return BETTER if sign * (stats[compare].mean - rival.mean) > 0 else WORSE


def fmt(s: Stat, digits: int = 4) -> str:
    """`mean ± std`, the mean alone for one seed, a dash for none."""
    if s.n == 0:
        return "\u2013"
    if s.n == 1:
        return f"{s.mean:.{digits}f}"
    return f"{s.mean:.{digits}f} \u00b1 {s.std:.{digits}f}"


__all__ = [
    "ALPHA",
    "BETTER",
    "WORSE",
    "Entry",
    "Index",
    "Key",
    "Stat",
    "fmt",
    "index_rows",
    "marked",
    "paired_p",
    "stat",
]
