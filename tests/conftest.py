"""Shared test helpers: a test-only candidate loss (registered once), callbacks that interrupt."""

from __future__ import annotations

import signal

import torch

from recloss.losses import LOSSES, cross_entropy, register_loss
from recloss.training import Callback

TEST_ONLY_LOSSES = {"flipped"}

if "flipped" not in LOSSES:

    @register_loss("flipped")
    def flipped(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """CE against the flipped label: a harmful candidate (test only)."""
        return cross_entropy(logits, 1 - y)


class SignalAtStep(Callback):
    """Send this process `signum` at optimiser step `step`, as a scheduler or Ctrl-C would."""

    def __init__(self, step: int, signum: int = signal.SIGTERM) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, batch_size, mean_loss) -> None:
        if trainer.state.step == self.step:
            signal.raise_signal(self.signum)


class InterruptAtStep(Callback):
    """Raise KeyboardInterrupt after optimiser step `step`, as a crash inside an epoch would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, batch_size, mean_loss) -> None:
        if trainer.state.step >= self.step:
            raise KeyboardInterrupt


class InterruptAfter(Callback):
    """Raise KeyboardInterrupt once `epochs` epochs and their checkpoint are done, as a crash
    then would: before the next epoch, or before the test if training ends there."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_start(self, trainer, batches) -> None:
        if trainer.state.epoch >= self.epochs:
            raise KeyboardInterrupt

    def on_fit_end(self, trainer) -> None:
        self.on_train_epoch_start(trainer, 0)
