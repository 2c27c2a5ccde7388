"""Global loss weights learned bi-level (AutoLoss paper baselines): DARTS and meta-learning.

One weight vector for every example, `w = softmax(beta)`. The model trains on
`mean_b sum_i w_i * loss_i` and, every `update_every` steps, `beta` moves along the
one-step-unrolled hypergradient of the plain validation loss, the one AutoLoss uses
(AUTOLOSS.md section 4) with `p[b] = w` for every example b:
`dL_val/dbeta = sum_b J_softmax(beta)^T dL_val/dp[b]`.

DARTS steps `beta` every `update_every` (7: AutoLoss's K, so the two bi-level methods get the same
validation budget) model steps with the model's learning rate as the unroll's `xi`.
Meta-learning (MeLU-style) is a MAML view of the same gradient: each model step is a task, an
inner SGD step `W' = W - inner_lr * grad_W sum_i w_i L_i(W)` and an outer step on a validation
batch that lowers `L_val(W')`; through one inner step this meta-gradient is the same
hypergradient, taken after every model step (`update_every` 1) with its own inner step size.

As a run's method both are two-stage: the weights are searched for `search_epochs`, then the
model is retrained from scratch with them frozen (`recloss.runs.twostage`). As strategies (here)
they learn the weights online. Options: `update_every`, `lr` (Adam on beta, 1e-3), `inner_lr`
(meta only; None: the model's learning rate), `hypergrad` ("finite_diff", "jvp" or "unrolled")
and `fd_eps` (0.01). Per epoch they report the weights, the mean unrolled validation loss and the
update count; `weights()` gives `softmax(beta)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from recloss.data.schema import Task
from recloss.losses import loss_matrix
from recloss.search.base import (
    LossStrategy,
    StepContext,
    by_candidate,
    check_options,
    positive_int,
)
from recloss.search.hypergrad import HYPERGRADS, Unroll, hypergradient


class BilevelWeights(LossStrategy):
    """Global loss weights `softmax(beta)` learned on validation batches through a one-step unroll.

    `inner_lr` is the unroll's step size `xi` (None: the model's learning rate).
    """

    state_attrs = ("updates", "steps", "_val_sum", "_val_count")
    sees_train_forward = True

    def __init__(
        self,
        task: Task,
        num_classes: int,
        candidates: Sequence[str],
        *,
        update_every: int,
        lr: float,
        inner_lr: float | None,
        hypergrad: str,
        fd_eps: float,
    ) -> None:
        super().__init__(task, num_classes, candidates)
        check_options([
            ("update_every", update_every, positive_int(update_every), "a positive integer"),
            ("lr", lr, lr > 0, "positive"),
            ("inner_lr", inner_lr, inner_lr is None or inner_lr > 0, "positive"),
            ("hypergrad", hypergrad, hypergrad in HYPERGRADS, f"one of {', '.join(HYPERGRADS)}"),
            ("fd_eps", fd_eps, fd_eps > 0, "positive"),
        ])  # fmt: skip
        self.every = update_every
        self.inner_lr, self.hypergrad, self.fd_eps = inner_lr, hypergrad, fd_eps
        self.beta = nn.Parameter(torch.zeros(len(self.candidates)))
        self.optimizer = torch.optim.Adam([self.beta], lr=lr)
        self.updates = self.steps = 0
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # detached logits, labels
        self._val_sum, self._val_count = 0.0, 0

    def softmax(self) -> torch.Tensor:
        """The current loss weights `softmax(beta)` `[n]`."""
        return torch.softmax(self.beta, dim=0)

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        self._last = (logits.detach(), y)
        weights = self.softmax().detach().to(logits.dtype)
        return (loss_matrix(self.candidates, logits, y) @ weights).mean()

    def after_backward(self, ctx: StepContext) -> None:
        due = self.updates % self.every == 0
        self.updates += 1
        if not due or self._last is None:
            return
        logits, y = self._last
        val = ctx.next_val_batch()
        p = self.softmax().expand(len(y), -1)
        xi = self.inner_lr if self.inner_lr is not None else ctx.lr
        u = Unroll(ctx.model, ctx.model, self.candidates, (ctx.batch, ctx.batch.y),
                   (val, val.y), logits, p.detach(), xi,
                   train_forward=ctx.train_forward)  # fmt: skip
        grad, val_loss = hypergradient(u, self.hypergrad, self.fd_eps)
        self.optimizer.zero_grad(set_to_none=True)
        p.backward(grad.to(p.dtype))
        self.optimizer.step()
        self.steps += 1
        self._val_sum += val_loss
        self._val_count += 1

    def on_epoch_end(self) -> dict[str, Any]:
        """Current weights, mean unrolled validation loss since the last call, update count."""
        diagnostics = {
            "weights": self.weights(),
            "val_objective": self._val_sum / self._val_count if self._val_count else None,
            "updates": self.steps,
        }
        self._val_sum, self._val_count = 0.0, 0
        return diagnostics

    def weights(self) -> dict[str, float]:
        return by_candidate(self.candidates, self.softmax())


class DartsWeights(BilevelWeights):
    """DARTS: global loss weights learned bi-level (one-step unroll, `xi` = the model's lr)."""

    name = "darts"
    label = "DARTS"

    def __init__(
        self,
        task: Task,
        num_classes: int,
        candidates: Sequence[str],
        *,
        update_every: int = 7,
        lr: float = 1e-3,
        hypergrad: str = "finite_diff",
        fd_eps: float = 0.01,
    ) -> None:
        super().__init__(
            task, num_classes, candidates, update_every=update_every, lr=lr, inner_lr=None,
            hypergrad=hypergrad, fd_eps=fd_eps,
        )  # fmt: skip


class MetaWeights(BilevelWeights):
    """MeLU-style meta-learning: global loss weights by MAML inner/outer steps."""

    name = "meta"
    label = "MeLU"

    def __init__(
        self,
        task: Task,
        num_classes: int,
        candidates: Sequence[str],
        *,
        update_every: int = 1,
        lr: float = 1e-3,
        inner_lr: float | None = None,
        hypergrad: str = "finite_diff",
        fd_eps: float = 0.01,
    ) -> None:
        super().__init__(
            task, num_classes, candidates, update_every=update_every, lr=lr, inner_lr=inner_lr,
            hypergrad=hypergrad, fd_eps=fd_eps,
        )  # fmt: skip


__all__ = ["BilevelWeights", "DartsWeights", "MetaWeights"]
