"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018) over the candidate losses.

Each candidate gets a learned log-variance `s_i`; the training loss is

    sum_i exp(-s_i) * L_i + s_i,   L_i = the batch mean of candidate i

so a candidate's weight `exp(-s_i)` settles near `1 / L_i`: candidates with larger values count
less, and `+ s_i` keeps the weights from collapsing to zero. The log-variances start at 0
(weights 1) and train jointly with the model on the training batch; the strategy owns their
Adam optimiser and steps it in `after_backward()`.

Options (`loss.params`): `lr` (1e-3). Per epoch it reports the weights `exp(-s_i)` and the
log-variances; `weights()` gives `exp(-s_i)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from recloss.data.schema import Task
from recloss.losses import loss_matrix
from recloss.search.base import LossStrategy, StepContext, by_candidate, check_options


class UncertaintyWeighting(LossStrategy):
    """Kendall et al.'s learned log-variance weights: `sum_i exp(-s_i) * L_i + s_i`."""

    name = "uncertainty"
    label = "Uncertainty"

    def __init__(
        self, task: Task, num_classes: int, candidates: Sequence[str], *, lr: float = 1e-3
    ) -> None:
        super().__init__(task, num_classes, candidates)
        check_options([("lr", lr, lr > 0, "positive")])
        self.log_vars = nn.Parameter(torch.zeros(len(self.candidates)))
        self.optimizer = torch.optim.Adam([self.log_vars], lr=lr)

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        means = loss_matrix(self.candidates, logits, y).mean(0)
        s = self.log_vars.to(means.dtype)
        return (torch.exp(-s) * means + s).sum()

    def after_backward(self, ctx: StepContext) -> None:
        """Step the log-variances with the gradients the training loss's backward left."""
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def on_epoch_end(self) -> dict[str, Any]:
        """The current weights `exp(-s_i)` and log-variances `s_i`."""
        return {"weights": self.weights(), "log_vars": by_candidate(self.candidates, self.log_vars)}

    def weights(self) -> dict[str, float]:
        return by_candidate(self.candidates, torch.exp(-self.log_vars))


__all__ = ["UncertaintyWeighting"]
