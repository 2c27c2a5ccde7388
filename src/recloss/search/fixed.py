"""Fixed loss strategies: one candidate loss, or a fixed weighted sum of several."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from recloss.data.schema import Task
from recloss.losses import loss_matrix
from recloss.search.base import LossStrategy, OptionError, by_candidate


class FixedWeights(LossStrategy):
    """`mean_b sum_i w_i * loss_i`: a single loss (one weight of 1) or a fixed mix of candidates."""

    name = "weighted"
    label = "Weighted"
    fixed = True
    sees_train_forward = True

    def __init__(
        self,
        task: Task,
        num_classes: int,
        candidates: Sequence[str],
        weights: list[float] | None = None,
    ) -> None:
        super().__init__(task, num_classes, candidates)
        n = len(self.candidates)
        weights = weights if weights is not None else [1.0 / n] * n
        if len(weights) != n:
            raise OptionError(
                "weights", f"{len(weights)} weights for {n} candidates ({', '.join(candidates)})"
            )
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise OptionError("weights", "weights must be non-negative with a positive sum")
        self.register_buffer("loss_weights", torch.tensor(weights, dtype=torch.float32))

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        return (loss_matrix(self.candidates, logits, y) @ self.loss_weights).mean()

    def weights(self) -> dict[str, float]:
        if len(self.candidates) == 1:
            return {}
        return by_candidate(self.candidates, self.loss_weights)
