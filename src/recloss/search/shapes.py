"""Checks of the logits and labels a user's loop hands to AutoLoss: shapes and the labels' type,
and on the CPU the labels' values (on a GPU that would wait for the device every step)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from recloss.errors import RecLossError
from recloss.search.hypergrad import Forward, Pair


def check_batch(
    task: str, num_classes: int, where: str, logits: torch.Tensor, y: torch.Tensor
) -> None:
    """RecLossError unless `logits` fit the task and `y` is `[B]` of class indices."""
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
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise RecLossError(
            f"AutoLoss.{where}: labels must be class indices (an integer tensor), got {y.dtype}; "
            "pass y.long()"
        )
    if y.device.type == "cpu" and len(y):
        lowest, highest = int(y.min()), int(y.max())
        if not 0 <= lowest <= highest < num_classes:
            raise RecLossError(
                f"AutoLoss.{where}: labels must be 0 .. {num_classes - 1}, got "
                f"{lowest} .. {highest}"
            )


def checked_forward(task: str, num_classes: int, forward: Forward, val: Pair) -> Forward:
    """`forward` that applies `check_batch` to its logits of the validation pair."""

    def call(inputs: Any) -> torch.Tensor:
        logits = forward(inputs)
        if inputs is val[0]:  # the first validation pass comes before any loss of it
            check_batch(task, num_classes, "update (validation pair)", logits, val[1])
        return logits

    return call


def validation_pair(val: Pair | Callable[[], Pair] | Iterator[Pair]) -> Pair:
    """The validation pair `val` is, returns (a function) or yields next (an iterator); called
    once per controller step."""
    if isinstance(val, Iterator):
        pair = next(val, None)
        if pair is None:
            raise RecLossError(
                "AutoLoss.update: the validation iterator is exhausted; give one that never "
                "ends, such as itertools.cycle(val_loader)"
            )
    else:
        pair = val() if callable(val) else val
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise RecLossError(
            "AutoLoss.update: val must be an (inputs, labels) pair, a function returning one or "
            f"an iterator of them (itertools.cycle(val_loader)); got {type(pair).__name__}"
        )
    return pair


__all__ = ["check_batch", "checked_forward", "validation_pair"]
