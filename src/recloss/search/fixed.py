"""Fixed loss strategies: one candidate loss, or a fixed weighted sum of several."""

from __future__ import annotations

import torch

from recloss.data.schema import Task
from recloss.errors import ConfigError
from recloss.losses import loss_matrix
from recloss.search.base import LossStrategy


class FixedWeights(LossStrategy):
    """`mean_b sum_i w_i * loss_i`: a single loss (one weight of 1) or a fixed mix of candidates."""

    name = "weighted"

    def __init__(
        self,
        task: Task,
        num_classes: int,
        candidates: list[str],
        weights: list[float] | None = None,
    ) -> None:
        super().__init__(task, num_classes)
        weights = weights if weights is not None else [1.0 / len(candidates)] * len(candidates)
        if len(weights) != len(candidates):
            raise ConfigError(
                f"loss.params.weights: {len(weights)} weights for {len(candidates)} candidates "
                f"({', '.join(candidates)})"
            )
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(
                "loss.params.weights: weights must be non-negative with a positive sum"
            )
        self.candidates = list(candidates)
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32))

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        return (loss_matrix(self.candidates, logits, y) @ self.weights).mean()

    def summary(self) -> dict[str, float]:
        if len(self.candidates) == 1:
            return {}
        return {f"weight_{c}": float(w) for c, w in zip(self.candidates, self.weights, strict=True)}
