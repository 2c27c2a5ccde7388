"""The validation stream bi-level strategies draw from: endless, shuffled, resumable."""

from __future__ import annotations

import itertools

import torch

from recloss.data import BatchLoader, SplitArrays
from recloss.data.schema import Batch


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
        self.loader = BatchLoader(
            split, batch_size, shuffle=True, seed=seed, rank=rank, world_size=world
        )
        self.device = device
        self.cycle = 0
        self.position = 0
        self._batches = None

    def __call__(self) -> Batch:
        if self._batches is None:
            self.loader.set_epoch(self.cycle)
            self._batches = itertools.islice(iter(self.loader), self.position, None)
        batch = next(self._batches, None)
        if batch is None:
            self.cycle, self.position, self._batches = self.cycle + 1, 0, None
            return self()
        self.position += 1
        return batch.to(self.device)

    def state_dict(self) -> dict[str, int]:
        return {"cycle": self.cycle, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.cycle, self.position, self._batches = state["cycle"], state["position"], None
