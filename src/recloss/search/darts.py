"""DARTS-style loss search (an AutoLoss paper baseline): global weights, searched, then retrained.

One weight vector for every example, `w = softmax(beta)`. The search stage trains the model on
`mean_b sum_i w_i * loss_i` and, every `update_every` steps, moves `beta` along the
one-step-unrolled hypergradient of the plain validation loss, the same one AutoLoss uses
(AUTOLOSS.md section 4) with `p[b] = w` for every example b:
`dL_val/dbeta = sum_b J_softmax(beta)^T dL_val/dp[b]`, with `xi` the model's learning rate.
After `search_epochs` epochs the model is retrained from scratch with `w` frozen (two stages,
see `recloss.search.twostage`).

Options (`loss.params`): `search_epochs` (1), `update_every` (7: AutoLoss's K, so the two
bi-level methods get the same validation budget), `lr` (Adam on beta, 1e-3), `hypergrad`
("finite_diff", "jvp" or "unrolled") and `fd_eps` (0.01).
Per epoch it reports the weights, the mean unrolled validation loss and the update count;
`summary()` gives `weight_<candidate>` = softmax(beta).
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from recloss.data.schema import Task
from recloss.losses import loss_matrix
from recloss.search.autoloss import HYPERGRADS, Unroll, hypergradient
from recloss.search.base import LossStrategy, StepContext
from recloss.search.support import by_candidate, check_options, positive_int, weight_summary
from recloss.search.twostage import SearchResult, TwoStage, train_search_stage

if TYPE_CHECKING:
    from recloss.config import RunConfig
    from recloss.data import PreparedDataset

SECOND_ORDER = HYPERGRADS[:3]  # the `first_order` ablation is degenerate for global weights
CHOICES = f"one of {', '.join(SECOND_ORDER)}"


class BilevelWeights(TwoStage, LossStrategy):
    """Global loss weights `softmax(beta)` learned on validation batches through a one-step unroll.

    `inner_lr` is the unroll's step size `xi` (None: the model's learning rate).
    """

    def __init__(
        self,
        task: Task,
        num_classes: int,
        candidates: Sequence[str],
        *,
        search_epochs: int,
        update_every: int,
        lr: float,
        inner_lr: float | None,
        hypergrad: str,
        fd_eps: float,
    ) -> None:
        super().__init__(task, num_classes)
        check_options([
            ("search_epochs", search_epochs, positive_int(search_epochs), "a positive integer"),
            ("update_every", update_every, positive_int(update_every), "a positive integer"),
            ("lr", lr, lr > 0, "positive"),
            ("inner_lr", inner_lr, inner_lr is None or inner_lr > 0, "positive"),
            ("hypergrad", hypergrad, hypergrad in SECOND_ORDER, CHOICES),
            ("fd_eps", fd_eps, fd_eps > 0, "positive"),
        ])  # fmt: skip
        self.candidates = list(candidates)
        self.search_epochs, self.every = search_epochs, update_every
        self.inner_lr, self.hypergrad, self.fd_eps = inner_lr, hypergrad, fd_eps
        self.beta = nn.Parameter(torch.zeros(len(self.candidates)))
        self.optimizer = torch.optim.Adam([self.beta], lr=lr)
        self.updates = self.steps = 0
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # detached logits, labels
        self._val_sum, self._val_count = 0.0, 0

    def weights(self) -> torch.Tensor:
        """The current loss weights `softmax(beta)` `[n]`."""
        return torch.softmax(self.beta, dim=0)

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        self._last = (logits.detach(), y)
        weights = self.weights().detach().to(logits.dtype)
        return (loss_matrix(self.candidates, logits, y) @ weights).mean()

    def update(self, ctx: StepContext) -> None:
        due = self.updates % self.every == 0
        self.updates += 1
        if not due or self._last is None:
            return
        logits, y = self._last
        val = ctx.next_val_batch()
        p = self.weights().expand(len(y), -1)
        xi = self.inner_lr if self.inner_lr is not None else ctx.lr
        u = Unroll(ctx.model, ctx.model, self.candidates, (ctx.batch, ctx.batch.y),
                   (val, val.y), logits, p.detach(), xi)  # fmt: skip
        grad, val_loss = hypergradient(u, self.hypergrad, self.fd_eps)
        self.optimizer.zero_grad(set_to_none=True)
        p.backward(grad.to(p.dtype))
        self.optimizer.step()
        self.steps += 1
        self._val_sum += val_loss
        self._val_count += 1

    def epoch_diagnostics(self) -> dict[str, Any]:
        """Current weights, mean unrolled validation loss since the last call, update count."""
        diagnostics = {
            "weights": self.named_weights(),
            "val_objective": self._val_sum / self._val_count if self._val_count else None,
            "updates": self.steps,
        }
        self._val_sum, self._val_count = 0.0, 0
        return diagnostics

    def summary(self) -> dict[str, float]:
        return weight_summary(self.candidates, self.weights())

    def extra_state(self) -> dict[str, Any]:
        return {
            "updates": self.updates,
            "steps": self.steps,
            "optimizer": deepcopy(self.optimizer.state_dict()),  # a snapshot, not live tensors
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.updates, self.steps = state["updates"], state["steps"]
        self.optimizer.load_state_dict(state["optimizer"])

    def search(
        self, cfg: RunConfig, dataset: PreparedDataset, run_dir: Path, resume: bool = False
    ) -> SearchResult:
        """Train `search_epochs` epochs with the weights learned online; return the final ones."""
        trainer, metrics = train_search_stage(cfg, dataset, run_dir, self.search_epochs, resume)
        weights = trainer.strategy.named_weights()
        details = {
            "epochs": metrics["epochs"],
            "updates": trainer.strategy.steps,
            "trace": [entry["strategy"]["weights"] for entry in metrics["history"]],
        }
        return SearchResult(cfg.loss.name, weights, metrics["wall_seconds"], details)

    def named_weights(self) -> dict[str, float]:
        """The current weights by candidate name."""
        return by_candidate(self.candidates, self.weights())


class DartsStrategy(BilevelWeights):
    """DARTS: global loss weights searched bi-level (one-step unroll), then retrained frozen."""

    name = "darts"

    def __init__(
        self,
        task: Task,
        num_classes: int,
        candidates: Sequence[str],
        *,
        search_epochs: int = 1,
        update_every: int = 7,
        lr: float = 1e-3,
        hypergrad: str = "finite_diff",
        fd_eps: float = 0.01,
    ) -> None:
        super().__init__(
            task, num_classes, candidates, search_epochs=search_epochs, update_every=update_every,
            lr=lr, inner_lr=None, hypergrad=hypergrad, fd_eps=fd_eps,
        )  # fmt: skip


__all__ = ["BilevelWeights", "DartsStrategy"]
