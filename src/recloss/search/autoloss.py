"""AutoLoss (Zhao et al., KDD 2021): a controller weights the candidate losses per example and step.

`AutoLoss` works with any PyTorch model and loop; `AutoLossStrategy` adapts it to the trainer.
The controller is trained bi-level on validation batches (once every `controller_every` model
steps) with the hypergradient of the one-step-unrolled validation loss (see AUTOLOSS.md):

    dL_val/dp[b, i] = -(xi / B) * <dloss_i/dz_b, J_b g'>
    g' = grad_W L_val(W - xi * grad_W L_train(W; p))

The hypergradient's forward passes run in evaluation mode: the validation loss is that of the
network as deployed (no dropout, batch-norm running statistics), the passes it compares are
deterministic and identical in everything but the weights, batch-norm statistics are never updated
by them, and no dropout masks are drawn (much of a CPU forward pass). `J g'` is thus taken on the
deterministic network, while the training gradient in `.grad` came from a dropout-sampled one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from recloss.data.schema import Task
from recloss.errors import ConfigError, RecLossError
from recloss.losses import check_candidates, cross_entropy, loss_matrix
from recloss.search.base import LossStrategy, StepContext
from recloss.search.controller import (
    Controller,
    ControllerSpec,
    check_compatible,
    gumbel_noise,
    load_controller,
    save_controller,
    select,
    temperature,
)

DEFAULT_CANDIDATES = ("focal", "kl", "hinge", "ce")
HYPERGRADS = ("finite_diff", "jvp", "unrolled", "first_order")
CONTROLLER_FILE = "controller.safetensors"

Pair = tuple[Any, torch.Tensor]  # (model inputs, labels)
Forward = Callable[[Any], torch.Tensor]  # model inputs -> logits


@dataclass
class _Selection:
    """What the last `loss()` call used, so the controller step can recompute the same `p`."""

    features: torch.Tensor
    noise: torch.Tensor
    tau: float
    logits: torch.Tensor  # detached training logits
    y: torch.Tensor
    weights: torch.Tensor  # detached p


@dataclass
class Unroll:
    """One controller step's inputs: the model, its training and validation batches, and `xi`."""

    model: nn.Module
    forward: Forward
    candidates: Sequence[str]
    train: Pair
    val: Pair
    logits: torch.Tensor  # training logits the parameters' `.grad` came from
    weights: torch.Tensor  # the loss weights p of that training loss (for `unrolled`)
    lr: float


class _Call(nn.Module):
    """Wraps `forward` (which may close over `model`) so that torch.func can swap its parameters."""

    def __init__(self, model: nn.Module, forward: Forward) -> None:
        super().__init__()
        self.model = model
        # kept out of the submodule registry: `forward` may be `model` itself, and a module
        # registered under two names breaks functional_call's parameter swap-back
        self.__dict__["fn"] = forward

    def forward(self, inputs: Any) -> torch.Tensor:
        return _flat(self.fn(inputs))


def _flat(logits: torch.Tensor) -> torch.Tensor:
    """Binary logits may come as `[B, 1]`; everything here uses `[B]`."""
    return logits.squeeze(1) if logits.dim() == 2 and logits.shape[1] == 1 else logits


def task_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The plain validation objective: mean logloss (binary) or cross-entropy (multi-class)."""
    return cross_entropy(_flat(logits), y).mean()


@contextmanager
def _evaluation(model: nn.Module) -> Iterator[None]:
    """Evaluation mode for the hypergradient's passes; every module's own mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _in_evaluation(hypergrad: Callable[..., Any]) -> Callable[..., Any]:
    """Run a hypergradient function with `u.model` in evaluation mode."""

    @functools.wraps(hypergrad)
    def run(u: Unroll, *args: Any) -> Any:
        with _evaluation(u.model):
            return hypergrad(u, *args)

    return run


class _Shift:
    """Adds `scale * direction` to parameters in place; `restore` puts the exact values back."""

    def __init__(self, params: Sequence[torch.Tensor], directions: Sequence[torch.Tensor | None]):
        self.moves = []
        for p, d in zip(params, directions, strict=True):
            if d is None:
                continue
            if d.is_sparse:
                d = d.coalesce()
                rows = d.indices()[0]
                self.moves.append((p, d, rows, p.data.index_select(0, rows)))
            else:
                self.moves.append((p, d, None, p.data.clone()))

    def apply(self, scale: float) -> None:
        for p, d, _, _ in self.moves:
            p.data.add_(d, alpha=scale)

    def restore(self) -> None:
        for p, _, rows, saved in self.moves:
            if rows is None:
                p.data.copy_(saved)
            else:
                p.data.index_copy_(0, rows, saved)


def _norm(tensors: Sequence[torch.Tensor | None]) -> torch.Tensor:
    squares = [
        (t.coalesce().values() if t.is_sparse else t).pow(2).sum() for t in tensors if t is not None
    ]
    return torch.stack(squares).sum().sqrt()


def _trainable(model: nn.Module) -> tuple[list[str], list[nn.Parameter]]:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [n for n, _ in named], [p for _, p in named]


def _val_grad_at_unrolled(u: Unroll, call: _Call) -> tuple[list[torch.Tensor | None], float]:
    """`g' = grad_W L_val(W')` and `L_val(W')` at `W' = W - xi * grad` (grad: in `.grad`)."""
    _, params = _trainable(u.model)
    step = _Shift(params, [p.grad for p in params])
    step.apply(-u.lr)
    try:
        val_loss = task_loss(call(u.val[0]), u.val[1])
        grads = torch.autograd.grad(val_loss, params, allow_unused=True)
    finally:
        step.restore()
    return list(grads), float(val_loss.detach())


def _weight_grad(u: Unroll, directional: torch.Tensor) -> torch.Tensor:
    """`dL_val/dp = -(xi/B) <dloss_i/dz_b, J_b g'>` from the directional derivative `J g'`."""
    z = _flat(u.logits).detach().requires_grad_()
    with torch.enable_grad():
        losses = loss_matrix(u.candidates, z, u.train[1])
        per_loss = [
            torch.autograd.grad(losses[:, i].sum(), z, retain_graph=True)[0]
            for i in range(losses.shape[1])
        ]
    dz = torch.stack(per_loss, dim=1).reshape(len(z), len(per_loss), -1)
    jg = directional.detach().reshape(len(z), 1, -1)
    return -(u.lr / len(z)) * (dz * jg).sum(dim=2)


@_in_evaluation
def finite_diff_hypergradient(u: Unroll, eps: float = 0.01) -> tuple[torch.Tensor, float]:
    """Hypergradient with `J g'` as a central difference at `W +- e g'`, `e = eps / ||g'||`."""
    call = _Call(u.model, u.forward)
    g, val_loss = _val_grad_at_unrolled(u, call)
    norm = float(_norm(g)) if any(t is not None for t in g) else 0.0
    if norm == 0.0:
        return torch.zeros_like(u.weights), val_loss
    e = eps / norm
    _, params = _trainable(u.model)
    shift = _Shift(params, g)
    outputs = []
    with torch.no_grad():
        for scale in (e, -e):
            shift.apply(scale)
            try:
                outputs.append(call(u.train[0]))
            finally:
                shift.restore()
    return _weight_grad(u, (outputs[0] - outputs[1]) / (2 * e)), val_loss


@_in_evaluation
def jvp_hypergradient(u: Unroll) -> tuple[torch.Tensor, float]:
    """Hypergradient with `J g'` as a forward-mode Jacobian-vector product (`torch.func.jvp`)."""
    call = _Call(u.model, u.forward)
    g, val_loss = _val_grad_at_unrolled(u, call)
    names, params = _trainable(u.model)
    primals, tangents = {}, {}
    for name, p, t in zip(names, params, g, strict=True):
        if t is not None:  # parameters without a direction keep their values and a zero tangent
            primals[f"model.{name}"] = p.detach()
            tangents[f"model.{name}"] = t.to_dense() if t.is_sparse else t

    def logits_of(ps: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(call, ps, (u.train[0],))

    _, directional = torch.func.jvp(logits_of, (primals,), (tangents,))
    return _weight_grad(u, directional), val_loss


@_in_evaluation
def unrolled_hypergradient(u: Unroll) -> tuple[torch.Tensor, float]:
    """Exact `dL_val(W - xi * grad_W L_train(W; p)) / dp` through one SGD step (torch.func).

    Recomputes the training gradient from `p` alone (anything else the caller added to `.grad`,
    such as an L2 penalty, is left out). Costs a second-order pass: for tests and small models.
    """
    call = _Call(u.model, u.forward)
    names, params = _trainable(u.model)
    primals = {f"model.{n}": p.detach() for n, p in zip(names, params, strict=True)}
    x, y = u.train

    def val_loss_of(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        def train_loss(ps: dict[str, torch.Tensor]) -> torch.Tensor:
            z = functional_call(call, ps, (x,))
            return (loss_matrix(u.candidates, z, y) * weights).sum(dim=1).mean()

        grads = torch.func.grad(train_loss)(primals)
        stepped = {k: w - u.lr * grads[k] for k, w in primals.items()}
        loss = task_loss(functional_call(call, stepped, (u.val[0],)), u.val[1])
        return loss, loss.detach()

    grad, val_loss = torch.func.grad(val_loss_of, has_aux=True)(u.weights.detach())
    return grad, float(val_loss)


def hypergradient(u: Unroll, method: str = "finite_diff", eps: float = 0.01):
    """`(dL_val/dp [B, n], L_val(W'))` by one of the second-order methods."""
    if method == "finite_diff":
        return finite_diff_hypergradient(u, eps)
    if method == "jvp":
        return jvp_hypergradient(u)
    if method == "unrolled":
        return unrolled_hypergradient(u)
    raise ConfigError(f"hypergrad: unknown {method!r}; choose one of: {', '.join(HYPERGRADS[:3])}")


class AutoLoss(nn.Module):
    """Per-example, per-step weights over candidate losses, learned on validation data.

    Call `loss(logits, y)` for the training loss, back-propagate it, then call `update(...)`
    before the optimiser step: every `controller_every` calls it takes one controller step.

    Options: `controller_every` (K, default 7), `controller_lr` (Adam, 1e-3), `hidden`
    ((64, 64)), `activation` ("relu"), `use_logit` (also feed the logit, False), Gumbel
    temperature `tau0` (1.0), `tau_min` (0.05), `tau_decay` (1e-4: tau reaches tau_min after
    about 30k steps, a few epochs of a large data set), `hard` (straight-through one-hot
    selection, False), `hypergrad` ("finite_diff", "jvp", "unrolled" or "first_order": the
    validation loss weighted by p, degenerate, for ablations only), `fd_eps` (0.01),
    `controller` (a saved controller file to start from), `freeze_controller` (never update it),
    `trace_every` (record mean weights every N loss calls, 10).
    """

    def __init__(
        self,
        task: Task = "binary",
        candidates: Sequence[str] = DEFAULT_CANDIDATES,
        num_classes: int | None = None,
        *,
        controller_every: int = 7,
        controller_lr: float = 1e-3,
        hidden: Sequence[int] | None = None,
        activation: str | None = None,
        use_logit: bool | None = None,
        tau0: float = 1.0,
        tau_min: float = 0.05,
        tau_decay: float = 1e-4,
        hard: bool = False,
        hypergrad: str = "finite_diff",
        fd_eps: float = 0.01,
        controller: str | Path | None = None,
        freeze_controller: bool = False,
        trace_every: int = 10,
    ) -> None:
        super().__init__()
        num_classes = 2 if num_classes is None and task == "binary" else num_classes
        if num_classes is None:
            raise ConfigError("num_classes: a multi-class task needs its number of classes")
        _check_options(
            controller_every,
            controller_lr,
            tau0,
            tau_min,
            tau_decay,
            hypergrad,
            fd_eps,
            trace_every,
        )
        if freeze_controller and controller is None:
            raise ConfigError("freeze_controller: needs `controller`, a saved controller file")
        self.candidates = [c.lower() for c in candidates]
        check_candidates(self.candidates, task)
        arch = {"hidden": hidden, "activation": activation, "use_logit": use_logit}
        self.controller = _make_controller(task, num_classes, self.candidates, arch, controller)
        self.task, self.num_classes = task, num_classes
        self.every, self.hypergrad, self.fd_eps = controller_every, hypergrad, fd_eps
        self.hard = hard
        self.schedule = (tau0, tau_min, tau_decay)
        self.trace_every = trace_every
        self.frozen = freeze_controller
        self.controller.requires_grad_(not self.frozen)
        self.optimizer = None
        if not self.frozen:
            self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=controller_lr)
        self.calls = self.updates = self.controller_steps = 0
        self._last: _Selection | None = None
        self._last_selection: dict[str, float] | None = None
        self._reset_diagnostics()

    # -- the training loss -----------------------------------------------------------------------
    def tau(self, step: int) -> float:
        """The Gumbel-softmax temperature at `step`."""
        return temperature(step, *self.schedule)

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int | None = None) -> torch.Tensor:
        """Training loss `mean_b sum_i p[b, i] * loss_i`; `step` (default: call count) sets tau."""
        logits = _flat(logits)
        step = self.calls if step is None else step
        tau = self.tau(step)
        with torch.no_grad():
            features = self.controller.features(logits, y)
            log_alpha = self.controller(features)
            noise = gumbel_noise(log_alpha.shape, log_alpha.device)
            weights = select(log_alpha, noise, tau, self.hard)
        self._record(log_alpha.exp(), y, step)
        self._last = _Selection(features, noise, tau, logits.detach(), y, weights)
        self.calls += 1
        return (loss_matrix(self.candidates, logits, y) * weights.to(logits.dtype)).sum(1).mean()

    # -- the controller step ---------------------------------------------------------------------
    def update(
        self,
        model: nn.Module,
        train: Pair,
        val: Pair | Callable[[], Pair],
        lr: float,
        forward: Forward | None = None,
    ) -> bool:
        """After `loss(...).backward()`, before the optimiser step; True if the controller stepped.

        `train` is the `(inputs, labels)` pair just trained on, `val` a validation pair (or a
        function returning the next one, called only on controller steps), `lr` the model's
        learning rate (xi), and `forward(inputs) -> logits` defaults to `model(inputs)`.
        """
        if self.frozen or self.updates % self.every != 0:
            self.updates += 1
            return False
        if self._last is None or len(self._last.y) != len(train[1]):
            raise RecLossError("AutoLoss.update: call loss() on the same training batch first")
        if all(p.grad is None for p in model.parameters()):
            raise RecLossError("AutoLoss.update: no gradients; back-propagate the loss first")
        self.updates += 1
        val_pair = val() if callable(val) else val
        u = Unroll(
            model,
            forward or model,
            self.candidates,
            train,
            val_pair,
            self._last.logits,
            self._last.weights,
            lr,
        )
        self.optimizer.zero_grad(set_to_none=True)
        if self.hypergrad == "first_order":
            objective = self._first_order_backward(u)
        else:
            grad, objective = hypergradient(u, self.hypergrad, self.fd_eps)
            self._weights_with_grad().backward(grad.to(torch.float32))
        self.optimizer.step()
        self.controller_steps += 1
        self._val_sum += objective
        self._val_count += 1
        return True

    def _weights_with_grad(self) -> torch.Tensor:
        """The last loss call's `p`, recomputed with its Gumbel noise, as a function of V."""
        last = self._last
        return select(self.controller(last.features), last.noise, last.tau, self.hard)

    def _first_order_backward(self, u: Unroll) -> float:
        """Degenerate ablation: back-propagate the p-weighted validation loss into V."""
        with torch.no_grad(), _evaluation(u.model):
            z = _Call(u.model, u.forward)(u.val[0])
        log_alpha = self.controller(self.controller.features(z, u.val[1]))
        weights = select(
            log_alpha, gumbel_noise(log_alpha.shape, z.device), self._last.tau, self.hard
        )
        objective = (loss_matrix(self.candidates, z, u.val[1]) * weights).sum(1).mean()
        objective.backward()
        return float(objective.detach())

    # -- diagnostics -----------------------------------------------------------------------------
    def _reset_diagnostics(self) -> None:
        n = len(self.candidates)
        self._alpha_sum = torch.zeros(n)
        self._alpha_by_label = torch.zeros(self.num_classes, n)
        self._label_count = torch.zeros(self.num_classes)
        self._trace: list[tuple[int, torch.Tensor]] = []
        self._val_sum, self._val_count = 0.0, 0

    @torch.no_grad()
    def _record(self, alpha: torch.Tensor, y: torch.Tensor, step: int) -> None:
        if self._alpha_sum.device != alpha.device:
            self._alpha_sum = self._alpha_sum.to(alpha.device)
            self._alpha_by_label = self._alpha_by_label.to(alpha.device)
            self._label_count = self._label_count.to(alpha.device)
        alpha = alpha.float()
        self._alpha_sum += alpha.sum(0)
        self._alpha_by_label.index_add_(0, y, alpha)
        self._label_count.index_add_(0, y, torch.ones_like(y, dtype=torch.float32))
        if self.calls % self.trace_every == 0:
            self._trace.append((step, alpha.mean(0)))

    def epoch_diagnostics(self) -> dict[str, Any]:
        """Mean selection probabilities (overall, by label), controller objective, trace; resets."""
        counts = self._label_count.cpu()
        total = float(counts.sum())
        selection = self._named(self._alpha_sum.cpu() / total) if total else None
        by_label = {
            str(c): self._named(row / counts[c])
            for c, row in enumerate(self._alpha_by_label.cpu())
            if counts[c] > 0
        }
        trace_alpha = torch.stack([a for _, a in self._trace]).cpu() if self._trace else None
        diagnostics = {
            "tau": self._last.tau if self._last is not None else self.schedule[0],
            "controller_steps": self.controller_steps,
            "selection": selection,
            "selection_by_label": by_label,
            "val_objective": self._val_sum / self._val_count if self._val_count else None,
            "trace": {
                "step": [s for s, _ in self._trace],
                "alpha": {
                    c: [] if trace_alpha is None else trace_alpha[:, i].tolist()
                    for i, c in enumerate(self.candidates)
                },
            },
        }
        if selection is not None:
            self._last_selection = selection
        self._reset_diagnostics()
        return diagnostics

    def summary(self) -> dict[str, float]:
        """Learned mean selection probability per candidate (last epoch, else so far)."""
        selection = self._last_selection
        total = float(self._label_count.sum())
        if selection is None and total:
            selection = self._named(self._alpha_sum.cpu() / total)
        return {f"weight_{c}": v for c, v in (selection or {}).items()}

    def _named(self, values: torch.Tensor) -> dict[str, float]:
        return {c: float(v) for c, v in zip(self.candidates, values, strict=True)}

    # -- state -----------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Counters and the controller optimiser's state (its weights are in `state_dict`)."""
        return {
            "calls": self.calls,
            "updates": self.updates,
            "controller_steps": self.controller_steps,
            # a snapshot: the optimiser's own state_dict shares tensors it keeps updating
            "optimizer": None if self.optimizer is None else deepcopy(self.optimizer.state_dict()),
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what `extra_state` returned."""
        self.calls, self.updates = state["calls"], state["updates"]
        self.controller_steps = state["controller_steps"]
        if self.optimizer is not None and state["optimizer"] is not None:
            self.optimizer.load_state_dict(state["optimizer"])

    def save_controller(self, path: str | Path) -> Path:
        """Write the controller (weights + task, candidates, architecture) as safetensors."""
        return save_controller(self.controller, path)


def _check_options(
    every: int,
    lr: float,
    tau0: float,
    tau_min: float,
    decay: float,
    hypergrad: str,
    fd_eps: float,
    trace_every: int,
) -> None:
    checks = [
        ("controller_every", every, isinstance(every, int) and every >= 1, "a positive integer"),
        ("controller_lr", lr, lr > 0, "positive"),
        ("tau0", tau0, tau0 > 0, "positive"),
        ("tau_min", tau_min, 0 < tau_min <= tau0, "positive and at most tau0"),
        ("tau_decay", decay, decay >= 0, "non-negative"),
        ("fd_eps", fd_eps, fd_eps > 0, "positive"),
        (
            "trace_every",
            trace_every,
            isinstance(trace_every, int) and trace_every >= 1,
            "a positive integer",
        ),
    ]
    for name, value, ok, what in checks:
        if not ok:
            raise ConfigError(f"{name}: must be {what}, got {value!r}")
    if hypergrad not in HYPERGRADS:
        choices = ", ".join(HYPERGRADS)
        raise ConfigError(f"hypergrad: unknown {hypergrad!r}; choose one of: {choices}")


def _make_controller(
    task: Task,
    num_classes: int,
    candidates: list[str],
    arch: dict[str, Any],
    path: str | Path | None,
) -> Controller:
    """A fresh controller, or the saved one at `path` if it fits the task and candidates."""
    if path is None:
        given = {k: (tuple(v) if k == "hidden" else v) for k, v in arch.items() if v is not None}
        return Controller(ControllerSpec(task, num_classes, tuple(candidates), **given))
    controller = load_controller(path)
    spec = controller.spec
    check_compatible(spec, task, num_classes, candidates, path)
    for key, value in arch.items():
        saved = getattr(spec, key)
        if value is not None and (tuple(value) if key == "hidden" else value) != saved:
            raise ConfigError(f"{key}: {value!r} differs from the controller file's {saved!r}")
    return controller


OPTIONS = frozenset(inspect.signature(AutoLoss).parameters) - {"task", "candidates", "num_classes"}


class AutoLossStrategy(LossStrategy):
    """The trainer's `autoloss` strategy: a thin adapter over `AutoLoss`."""

    name = "autoloss"

    def __init__(
        self,
        task: Task,
        num_classes: int,
        candidates: Sequence[str] = DEFAULT_CANDIDATES,
        *,
        controller_every: int = 7,
        controller_lr: float = 1e-3,
        hidden: Sequence[int] | None = None,
        activation: str | None = None,
        use_logit: bool | None = None,
        tau0: float = 1.0,
        tau_min: float = 0.05,
        tau_decay: float = 1e-4,
        hard: bool = False,
        hypergrad: str = "finite_diff",
        fd_eps: float = 0.01,
        controller: str | None = None,
        freeze_controller: bool = False,
        trace_every: int = 10,
    ) -> None:
        super().__init__(task, num_classes)
        try:
            self.core = AutoLoss(
                task, candidates, num_classes, controller_every=controller_every,
                controller_lr=controller_lr, hidden=hidden, activation=activation,
                use_logit=use_logit, tau0=tau0, tau_min=tau_min, tau_decay=tau_decay, hard=hard,
                hypergrad=hypergrad, fd_eps=fd_eps, controller=controller,
                freeze_controller=freeze_controller, trace_every=trace_every,
            )  # fmt: skip
        except ConfigError as err:
            message = str(err)
            if message.split(":", 1)[0] in OPTIONS:
                message = f"loss.params.{message}"
            raise ConfigError(message) from None

    def loss(self, logits: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        return self.core.loss(logits, y, step)

    def update(self, ctx: StepContext) -> None:
        def next_val() -> Pair:
            batch = ctx.next_val_batch()
            return batch, batch.y

        self.core.update(ctx.model, (ctx.batch, ctx.batch.y), next_val, ctx.lr)

    def epoch_diagnostics(self) -> dict[str, Any]:
        return self.core.epoch_diagnostics()

    def summary(self) -> dict[str, float]:
        return self.core.summary()

    def extra_state(self) -> dict[str, Any]:
        return self.core.extra_state()

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.core.load_extra_state(state)

    def save_artifacts(self, run_dir: Path) -> None:
        self.core.save_controller(Path(run_dir) / CONTROLLER_FILE)


__all__ = [
    "AutoLoss",
    "AutoLossStrategy",
    "Unroll",
    "finite_diff_hypergradient",
    "hypergradient",
    "jvp_hypergradient",
    "task_loss",
    "unrolled_hypergradient",
]
