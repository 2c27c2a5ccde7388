"""The whole-table L2 of embedding tables, applied lazily by row-wise optimisers.

FuxiCTR's `embedding_regularizer` adds `lambda / 2 * ||W||^2` of every embedding table (the
first-order weights included) to the loss at every step, and trains the tables densely: every
row gets the gradient `lambda * w` at every step, touched or not. Row-wise optimisers update only
the rows a batch touches, so each row keeps a clock, `decayed_at` (the last step whose L2 it has
received). Before the forward pass of step t looks a row up (`catch_up`, called by the trainer
with the rows the batch loader found), it receives the decay of the `k = t - 1 - decayed_at` steps
it missed, so the loss and its gradient see the weights dense L2 would have; the optimiser step
then adds this step's `lambda * w` to its gradient as usual (and catches up any row that was not
caught up before, e.g. touched on another rank only). `flush()` brings every row up to the
current step.

SGD: a missed step is `w <- (1 - lr * lambda) * w`, so the catch-up `(1 - lr * lambda)^k * w` is
exactly dense SGD with weight decay (for a constant learning rate; under a schedule the missed
steps are decayed at the rate of the step that catches them up).

Adam (the closest equivalent; the exact one would replay k nonlinear Adam steps per row): on a
missed step dense Adam sees the gradient `lambda * w` alone. With the row's moments frozen (as
LazyAdam keeps them between touches) and the L2 gradient's own contribution in them, a missed step
is `w <- w - lr * m_hat / (sqrt(v_hat) + eps)` with `m_hat = lambda * w` (the bias-corrected mean
of a steady gradient) and `v_hat = v / (1 - beta2^t) + (lambda * w)^2`, i.e. the factor
`r = 1 - lr * lambda / (sqrt(v_hat) + eps)` per missed step, and `max(r, 0)^k` for k of them. It
has both of dense Adam's regimes: a row with a gradient history large against `lambda * w` decays
at the preconditioned rate `lr * lambda / sqrt(v_hat)`; a row the L2 dominates (rare rows, large
lambda) moves by about `lr` per missed step towards zero, Adam's sign-like step. It is exact when
no step is missed (then LazyAdam with `weight_decay` is Adam with `weight_decay` on every row).
What it leaves out is Adam's momentum on missed steps, which LazyAdam leaves out for data
gradients too.

The clocks are optimiser state (checkpointed with it; restored as integers, exact up to 2^24
steps, since `torch.optim` restores state tensors in the parameters' dtype).
"""

from __future__ import annotations

import torch


class LazyL2Optimizer(torch.optim.Optimizer):
    """Base of the row-wise optimisers with a lazily applied L2 (group key `weight_decay`)."""

    @property
    def decays(self) -> bool:
        """Whether any of its parameter groups has a whole-table L2."""
        return any(g["weight_decay"] > 0 for g in self.param_groups)

    def _missed_rate(
        self, param: torch.Tensor, group: dict, weights: torch.Tensor, moments: torch.Tensor | None
    ) -> torch.Tensor:
        """The fraction of `weights` a missed step's L2 removes (broadcastable to `weights`)."""
        raise NotImplementedError

    def _moments(self, param: torch.Tensor) -> torch.Tensor | None:
        """The whole second-moment table `_missed_rate` reads, if the optimiser has one."""
        return None

    def _start_clock(self, param: torch.Tensor, group: dict) -> None:
        state = self.state[param]
        if group["weight_decay"] > 0 and "decayed_at" not in state:
            done = int(state["step"]) if "step" in state else 0
            state["decayed_at"] = torch.full(
                (param.shape[0],), done, dtype=torch.int32, device=param.device
            )

    def _catch_up(
        self,
        param: torch.Tensor,
        group: dict,
        rows: torch.Tensor,
        weights: torch.Tensor,
        moments: torch.Tensor | None,
        now: float,
    ) -> None:
        """Decay `weights` (the rows `rows` of `param`) in place by the steps they missed."""
        missed = now - self.state[param]["decayed_at"].index_select(0, rows).to(weights.dtype)
        if missed.device.type == "cpu" and not bool(missed.gt(0).any()):
            return  # caught up before the forward pass (a GPU would wait for this answer)
        self._decay(param, group, weights, moments, missed)

    def _decay(
        self,
        param: torch.Tensor,
        group: dict,
        weights: torch.Tensor,
        moments: torch.Tensor | None,
        missed: torch.Tensor,
    ) -> None:
        """Decay `weights` in place by `missed` steps each (a float per row)."""
        shape = (-1,) + (1,) * (weights.dim() - 1)
        rate = self._missed_rate(param, group, weights, moments)
        # the exponent at the weights' shape: pow's broadcasting path takes twice as long
        exponent = missed.view(shape).expand_as(weights).contiguous()
        weights.mul_((1 - rate).clamp_(min=0).pow(exponent))

    def _mark(self, param: torch.Tensor, rows: torch.Tensor, step: float) -> None:
        self.state[param]["decayed_at"].index_fill_(0, rows, int(step))

    @torch.no_grad()
    def catch_up(self, param: torch.Tensor, rows: torch.Tensor) -> None:
        """Before a forward pass looks up the distinct `rows` of `param`: their pending decay up
        to the last step, so that the loss sees what dense L2 would have left of them."""
        group = next((g for g in self.param_groups if any(p is param for p in g["params"])), None)
        state = self.state.get(param, {})
        if group is None or group["weight_decay"] <= 0 or "decayed_at" not in state:
            return
        now = float(state["step"])
        missed = now - state["decayed_at"].index_select(0, rows).to(param.dtype)
        if rows.device.type == "cpu":  # only the rows that missed a step (a GPU would wait)
            late = missed > 0
            rows, missed = rows[late], missed[late]
            if len(rows) == 0:
                return
        moments = self._moments(param)
        weights = param.index_select(0, rows)
        rows_moments = None if moments is None else moments.index_select(0, rows)
        self._decay(param, group, weights, rows_moments, missed)
        param.index_copy_(0, rows, weights)
        self._mark(param, rows, now)

    @torch.no_grad()
    def flush(self) -> None:
        """Give every row the L2 decay of the steps it has missed, up to the current step."""
        for group in self.param_groups:
            for param in group["params"]:
                state = self.state[param]
                if group["weight_decay"] <= 0 or "decayed_at" not in state:
                    continue
                now = float(state["step"])
                every = torch.arange(param.shape[0], device=param.device)
                self._catch_up(param, group, every, param.data, self._moments(param), now)
                state["decayed_at"].fill_(int(now))

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        for state in self.state.values():
            if "decayed_at" in state:  # torch.optim restored it as the parameter's dtype
                state["decayed_at"] = state["decayed_at"].round().to(torch.int32)
