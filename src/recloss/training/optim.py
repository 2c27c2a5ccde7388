"""The trainer's optimisers: Adam for dense parameters, LazyAdam for embedding tables.

LazyAdam is Adam that updates only the embedding rows a batch touched.

`torch.optim.SparseAdam` has the same semantics but spends most of its time in generic sparse-tensor
algebra; gathering the touched rows once and updating them in place is several times faster, which
matters because the optimiser step over a Criteo-sized table dominates a training step.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recloss.config import TrainConfig


class LazyAdam(torch.optim.Optimizer):
    """Adam on sparse gradients: only the rows present in the batch change (weights and moments)."""

    def __init__(
        self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        if lr <= 0 or eps <= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid LazyAdam hyper-parameters lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                rows, grad = _rows_and_grad(param.grad)
                exp_avg = state["exp_avg"].index_select(0, rows).lerp_(grad, 1 - beta1)
                exp_avg_sq = state["exp_avg_sq"].index_select(0, rows)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, exp_avg)
                state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
                step = float(state["step"])
                step_size = group["lr"] * (1 - beta2**step) ** 0.5 / (1 - beta1**step)
                denom = exp_avg_sq.sqrt_().add_(group["eps"] * (1 - beta2**step) ** 0.5)
                param.index_add_(0, rows, exp_avg.div_(denom), alpha=-step_size)
        return loss


def _rows_and_grad(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows a gradient touches and their summed gradient rows."""
    if not grad.is_sparse:
        rows = grad.abs().sum(dim=tuple(range(1, grad.dim()))).nonzero().squeeze(1)
        return rows, grad.index_select(0, rows)
    indices, values = grad._indices()[0], grad._values()
    rows, inverse = _unique(indices)
    summed = values.new_zeros((len(rows), *values.shape[1:])).index_add_(0, inverse, values)
    return rows, summed


def _unique(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct indices and each index's position among them."""
    if indices.is_cuda:
        return torch.unique(indices, return_inverse=True)
    # NumPy's single-threaded sort: torch's parallel one stalls when the cores are shared
    rows, inverse = np.unique(indices.numpy(), return_inverse=True)
    return torch.from_numpy(rows), torch.from_numpy(inverse.reshape(-1))


def make_optimizers(model: nn.Module, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """Adam for dense parameters; LazyAdam (updates of the touched rows only) for sparse tables."""
    sparse = [m.weight for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse]
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids]
    optimizers: list[torch.optim.Optimizer] = [
        torch.optim.Adam(dense, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ]
    if sparse:
        optimizers.append(LazyAdam(sparse, lr=cfg.embedding_lr or cfg.lr))
    return optimizers
