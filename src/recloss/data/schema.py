"""What a model needs to know about a prepared data set, and the batches it consumes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import torch

Task = Literal["binary", "multiclass"]

# Reserved per-field indices: every categorical field encodes missing values as 0 and values
# rarer than the min-count threshold (or unseen at encoding time) as 1; known values start at 2.
MISSING_INDEX = 0
OOV_INDEX = 1
FIRST_VALUE_INDEX = 2


@dataclass(frozen=True)
class Schema:
    """Task and feature layout of a prepared data set."""

    task: Task
    num_classes: int  # 2 for binary tasks
    cat_fields: tuple[str, ...]
    cardinalities: tuple[int, ...]  # per categorical field, reserved indices included
    num_fields: tuple[str, ...] = ()  # continuous (normalised) numeric fields

    def __post_init__(self) -> None:
        if len(self.cat_fields) != len(self.cardinalities):
            raise ValueError("cat_fields and cardinalities differ in length")
        if self.task == "binary" and self.num_classes != 2:
            raise ValueError("a binary task has num_classes == 2")

    @property
    def n_outputs(self) -> int:
        """Number of logits a model emits: 1 for binary tasks, C for multi-class."""
        return 1 if self.task == "binary" else self.num_classes

    @property
    def n_fields(self) -> int:
        """Number of fields a model embeds (categorical + continuous numeric)."""
        return len(self.cat_fields) + len(self.num_fields)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Schema:
        return cls(
            task=d["task"],
            num_classes=int(d["num_classes"]),
            cat_fields=tuple(d["cat_fields"]),
            cardinalities=tuple(int(c) for c in d["cardinalities"]),
            num_fields=tuple(d.get("num_fields", ())),
        )


class Lookup(NamedTuple):
    """A batch's distinct categorical values (field, value), each once, and where each example's
    values are among them: models look up U table rows instead of B * F_cat."""

    fields: torch.Tensor  # int32 [U], the field of each distinct value; sorted by (field, value)
    values: torch.Tensor  # int32 [U], its per-field local index
    # int64 [B, F_cat], position of x_cat[b, f] among the U: `index_add_` sums the gradient by
    # this index, and with an int32 one it takes a slow path (4-17x slower on CPU, torch 2.13)
    inverse: torch.Tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Lookup:
        return Lookup(*(t.to(device, non_blocking=non_blocking) for t in self))


class Batch(NamedTuple):
    """One mini-batch. `y` holds class indices (0/1 for binary tasks) as int64; `lookup`, when
    the batch loader computed it, the batch's distinct categorical values."""

    x_cat: torch.Tensor  # int32 or int64 [B, F_cat], per-field local indices
    x_num: torch.Tensor | None  # float32 [B, F_num] or None
    y: torch.Tensor  # int64 [B]
    lookup: Lookup | None = None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        lookup = None if self.lookup is None else self.lookup.to(device, non_blocking)
        return Batch(move(self.x_cat), move(self.x_num), move(self.y), lookup)

    def __len__(self) -> int:  # type: ignore[override]
        return int(self.y.shape[0])
