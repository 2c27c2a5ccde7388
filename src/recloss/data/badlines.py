"""Malformed input rows: stop at the first one with its file and line, or skip and count them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from recloss.errors import DataError

log = logging.getLogger("recloss.data")

# A located bad line: (line number for ordering, "file:line", what is wrong).
Found = tuple[int, str, str]


class BadLines:
    """The bad-line policy of one pass over the data and its count of skipped lines."""

    def __init__(self, mode: Literal["error", "skip"] = "error", logged: int = 5) -> None:
        self.mode = mode
        self.count = 0
        self._log_left = logged  # skipped lines named in the log before only counting

    @property
    def examples_wanted(self) -> int:
        """How many bad lines of a batch are worth locating (one to raise on, or a few to log)."""
        return 1 if self.mode == "error" else self._log_left

    def reject(self, found: Sequence[Found], total: int) -> None:
        """Handle `total` bad lines of which `found` are located: raise on the first, or count."""
        if total == 0:
            return
        ordered = sorted(found)
        if self.mode == "error":
            _, where, problem = ordered[0]
            raise DataError(f"{where}: {problem}")
        for _, where, problem in ordered[: self._log_left]:
            log.warning("skipped bad line %s: %s", where, problem)
        self._log_left = max(0, self._log_left - len(ordered))
        self.count += total


class RowChecks:
    """Bad rows of one batch, found by vectorised checks and handled in line order."""

    def __init__(self, n: int, path: str, line_of: Callable[[int], int], unit: str = "") -> None:
        self.path = path
        self.line_of = line_of  # row of the batch -> line (or row) number in the file, 1-based
        self.unit = unit  # "" for text lines ("file:12"), "row " for Parquet ("file:row 12")
        self.bad = np.zeros(n, dtype=bool)
        self.dropped = np.zeros(n, dtype=bool)
        self._checks: list[tuple[np.ndarray, Callable[[int], str]]] = []

    def add(self, mask: np.ndarray, describe: Callable[[int], str]) -> None:
        """Mark rows where `mask` is true as bad; `describe(row)` says what is wrong there."""
        mask = np.asarray(mask, dtype=bool) & ~self.bad & ~self.dropped
        if mask.any():
            self._checks.append((mask, describe))
            self.bad |= mask

    def drop(self, mask: np.ndarray) -> None:
        """Leave out rows that are no data but no error either (blank lines)."""
        self.dropped |= np.asarray(mask, dtype=bool) & ~self.bad

    def locate(self, row: int, problem: str) -> Found:
        """A bad line at `row` of this batch."""
        line = self.line_of(row)
        return line, f"{self.path}:{self.unit}{line}", problem

    def resolve(self, policy: BadLines, pending: Sequence[Found] = ()) -> np.ndarray:
        """Apply the policy to the bad rows and `pending` lines; return the rows to keep."""
        total = int(self.bad.sum()) + len(pending)
        if total:
            wanted = policy.examples_wanted
            rows = sorted(
                (
                    (int(row), describe)
                    for mask, describe in self._checks
                    for row in np.flatnonzero(mask)[:wanted]
                ),
                key=lambda rd: rd[0],
            )[:wanted]
            found = [self.locate(row, describe(row)) for row, describe in rows]
            policy.reject(list(pending[:wanted]) + found, total)
        return ~(self.bad | self.dropped)
