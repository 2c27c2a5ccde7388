"""The loss-strategy seam: how a training loop turns logits into a training loss.

A strategy sees the logits and labels of a training batch and returns the scalar to
back-propagate (`loss`). The loop then calls `after_backward` before its optimiser step, with the
training-loss gradients in each parameter's `.grad`: bi-level strategies (AutoLoss, DARTS, ...)
take a validation batch and update themselves there, jointly trained ones step their optimiser.
`on_epoch_end` closes an epoch and returns its diagnostics; `weights` is the learned weight per
candidate. A strategy's whole state, its optimiser and counters included, is in `state_dict()`.
It knows nothing of files, configurations or trainers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from recloss.data.schema import Batch, Task
from recloss.errors import ConfigError

# (parameters, a direction for each) -> the optimiser's preconditioned directions `P d`
Precondition = Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor | None]], list[Any]]


@dataclass
class StepContext:
    """What a strategy may use to update itself after a training step's backward pass."""

    model: nn.Module
    batch: Batch  # the training batch just back-propagated (on the training device)
    step: int  # global optimiser step, starting at 0
    lr: float  # learning rate of the model's dense parameters (xi of the one-step unroll)
    next_val_batch: Callable[[], Batch]  # cycles through the validation split, never the test split
    # the model optimiser's preconditioner of a step (`recloss.training.AdamPreconditioner`)
    precondition: Precondition | None = None
    # the training loss's logits of a batch where they are not the model's: through the
    # label-noise channel (`train.label_noise`); None: the model's own
    train_forward: Callable[[Batch], torch.Tensor] | None = None


@dataclass(frozen=True)
class Artifact:
    """A learned loss network a strategy leaves in the run folder, and how to reuse it frozen."""

    file: str  # its file name in the run folder
    frozen: Callable[[str], dict[str, Any]]  # file path -> strategy params that load it frozen


class OptionError(ConfigError):
    """A strategy option out of range; `build_strategy` reports it as `loss.params.<key>`."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message

    def config_error(self) -> ConfigError:
        """The same, as the error of a run's config key `loss.params.<key>`."""
        key = f"loss.params.{self.key}"
        return ConfigError(f"{key}: {self.message}", key)


def check_options(checks: Sequence[tuple[str, Any, bool, str]]) -> None:
    """OptionError for the first `(name, value, ok, what)` that is not ok."""
    for name, value, ok, what in checks:
        if not ok:
            raise OptionError(name, f"must be {what}, got {value!r}")


def check_task(task: str) -> None:
    """ConfigError naming `task` unless it is one the strategies and controllers know."""
    if task not in ("binary", "multiclass"):
        raise ConfigError(f"task: {task!r} is not binary or multiclass")


class LossStrategy(nn.Module):
    """Base class: `loss()` every step, `after_backward()` after each backward, per-epoch figures.

    Subclasses name the plain attributes their state needs in `state_attrs` (counters, the
    last epoch's figures) and keep their own optimiser, if any, in `self.optimizer`; both travel
    in `state_dict()` with the parameters and buffers.
    """

    name: ClassVar[str] = "strategy"  # the registry name
    label: ClassVar[str] = "Strategy"  # the display name in tables
    artifact: ClassVar[Artifact | None] = None  # a transferable learned loss network
    fixed: ClassVar[bool] = False  # weights that do not depend on the data: transfer as they are
    # whether its updates see the training loss's logits as trained on (`StepContext`'s
    # `train_forward`), so that it can train through a label-noise channel
    sees_train_forward: ClassVar[bool] = False
    state_attrs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, task: Task, num_classes: int, candidates: Sequence[str]) -> None:
        check_task(task)
        super().__init__()
        self.task, self.num_classes = task, num_classes
        self.candidates = list(candidates)
        self.optimizer: torch.optim.Optimizer | None = None

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        """Scalar training loss of a batch."""
        raise NotImplementedError

    def after_backward(self, ctx: StepContext) -> None:
        """Update the strategy's own parameters after the training backward; default: nothing."""

    def val_batch_rows(self, batch_size: int) -> int:
        """Rows of the validation batches it asks for, given the training batch size."""
        return batch_size

    def on_epoch_end(self) -> dict[str, Any]:
        """Close the epoch; its JSON-ready figures (e.g. mean selection probabilities)."""
        return {}

    def weights(self) -> dict[str, float]:
        """The learned weight of each candidate (empty for a single fixed loss)."""
        return {}

    def save_artifact(self, path: Path) -> None:
        """Write the `artifact` file (strategies that declare one)."""
        raise NotImplementedError(f"{self.name} has no artifact")

    def get_extra_state(self) -> dict[str, Any]:
        # a snapshot: an optimiser's own state_dict shares the tensors it keeps updating
        optimizer = None if self.optimizer is None else deepcopy(self.optimizer.state_dict())
        return {"optimizer": optimizer, **{a: getattr(self, a) for a in self.state_attrs}}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        for attr in self.state_attrs:
            setattr(self, attr, state[attr])
        if self.optimizer is not None and state["optimizer"] is not None:
            self.optimizer.load_state_dict(state["optimizer"])


@torch.no_grad()
def by_candidate(candidates: Sequence[str], values: torch.Tensor) -> dict[str, float]:
    """`{candidate: value}` of a per-candidate vector, JSON-ready."""
    return {c: float(v) for c, v in zip(candidates, values.cpu(), strict=True)}


def positive_int(value: Any) -> bool:
    """Whether `value` is an int (not a bool) of at least 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
