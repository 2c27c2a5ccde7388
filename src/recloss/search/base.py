"""The loss-strategy seam: how the trainer turns logits into a training loss.

A strategy sees the logits and labels of a training batch and returns the scalar to
back-propagate. Bi-level strategies (AutoLoss, DARTS, ...) additionally update their own
parameters in `update`, which the trainer calls after back-propagating the training loss and
before its optimiser step, so the training-loss gradients are in each parameter's `.grad`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recloss.data.schema import Batch, Task


@dataclass
class StepContext:
    """What a strategy may use to update itself after a training step's backward pass."""

    model: nn.Module
    batch: Batch  # the training batch just back-propagated (on the training device)
    step: int  # global optimiser step, starting at 0
    lr: float  # learning rate of the model's dense parameters (xi of the one-step unroll)
    next_val_batch: Callable[[], Batch]  # cycles through the validation split, never the test split


class LossStrategy(nn.Module):
    """Base class: `loss()` every step, `update()` after each backward, diagnostics per epoch."""

    name: str = "strategy"

    def __init__(self, task: Task, num_classes: int) -> None:
        super().__init__()
        self.task = task
        self.num_classes = num_classes

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        """Scalar training loss of a batch."""
        raise NotImplementedError

    def update(self, ctx: StepContext) -> None:
        """Update the strategy's own parameters (bi-level strategies); default: nothing."""

    def epoch_diagnostics(self) -> dict[str, Any]:
        """JSON-ready figures gathered since the last call (e.g. selection probabilities)."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        """Non-parameter state to checkpoint (optimiser states, counters); default: none."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what `extra_state` returned."""

    def summary(self) -> dict[str, float]:
        """Figures for the end-of-run table (e.g. learned mean weight per candidate)."""
        return {}

    def save_artifacts(self, run_dir: Path) -> None:
        """Write standalone files into the run directory (e.g. a learned controller)."""
