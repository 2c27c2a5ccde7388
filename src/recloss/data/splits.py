"""Exact, seeded assignment of rows to the train/valid/test splits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "valid", "test")


def split_sizes(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Rows per split: valid and test rounded to the nearest row, train takes the rest
    (`fractions`: `data.split`, checked by the config)."""
    valid, test = (int(n * f + 0.5) for f in fractions[1:])
    if valid + test > n:
        test = n - valid
    return n - valid - test, valid, test


def assign_splits(n: int, fractions: Sequence[float], seed: int) -> np.ndarray:
    """Split index (0 train, 1 valid, 2 test) of each row, in file order, exactly sized."""
    sizes = split_sizes(n, fractions)
    labels = np.repeat(np.arange(3, dtype=np.int8), sizes)
    np.random.default_rng(seed).shuffle(labels)
    return labels
