"""Adam's preconditioner for the hypergradients' unrolled step (`autoloss.params.unroll: adam`).

Adam moves a weight by `lr * m_hat / (sqrt(v_hat) + eps)`, not by `lr * grad`. Holding the
second moments and the momentum's mixing constant, the step is `lr * P grad` with the diagonal
`P = 1 / (sqrt(v_hat) + eps)`, `v_hat` the bias-corrected second moment this step will have
(the gradient in `.grad` included). The one-step unroll then takes `W' = W - xi * P grad` and
`J` along `P g'` (`recloss.search.hypergrad`). Only weights with a gradient this step depend on
the loss weights, so `P d` is zero elsewhere (embedding rows the batch did not touch, weights
with no gradient).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from recloss.training.optim import rows_and_grad


class AdamPreconditioner:
    """`P d` for each parameter of Adam or LazyAdam optimisers; `d` unchanged for others."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        self.groups = {
            id(p): (opt, group)
            for opt in optimizers
            if "betas" in opt.defaults
            for group in opt.param_groups
            for p in group["params"]
        }

    def __call__(
        self, params: Sequence[torch.Tensor], directions: Sequence[torch.Tensor | None]
    ) -> list[torch.Tensor | None]:
        return [self._scaled(p, d) for p, d in zip(params, directions, strict=True)]

    def _scaled(self, param: torch.Tensor, d: torch.Tensor | None) -> torch.Tensor | None:
        if d is None or id(param) not in self.groups or param.grad is None:
            return d
        opt, group = self.groups[id(param)]
        state = opt.state.get(param, {})
        beta2, eps = group["betas"][1], group["eps"]
        step = float(state.get("step", 0)) + 1
        if d.is_sparse:
            return self._scaled_rows(param, d, state, beta2, eps, step)
        grad = param.grad.to_dense() if param.grad.is_sparse else param.grad
        v = state.get("exp_avg_sq")
        v = grad.pow(2) * (1 - beta2) + (beta2 * v if v is not None else 0)
        return torch.where(grad != 0, d / ((v / (1 - beta2**step)).sqrt() + eps), 0)

    def _scaled_rows(
        self, param: torch.Tensor, d: torch.Tensor, state: dict, beta2: float, eps: float,
        step: float,
    ) -> torch.Tensor:  # fmt: skip
        """`P d` for a sparse `d`: its rows the gradient touches, each scaled by its `P`."""
        d = d.coalesce()
        rows, values = d.indices()[0], d.values()
        grad_rows, grad = rows_and_grad(param.grad)
        at = torch.searchsorted(grad_rows, rows).clamp_max(max(len(grad_rows) - 1, 0))
        touched = grad_rows[at] == rows if len(grad_rows) else torch.zeros_like(rows, dtype=bool)
        rows, values, grad = rows[touched], values[touched], grad[at[touched]]
        v = state.get("exp_avg_sq")
        v = grad.pow(2) * (1 - beta2) + (beta2 * v.index_select(0, rows) if v is not None else 0)
        scaled = values / ((v / (1 - beta2**step)).sqrt() + eps)
        return torch.sparse_coo_tensor(
            rows[None], scaled, d.shape, is_coalesced=True, check_invariants=False
        )


__all__ = ["AdamPreconditioner"]
