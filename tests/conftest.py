"""Shared test helpers: a test-only candidate loss (registered once), an interrupting callback."""

from __future__ import annotations

import torch

from recloss.losses import LOSSES, cross_entropy, register_loss
from recloss.training import Callback

TEST_ONLY_LOSSES = {"flipped"}

if "flipped" not in LOSSES:

    @register_loss("flipped")
    def flipped(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """CE against the flipped label: a harmful candidate (test only)."""
        return cross_entropy(logits, 1 - y)


class InterruptAfter(Callback):
    """Raise KeyboardInterrupt after `epochs` epochs, as a crash would (its checkpoint is saved)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, trainer, entry) -> None:
        if trainer.state.epoch >= self.epochs:
            raise KeyboardInterrupt
