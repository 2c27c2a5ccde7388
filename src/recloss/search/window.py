"""What AutoLoss keeps of its training steps: the last loss call's selection, and for
`horizon: window` every step since the last controller step, checkpointed as plain tensors."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from recloss.data.schema import Batch, Lookup
from recloss.search.hypergrad import Pair, TrainingStep, head


@dataclass
class Selection:
    """What a `loss()` call used, so that a controller step can recompute the same `p`."""

    features: torch.Tensor
    noise: torch.Tensor
    tau: float
    logits: torch.Tensor  # detached training logits
    y: torch.Tensor
    weights: torch.Tensor  # detached p

    def head(self, rows: int | None) -> Selection:
        """The first `rows` examples' selection (None: all)."""
        return Selection(self.features[:rows], self.noise[:rows], self.tau, self.logits[:rows],
                         self.y[:rows], self.weights[:rows])  # fmt: skip


class Window:
    """The model steps since the last controller step: each one's inputs and selection."""

    def __init__(self) -> None:
        self.steps: list[tuple[Any, Selection]] = []

    def add(self, train: Pair, selection: Selection) -> None:
        self.steps.append((train[0], selection))

    def earlier(self, rows: int | None = None) -> list[TrainingStep]:
        """The steps as the window's hypergradient takes them (their first `rows` examples)."""
        return [
            TrainingStep((head(x, rows), s.y[:rows]), s.logits[:rows], s.weights[:rows])
            for x, s in self.steps
        ]

    def selections(self, rows: int | None = None) -> list[Selection]:
        return [s.head(rows) for _, s in self.steps]

    def clear(self) -> None:
        self.steps = []

    def state(self) -> list[dict[str, Any]]:
        """Plain tensors and numbers only: checkpoints load with `weights_only=True`."""
        return [{"inputs": _plain(x), "selection": asdict(s)} for x, s in self.steps]

    def load(self, state: list[dict[str, Any]]) -> None:
        self.steps = [(_rebuilt(e["inputs"]), Selection(**e["selection"])) for e in state]


def _plain(inputs: Any) -> Any:
    if not isinstance(inputs, Batch):
        return inputs
    lookup = None if inputs.lookup is None else tuple(inputs.lookup)
    return {"x_cat": inputs.x_cat, "x_num": inputs.x_num, "y": inputs.y, "lookup": lookup}


def _rebuilt(inputs: Any) -> Any:
    if not isinstance(inputs, dict):
        return inputs
    lookup = None if inputs["lookup"] is None else Lookup(*inputs["lookup"])
    return Batch(inputs["x_cat"], inputs["x_num"], inputs["y"], lookup)


__all__ = ["Selection", "Window"]
