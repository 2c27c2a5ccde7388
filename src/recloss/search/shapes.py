"""Shape checks of the logits and labels a user's loop hands to AutoLoss (no device sync)."""

from __future__ import annotations

from typing import Any

import torch

from recloss.errors import RecLossError
from recloss.search.hypergrad import Forward, Pair


def check_batch(
    task: str, num_classes: int, where: str, logits: torch.Tensor, y: torch.Tensor
) -> None:
    """RecLossError unless `logits` fit the task and `y` is `[B]` (shapes only: no sync)."""
    shape = tuple(logits.shape)
    if task == "binary":
        kind, expected = "binary", "[B] or [B, 1]"
        fits = len(shape) == 1 or shape[1:] == (1,)
    else:
        kind, expected = f"{num_classes}-class", f"[B, {num_classes}]"
        fits = len(shape) == 2 and shape[1] == num_classes
    if not fits:
        raise RecLossError(f"AutoLoss.{where}: {kind} logits must be {expected}, got {list(shape)}")
    if tuple(y.shape) != shape[:1]:
        raise RecLossError(
            f"AutoLoss.{where}: labels must be [B] = [{shape[0]}] like the logits, "
            f"got {list(y.shape)}"
        )


def checked_forward(task: str, num_classes: int, forward: Forward, val: Pair) -> Forward:
    """`forward` that applies `check_batch` to its logits of the validation pair."""

    def call(inputs: Any) -> torch.Tensor:
        logits = forward(inputs)
        if inputs is val[0]:  # the first validation pass comes before any loss of it
            check_batch(task, num_classes, "update (validation pair)", logits, val[1])
        return logits

    return call


__all__ = ["check_batch", "checked_forward"]
