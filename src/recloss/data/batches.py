"""One split's arrays and the batch iterator over them (shuffled, sharded, prefetched)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from recloss.data.dedup import Deduplicator
from recloss.data.prefetch import prefetch
from recloss.data.schema import Batch
from recloss.errors import DataError


class SplitArrays:
    """Rows of one split: categorical indices, continuous features, class labels, extras.

    Rows read without a label column (a file to predict on) are built with `y=None`: they are
    not `labeled`, batches carry placeholder labels, and reading `y` raises a one-line error,
    so nothing scores them against made-up labels.
    """

    def __init__(
        self,
        x_cat: np.ndarray,
        x_num: np.ndarray | None,
        y: np.ndarray | None,
        extra: dict[str, np.ndarray] | None = None,
        *,
        source: str = "",
        bad_lines: int = 0,
    ) -> None:
        self.x_cat = x_cat  # int32 [N, F_cat], usually a read-only np.memmap
        self.x_num = x_num  # float32 [N, F_num]
        self._y = y  # int8/int16 class indices [N]; None: the rows have no labels
        self.extra = {} if extra is None else extra  # e.g. "p_true" [N]
        self.source = source  # where the rows were read from (a file, "frame"), for messages
        self.bad_lines = bad_lines  # lines skipped as bad while reading them

    @property
    def labeled(self) -> bool:
        """Whether the rows have class labels."""
        return self._y is not None

    @property
    def y(self) -> np.ndarray:
        """The class labels; refused for rows read without a label column."""
        if self._y is None:
            where = self.source or "the rows"
            raise DataError(f"{where} has no label column: use recloss predict")
        return self._y

    def __len__(self) -> int:
        return int(self.x_cat.shape[0])


class BatchLoader:
    """Mini-batches of a split as CPU tensors, like a DataLoader with a DistributedSampler.

    Each epoch's order is a permutation drawn from `(seed, epoch)`; rank r of `world_size` takes
    every world_size-th row of it, so ranks never overlap and together cover each row once. With
    `drop_last`, every rank yields the same number of full batches (what DDP training needs);
    without it, ranks may differ by one batch. Rows of a batch are gathered with one sorted
    fancy index per array and the next batches are prepared in a background thread, which with
    `dedup` also finds each batch's distinct categorical values (`Batch.lookup`), off the
    training step's critical path.
    """

    def __init__(
        self,
        split: SplitArrays,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        prefetch: int = 2,
        dedup: bool = False,
    ) -> None:
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.split = split
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.prefetch = prefetch
        self.dedup = dedup
        self.epoch = self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the epoch whose permutation the next iteration uses, and its first batch (a
        resumed epoch skips the batches it has trained on)."""
        self.epoch, self.start_batch = epoch, start_batch

    def _shard_size(self) -> int:
        n = len(self.split)
        if self.drop_last:
            return n // self.world_size
        return len(range(self.rank, n, self.world_size))

    def examples(self, batches: int) -> int:
        """The rows this rank yields in the first `batches` batches of an epoch."""
        return min(batches * self.batch_size, self._shard_size())

    def __len__(self) -> int:
        rows = self._shard_size()
        if self.drop_last:
            return rows // self.batch_size
        return -(-rows // self.batch_size)

    def _rows(self) -> np.ndarray | slice:
        """This rank's rows in epoch order: an index array, or a slice when unshuffled."""
        n = len(self.split)
        stop = self.rank + self.world_size * len(self) * self.batch_size if self.drop_last else n
        if not self.shuffle:
            return slice(self.rank, min(stop, n), self.world_size)
        order = np.random.default_rng((self.seed, self.epoch)).permutation(n)
        return order[self.rank : stop : self.world_size]

    def _batches(self) -> Iterator[Batch]:
        rows = self._rows()
        dedup = Deduplicator() if self.dedup else None  # one per iteration: its own thread
        for b in range(self.start_batch, len(self)):
            lo, hi = b * self.batch_size, (b + 1) * self.batch_size
            if isinstance(rows, slice):
                step = rows.step
                start = rows.start + lo * step
                idx: np.ndarray | slice = slice(start, min(rows.start + hi * step, rows.stop), step)
            else:
                idx = np.sort(rows[lo:hi])
            yield self._gather(idx, dedup)

    def _gather(self, idx: np.ndarray | slice, dedup: Deduplicator | None = None) -> Batch:
        s = self.split
        x_cat = _take(s.x_cat, idx)
        y = s.y[idx].astype(np.int64) if s.labeled else np.zeros(len(x_cat), np.int64)
        return Batch(
            x_cat=x_cat,
            x_num=None if s.x_num is None else _take(s.x_num, idx),
            y=torch.from_numpy(y),
            lookup=None if dedup is None else dedup(x_cat.numpy()),
        )

    def __iter__(self) -> Iterator[Batch]:
        return prefetch(self._batches(), self.prefetch)


def _take(array: np.ndarray, idx: np.ndarray | slice) -> torch.Tensor:
    """Rows of a (memory-mapped) array copied into a tensor of their own."""
    rows = np.array(array[idx]) if isinstance(idx, slice) else np.asarray(array[idx])
    return torch.from_numpy(rows)
