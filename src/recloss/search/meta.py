"""MeLU-style meta-learned loss weights (the AutoLoss paper's baseline), searched then retrained.

The global loss weights `w = softmax(beta)` are the meta-parameters. Each model step is a
MAML task: an inner SGD step on the training batch with the weighted loss,
`W' = W - inner_lr * grad_W sum_i w_i L_i(W)`, then an outer step on a validation batch that
moves `beta` to lower the plain task loss `L_val(W')`. Through one inner step this meta-gradient
is the one-step-unrolled hypergradient AutoLoss and DARTS use (`hypergradient`), so the three
share it; meta-learning differs from DARTS in taking an outer step after every model step
(`update_every` 1) with its own inner step size (MAML's alpha), which need not be the model's
learning rate. After `search_epochs` epochs the model is retrained from scratch with `w` frozen
(see `recloss.search.twostage`).

Options (`loss.params`): `search_epochs` (1), `update_every` (1), `lr` (Adam outer step on beta,
1e-3), `inner_lr` (None: the model's learning rate), `hypergrad` ("finite_diff", "jvp" or
"unrolled") and `fd_eps` (0.01). Diagnostics and summary as DARTS.
"""

from __future__ import annotations

from collections.abc import Sequence

from recloss.data.schema import Task
from recloss.search.darts import BilevelWeights


class MetaStrategy(BilevelWeights):
    """MeLU-style meta-learning: global loss weights by MAML inner/outer steps, then retrained."""

    name = "meta"

    def __init__(
        self,
        task: Task,
        num_classes: int,
        candidates: Sequence[str],
        *,
        search_epochs: int = 1,
        update_every: int = 1,
        lr: float = 1e-3,
        inner_lr: float | None = None,
        hypergrad: str = "finite_diff",
        fd_eps: float = 0.01,
    ) -> None:
        super().__init__(
            task, num_classes, candidates, search_epochs=search_epochs, update_every=update_every,
            lr=lr, inner_lr=inner_lr, hypergrad=hypergrad, fd_eps=fd_eps,
        )  # fmt: skip


__all__ = ["MetaStrategy"]
