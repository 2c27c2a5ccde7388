"""Batches on their way to the device: page-locked for CUDA, and the validation stream that
bi-level strategies draw from (endless, shuffled, resumable)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch

from recloss.data import BatchLoader, SplitArrays
from recloss.data.prefetch import prefetch
from recloss.data.schema import Batch
from recloss.errors import RecLossError


def pin(batch: Batch) -> Batch:
    """The batch (every tensor of it, nested ones too) in page-locked memory, so that its copy
    to a GPU can be asynchronous."""
    return _pinned(batch)


def _pinned(item):
    if isinstance(item, torch.Tensor):
        return item.pin_memory()
    if isinstance(item, tuple):  # Batch and its parts are named tuples
        return type(item)(*(_pinned(part) for part in item))
    return item


def staged(batches: Iterable[Batch], device: torch.device) -> Iterable[Batch]:
    """`batches` as they are for the CPU; for CUDA pinned by a background thread, a batch ahead,
    so that `batch.to(device, non_blocking=True)` overlaps the copy with the previous step."""
    if device.type != "cuda":
        return batches
    return prefetch((pin(b) for b in batches), 2)


class ValidationStream:
    """Endless shuffled validation batches for bi-level strategies; its position is checkpointed."""

    def __init__(
        self,
        split: SplitArrays,
        batch_size: int,
        seed: int,
        rank: int,
        world: int,
        device: torch.device,
    ) -> None:
        self.loader = BatchLoader(  # with lookups: the hypergradients back-propagate through it
            split, batch_size, shuffle=True, seed=seed, rank=rank, world_size=world, dedup=True
        )
        self.device, self.world = device, world
        self.cycle = 0
        self.position = 0
        self._batches = None

    def __call__(self) -> Batch:
        batch = self._next()
        if batch is None:  # this pass is used up: the next one, shuffled anew
            self.cycle, self.position, self._batches = self.cycle + 1, 0, None
            batch = self._next()
            if batch is None:
                raise RecLossError(self._why_empty())
        self.position += 1
        if self.device.type == "cuda":
            return pin(batch).to(self.device, non_blocking=True)
        return batch.to(self.device)

    def _why_empty(self) -> str:
        rows = len(self.loader.split)
        if self.world == 1 or rows == 0:
            return "the validation split has no rows to draw batches from"
        return (
            f"the validation split's {rows:,} row{'s' if rows > 1 else ''} cannot give each of "
            f"the {self.world} processes one to draw validation batches from"
        )

    def _next(self) -> Batch | None:
        if self._batches is None:
            self.loader.set_epoch(self.cycle)
            self._batches = itertools.islice(iter(self.loader), self.position, None)
        return next(self._batches, None)

    def state_dict(self) -> dict[str, int]:
        return {"cycle": self.cycle, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.cycle, self.position, self._batches = state["cycle"], state["position"], None
