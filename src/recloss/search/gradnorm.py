"""GradNorm (Chen et al., ICML 2018) over the candidate losses.

The training loss is `sum_i w_i * L_i` (L_i: the batch mean of candidate i; the weights start
at 1 and always sum to n). After each step the weights move to balance the candidates'
gradient norms `G_i = w_i * ||dL_i/dW||` against their relative training rates: with
`r_i = (L_i / L_i(0)) / mean_j (L_j / L_j(0))` the weights descend the GradNorm objective

    sum_i | G_i - mean_j(G_j) * r_i^alpha |,   alpha = 1.5,  target held constant,

and are renormalised to sum to n. Candidates that fall behind (large `r_i`) get a larger share.

With several losses on a single output, the paper's shared layer `W` is measured at the logits:
`G_i = w_i * ||dL_i/dz||` over the batch's logits `z`, the last representation every candidate
shares. This proxy needs no access to the model's layers and costs one small backward pass per
candidate through the loss functions only.

Options (`loss.params`): `alpha` (1.5), `lr` (Adam on the weights, 0.025).
Per epoch it reports the weights and the candidates' gradient norms; `weights()` gives `w_i`
(summing to n).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from recloss.data.schema import Task
from recloss.losses import loss_matrix
from recloss.search.base import LossStrategy, StepContext, by_candidate, check_options

MIN_WEIGHT = 1e-4  # weights stay positive, so every candidate can recover its share


class GradNormStrategy(LossStrategy):
    """GradNorm: loss weights that balance the candidates' gradient norms and training rates."""

    name = "gradnorm"
    label = "GradNorm"
    state_attrs = ("_norm_sum", "_steps")  # the epoch's running figures

    def __init__(
        self,
        task: Task,
        num_classes: int,
        candidates: Sequence[str],
        *,
        alpha: float = 1.5,
        lr: float = 0.025,
    ) -> None:
        super().__init__(task, num_classes, candidates)
        check_options([
            ("alpha", alpha, alpha >= 0, "non-negative"),
            ("lr", lr, lr > 0, "positive"),
        ])  # fmt: skip
        self.alpha = alpha
        self.loss_weights = nn.Parameter(torch.ones(len(self.candidates)))
        self.register_buffer("initial", torch.full((len(self.candidates),), float("nan")))
        self.optimizer = torch.optim.Adam([self.loss_weights], lr=lr)
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # batch means, grad norms
        self._norm_sum, self._steps = torch.zeros(len(self.candidates)), 0

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        means = loss_matrix(self.candidates, logits, y).mean(0)
        norms = logit_grad_norms(self.candidates, logits, y)
        self._last = (means.detach().float(), norms)
        return (self.loss_weights.detach().to(means.dtype) * means).sum()

    def after_backward(self, ctx: StepContext) -> None:
        """One GradNorm step on the weights from the last `loss()` call, then renormalise."""
        if self._last is None:
            return
        means, norms = self._last
        with torch.no_grad():  # L_i(0): the first step's losses (no host sync to test for it)
            self.initial.copy_(torch.where(self.initial.isnan(), means, self.initial))
        rates = means / self.initial.clamp(min=torch.finfo(means.dtype).tiny)
        rates = rates / rates.mean()
        grad_norms = self.loss_weights * norms
        target = (grad_norms.mean() * rates**self.alpha).detach()
        self.optimizer.zero_grad(set_to_none=True)
        (grad_norms - target).abs().sum().backward()
        self.optimizer.step()
        with torch.no_grad():
            w = self.loss_weights.clamp_(min=MIN_WEIGHT)
            w.mul_(len(w) / w.sum())
        self._norm_sum = self._norm_sum.to(norms.device) + norms
        self._steps += 1
        self._last = None

    def on_epoch_end(self) -> dict[str, Any]:
        """Current weights and the mean gradient norm per candidate since the last call."""
        norms = by_candidate(self.candidates, self._norm_sum / self._steps) if self._steps else None
        self._norm_sum, self._steps = torch.zeros_like(self._norm_sum), 0
        return {"weights": self.weights(), "grad_norms": norms}

    def weights(self) -> dict[str, float]:
        return by_candidate(self.candidates, self.loss_weights)


def logit_grad_norms(
    candidates: Sequence[str], logits: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """`||dL_i/dz||` per candidate `[n]`: batch-mean losses differentiated at detached logits."""
    z = logits.detach().float().requires_grad_()
    with torch.enable_grad():
        means = loss_matrix(candidates, z, y).mean(0)
        grads = [
            torch.autograd.grad(means[i], z, retain_graph=i < len(means) - 1)[0]
            for i in range(len(means))
        ]
    return torch.stack([g.norm() for g in grads])


__all__ = ["GradNormStrategy", "logit_grad_norms"]
