"""Trials of a search: a trainer stepped through its shuffled batches for a budget of steps."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from recloss.data.schema import Batch
from recloss.training import Trainer


def training_batches(trainer: Trainer, per_epoch: int) -> Iterator[Batch]:
    """The trainer's shuffled training batches, epoch after epoch, `per_epoch` from each."""
    for epoch in itertools.count():
        trainer.train_loader.set_epoch(epoch)
        batches = iter(trainer.train_loader)
        try:
            yield from itertools.islice(batches, per_epoch)
        finally:
            batches.close()  # stops the loader's prefetch thread


def train_to(trainer: Trainer, batches: Iterator[Batch], step: int) -> None:
    """Step the trainer until it has taken `step` steps in all."""
    while trainer.state.step < step:
        trainer.step(next(batches).to(trainer.device))


__all__ = ["train_to", "training_batches"]
