"""The trainer's optimisers: Adam for dense parameters, LazyAdam for embedding tables.

LazyAdam is Adam that updates only the embedding rows a batch touched.

`torch.optim.SparseAdam` has the same semantics but spends most of its time in generic sparse-tensor
algebra; gathering the touched rows once and updating them in place is several times faster, which
matters because the optimiser step over a Criteo-sized table dominates a training step. The
whole-table L2 (`weight_decay`, see `recloss.training.lazy_l2`) is applied lazily: a row receives
the decay of the steps it missed when it is next touched, or at `flush()`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recloss.config import TrainConfig
from recloss.data.schema import Batch
from recloss.models.layers import FeaturesEmbedding
from recloss.training.lazy_l2 import LazyL2Optimizer


class LazyAdam(LazyL2Optimizer):
    """Adam on sparse gradients: only the rows present in the batch change (weights and moments).

    Gradient contract (what the trainer's models and distributed all-reduces hand over): `.grad`
    of a table is a sparse COO tensor `[N, D]`. When it is marked coalesced
    (`grad.is_coalesced()`, as the models' deduplicated lookups produce it: distinct sorted row
    indices `[U]` and their summed values `[U, D]`) its indices are used as they are, with no
    sort and no summation; an uncoalesced one (several ranks' gradients gathered, or an
    `nn.Embedding(sparse=True)` gradient with a row per lookup) is first reduced to distinct rows
    with summed values, as coalescing would. A dense gradient is accepted too (its nonzero rows).
    `weight_decay` is the whole-table L2 `weight_decay / 2 * ||W||^2` (FuxiCTR's
    `embedding_regularizer`), applied lazily as `LazyL2Optimizer` describes; call `flush()`
    before using the weights.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if lr <= 0 or eps <= 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(
                f"invalid LazyAdam hyper-parameters lr={lr}, betas={betas}, eps={eps}, "
                f"weight_decay={weight_decay}"
            )
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self._update(param, group)
        return loss

    def _update(self, param: torch.Tensor, group: dict) -> None:
        beta1, beta2 = group["betas"]
        decay = group["weight_decay"]
        state = self.state[param]
        if "exp_avg" not in state:
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
        self._start_clock(param, group)
        state["step"] += 1
        step = float(state["step"])
        rows, grad = rows_and_grad(param.grad)
        weights = param.index_select(0, rows)
        exp_avg = state["exp_avg"].index_select(0, rows)
        exp_avg_sq = state["exp_avg_sq"].index_select(0, rows)
        if decay > 0:
            self._catch_up(param, group, rows, weights, exp_avg_sq, step - 1)
        # One fused kernel for Adam on the gathered rows (this step's L2 gradient included) in
        # place of eight elementwise passes; its step count must live on the rows' device.
        steps = (
            state["step"]
            if param.device.type == "cpu"
            else torch.full((), step, device=param.device)
        )
        torch._fused_adam_(
            [weights],
            [grad],
            [exp_avg],
            [exp_avg_sq],
            [],
            [steps],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=decay,
            eps=group["eps"],
            amsgrad=False,
            maximize=False,
        )
        param.index_copy_(0, rows, weights)
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        if decay > 0:
            self._mark(param, rows, step)

    def _missed_rate(
        self, param: torch.Tensor, group: dict, weights: torch.Tensor, moments: torch.Tensor | None
    ) -> torch.Tensor:
        # Adam's step on a row whose only gradient is the L2 one, lambda * w: m-hat = lambda * w,
        # v-hat = its frozen second moment plus (lambda * w)^2, so w shrinks by the factor
        # 1 - lr * lambda / (sqrt(v-hat) + eps) per missed step (see lazy_l2's docstring).
        beta2 = group["betas"][1]
        decay = group["weight_decay"]
        step = float(self.state[param]["step"])
        v_hat = moments / (1 - beta2**step) if step > 0 else torch.zeros_like(weights)
        scale = v_hat.addcmul_(weights, weights, value=decay * decay).sqrt_().add_(group["eps"])
        return scale.reciprocal_().mul_(group["lr"] * decay)

    def _moments(self, param: torch.Tensor) -> torch.Tensor | None:
        return self.state[param].get("exp_avg_sq")


class LazySGD(LazyL2Optimizer):
    """Plain SGD on the touched rows with the lazy whole-table L2: equal to dense SGD with
    `weight_decay` (`w -= lr * (g + weight_decay * w)` on every row, every step) exactly."""

    def __init__(self, params, lr: float = 0.01, weight_decay: float = 0.0) -> None:
        if lr <= 0 or weight_decay < 0:
            raise ValueError(
                f"invalid LazySGD hyper-parameters lr={lr}, weight_decay={weight_decay}"
            )
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                state.setdefault("step", torch.zeros((), dtype=torch.float32))
                self._start_clock(param, group)
                state["step"] += 1
                step = float(state["step"])
                rows, grad = rows_and_grad(param.grad)
                weights = param.index_select(0, rows)
                if group["weight_decay"] > 0:
                    self._catch_up(param, group, rows, weights, None, step - 1)
                    grad = grad.add(weights, alpha=group["weight_decay"])
                    self._mark(param, rows, step)
                param.index_copy_(0, rows, weights.sub_(grad, alpha=group["lr"]))
        return loss

    def _missed_rate(
        self, param: torch.Tensor, group: dict, weights: torch.Tensor, moments: torch.Tensor | None
    ) -> torch.Tensor:
        return torch.full_like(weights[:1], group["lr"] * group["weight_decay"])


def rows_and_grad(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows a gradient touches and their summed gradient rows."""
    if not grad.is_sparse:
        rows = grad.abs().sum(dim=tuple(range(1, grad.dim()))).nonzero().squeeze(1)
        return rows, grad.index_select(0, rows)
    indices, values = grad._indices()[0], grad._values()
    if grad.is_coalesced():
        return indices, values
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
    """Adam for dense parameters; LazyAdam (updates of the touched rows only) for sparse tables.

    Every embedding table (the first-order weights too) carries `cfg.embedding_regularizer` as
    its L2: lazily in LazyAdam, as Adam's `weight_decay` for dense tables.
    """
    tables = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    sparse = [m.weight for m in tables if m.sparse]
    dense_tables = [m.weight for m in tables if not m.sparse]
    table_ids = {id(m.weight) for m in tables}
    dense = [p for p in model.parameters() if id(p) not in table_ids]
    groups: list[dict] = [{"params": dense}]
    if dense_tables:
        groups.append({"params": dense_tables, "weight_decay": cfg.embedding_regularizer})
    optimizers: list[torch.optim.Optimizer] = [
        torch.optim.Adam(
            groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=_fusable(dense + dense_tables)
        )
    ]
    if sparse:
        lr = cfg.embedding_lr or cfg.lr
        optimizers.append(LazyAdam(sparse, lr=lr, weight_decay=cfg.embedding_regularizer))
    return optimizers


def catch_up_lookups(
    optimizers: list[torch.optim.Optimizer], model: nn.Module, batch: Batch
) -> None:
    """Before the forward pass: the rows `batch` will look up receive their pending L2 decay."""
    lazy = [o for o in optimizers if isinstance(o, LazyL2Optimizer) and o.decays]
    if batch.lookup is None or not lazy:
        return
    for module in model.modules():
        if isinstance(module, FeaturesEmbedding):
            rows = module.table_rows(batch.lookup)
            for opt in lazy:
                opt.catch_up(module.table.weight, rows)


def _fusable(params: list[torch.Tensor]) -> bool:
    """Whether `torch.optim.Adam(fused=True)`, one kernel per step, can take these parameters."""
    return bool(params) and all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params
    )


def flush_regularization(optimizers: list[torch.optim.Optimizer]) -> None:
    """Give every row of every lazily regularised table its pending L2 decay (before the
    weights are evaluated, saved as the best model, or handed back at the end of training)."""
    for opt in optimizers:
        if isinstance(opt, LazyL2Optimizer):
            opt.flush()
