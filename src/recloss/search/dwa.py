"""Dynamic weight average (DWA; Liu, Johns & Davison, CVPR 2019) over the candidate losses.

The training loss is `sum_i lambda_i * L_i` (L_i: the batch mean of candidate i). The weights
change once per epoch, from how fast each candidate's epoch-average loss fell over the last two
epochs:

    lambda_i(t) = n * softmax_i(r(t-1) / T),   r_i(t-1) = Lbar_i(t-1) / Lbar_i(t-2),   T = 2

so a candidate that descends slowly gets more weight; the first two epochs use `lambda_i = 1`.

Epoch boundaries: the strategy averages every step's L_i and closes an epoch in `on_epoch_end()`,
which the trainer calls once after each epoch's last step (also with
`train.max_steps_per_epoch`); no steps-per-epoch count has to be given. Outside the trainer,
call `on_epoch_end()` at the end of each epoch.

Options (`loss.params`): `temperature` (2.0). Per epoch it reports the weights that epoch
trained with and the candidates' epoch-average losses; `weights()` gives the latest weights
(summing to n).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from recloss.data.schema import Task
from recloss.losses import loss_matrix
from recloss.search.base import LossStrategy, by_candidate, check_options


class DwaStrategy(LossStrategy):
    """DWA: per-epoch loss weights from the ratio of each loss's last two epoch averages."""

    name = "dwa"
    label = "DWA"

    def __init__(
        self, task: Task, num_classes: int, candidates: Sequence[str], *, temperature: float = 2.0
    ) -> None:
        super().__init__(task, num_classes, candidates)
        check_options([("temperature", temperature, temperature > 0, "positive")])
        self.temperature = temperature
        n = len(self.candidates)
        self.register_buffer("loss_weights", torch.ones(n))
        self.register_buffer("averages", torch.full((2, n), float("nan")))  # epochs t-2, t-1
        self.register_buffer("epoch_sum", torch.zeros(n))
        self.register_buffer("epoch_steps", torch.zeros((), dtype=torch.long))

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        means = loss_matrix(self.candidates, logits, y).mean(0)
        with torch.no_grad():
            self.epoch_sum += means.float()
            self.epoch_steps += 1
        return (self.loss_weights.to(means.dtype) * means).sum()

    def on_epoch_end(self) -> dict[str, Any]:
        """The weights this epoch trained with and its average losses; then closes the epoch."""
        diagnostics = {
            "weights": by_candidate(self.candidates, self.loss_weights),
            "averages": None,
        }
        if int(self.epoch_steps) > 0:
            average = self.epoch_sum / self.epoch_steps
            diagnostics["averages"] = by_candidate(self.candidates, average)
            self._close_epoch(average)
        return diagnostics

    @torch.no_grad()
    def _close_epoch(self, average: torch.Tensor) -> None:
        self.averages.copy_(torch.stack([self.averages[1], average]))
        self.epoch_sum.zero_()
        self.epoch_steps.zero_()
        if not torch.isnan(self.averages).any():
            ratios = self.averages[1] / self.averages[0].clamp(min=torch.finfo(average.dtype).tiny)
            self.loss_weights.copy_(len(ratios) * torch.softmax(ratios / self.temperature, dim=0))

    def weights(self) -> dict[str, float]:
        return by_candidate(self.candidates, self.loss_weights)


__all__ = ["DwaStrategy"]
