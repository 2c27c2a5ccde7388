"""One-step-unrolled hypergradients of the validation loss with respect to the loss weights.

AutoLoss, DARTS and meta-learning share them (AUTOLOSS.md section 4). With `p[b, i]` the weight
of candidate i on training example b and `xi` the model's learning rate:

    dL_val/dp[b, i] = -(xi / B) * <dloss_i/dz_b, J_b g'>
    g' = grad_W L_val(W - xi * grad_W L_train(W; p))

`J g'` comes from a central difference (`finite_diff`), a forward-mode Jacobian-vector product
(`jvp`), or autograd through the whole unrolled step (`unrolled`, exact, for tests and small
models). `window_hypergradients` takes the model steps since the last controller step along the
one `g'`, to first order in `xi`. With the model optimiser's diagonal preconditioner `P`
(`Unroll.precondition`), the unrolled step is `W - xi * P grad` and `J` is taken along `P g'`.

The passes run in evaluation mode: the validation loss is that of the network as deployed (no
dropout, batch-norm running statistics), the passes it compares are deterministic and identical in
everything but the weights, batch-norm statistics are never updated by them, and no dropout masks
are drawn (much of a CPU forward pass). `J g'` is thus taken on the deterministic network, while
the training gradient in `.grad` came from a dropout-sampled one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.profiler import record_function

from recloss.data.schema import Batch
from recloss.errors import ConfigError
from recloss.losses import loss_matrix
from recloss.search.base import Precondition
from recloss.search.objectives import flat, task_loss
from recloss.search.stepsize import corrected, logit_gradients, reference_total
from recloss.search.stepsize import scale as step_scale

HYPERGRADS = ("finite_diff", "jvp", "unrolled")

Pair = tuple[Any, torch.Tensor]  # (model inputs, labels)
Forward = Callable[[Any], torch.Tensor]  # model inputs -> logits


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
    # step-size normalisation of the training loss (`recloss.search.stepsize`): its reference
    # loss, or None for the plain mixture
    reference: str | None = None
    objective: str = "logloss"  # the validation objective: one of OBJECTIVES
    # the optimiser's diagonal preconditioner P: the unrolled step is `xi * P grad` and `J` is
    # taken along `P g'` (None: plain SGD, the paper's unroll)
    precondition: Precondition | None = None
    # the training loss's logits, where they are not `forward`'s: the model's through a
    # label-noise channel (`recloss.training.flip_channel`); the validation loss keeps `forward`
    train_forward: Forward | None = None


@dataclass(frozen=True)
class TrainingStep:
    """A model step's batch as a hypergradient over a window of steps takes it
    (`window_hypergradients`): its inputs and labels, its logits and its loss weights."""

    train: Pair
    logits: torch.Tensor
    weights: torch.Tensor


class ModelCall(nn.Module):
    """Wraps `forward` (which may close over `model`) so that torch.func can swap its parameters."""

    def __init__(self, model: nn.Module, forward: Forward) -> None:
        super().__init__()
        self.model = model
        # kept out of the submodule registry: `forward` may be `model` itself, and a module
        # registered under two names breaks functional_call's parameter swap-back
        self.__dict__["fn"] = forward

    def forward(self, inputs: Any) -> torch.Tensor:
        return flat(self.fn(inputs))


def for_transforms(inputs: Any) -> Any:
    """`inputs` for a torch.func transform: a `Batch` without its lookup, whose distinct-row
    autograd Function the transforms cannot see through (plain embedding lookups instead)."""
    if isinstance(inputs, Batch) and inputs.lookup is not None:
        return Batch(inputs.x_cat, inputs.x_num, inputs.y)  # (`_replace` trips on Batch's len)
    return inputs


def head(inputs: Any, rows: int | None) -> Any:
    """The first `rows` examples of model inputs (a `Batch`, without its lookup, or a tensor)."""
    if rows is None:
        return inputs
    if isinstance(inputs, Batch):
        x_num = None if inputs.x_num is None else inputs.x_num[:rows]
        return Batch(inputs.x_cat[:rows], x_num, inputs.y[:rows])
    return inputs[:rows]


def cut(pair: Pair, rows: int | None) -> tuple[Pair, int | None]:
    """`pair`'s first `rows` examples if it has more and its inputs can be cut (a `Batch` or a
    tensor), and the number taken (None: all of them)."""
    inputs, y = pair
    if rows is None or rows >= len(y) or not isinstance(inputs, Batch | torch.Tensor):
        return pair, None
    return (head(inputs, rows), y[:rows]), rows


@contextmanager
def evaluation(model: nn.Module) -> Iterator[None]:
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
        with evaluation(u.model):
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


def _train_call(u: Unroll) -> ModelCall:
    """The training batches' logits as the training loss saw them."""
    return ModelCall(u.model, u.train_forward or u.forward)


def _val_grad_at_unrolled(u: Unroll, call: ModelCall) -> tuple[list[torch.Tensor | None], float]:
    """`g' = grad_W L_val(W')` and `L_val(W')` at `W' = W - xi * grad` (grad: in `.grad`;
    `P grad` with `u.precondition`)."""
    _, params = _trainable(u.model)
    step = _Shift(params, _preconditioned(u, params, [p.grad for p in params]))
    step.apply(-u.lr)
    try:
        with record_function("hypergrad: validation pass"):  # for benchmarks/autoloss_overhead.py
            val_loss = task_loss(call(u.val[0]), u.val[1], u.objective)
            grads = torch.autograd.grad(val_loss, params, allow_unused=True)
    finally:
        step.restore()
    # coalesced once here, not again by each use (the norm, every shift): a sort per table
    coalesced = [g.coalesce() if g is not None and g.is_sparse else g for g in grads]
    return coalesced, float(val_loss.detach())


def _preconditioned(
    u: Unroll, params: list[nn.Parameter], directions: list[torch.Tensor | None]
) -> list[torch.Tensor | None]:
    return directions if u.precondition is None else u.precondition(params, directions)


def _weight_grad(u: Unroll, batch: TrainingStep, directional: torch.Tensor) -> torch.Tensor:
    """`dL_val/dp = -(xi/B) <dloss_i/dz_b, J_b g'>` of `batch` from the directional derivative
    `J g'` of its logits. With step-size normalisation, plus the term of `c(p)`
    (`stepsize.corrected`)."""
    z, y = flat(batch.logits).detach(), batch.train[1]
    dz = logit_gradients(list(u.candidates), z, y)
    jg = directional.detach().reshape(len(z), 1, -1)
    h = -(u.lr / len(z)) * (dz * jg).sum(dim=2)
    if u.reference is None:
        return h
    return corrected(h, batch.weights, dz, reference_total(u.reference, z, y, dz))


def _central_differences(
    u: Unroll, call: ModelCall, g: list[torch.Tensor | None], inputs: list[Any], e: float
) -> list[torch.Tensor]:
    """`J g'` of each of `inputs`' logits as a central difference at `W +- e g'` (two shifts of
    the weights, however many batches)."""
    _, params = _trainable(u.model)
    shift = _Shift(params, g)
    outputs = []
    with torch.no_grad():
        for scale in (e, -e):
            shift.apply(scale)
            try:
                outputs.append([call(x) for x in inputs])
            finally:
                shift.restore()
    return [(plus - minus) / (2 * e) for plus, minus in zip(*outputs, strict=True)]


def _forward_mode(
    u: Unroll, call: ModelCall, g: list[torch.Tensor | None], inputs: list[Any]
) -> list[torch.Tensor]:
    """`J g'` of each of `inputs`' logits by forward-mode Jacobian-vector products."""
    names, params = _trainable(u.model)
    primals, tangents = {}, {}
    for name, p, t in zip(names, params, g, strict=True):
        if t is not None:  # parameters without a direction keep their values and a zero tangent
            primals[f"model.{name}"] = p.detach()
            tangents[f"model.{name}"] = t.to_dense() if t.is_sparse else t
    directions = []
    for x in map(for_transforms, inputs):

        def logits_of(ps: dict[str, torch.Tensor], x: Any = x) -> torch.Tensor:
            return functional_call(call, ps, (x,))

        directions.append(torch.func.jvp(logits_of, (primals,), (tangents,))[1])
    return directions


@_in_evaluation
def window_hypergradients(
    u: Unroll, earlier: Sequence[TrainingStep] = (), method: str = "finite_diff", eps: float = 0.01
) -> tuple[list[torch.Tensor], float]:
    """`dL_val/dp` of each batch of `earlier` and of `u`'s own (last), all along the one `g'`.

    A horizon of the steps since the last controller step (against the short-horizon bias, Wu
    et al., ICLR 2018) for the price of `J g'` per batch: the earlier steps' weights are
    differentiated as if their gradients had been taken at today's weights, and the Jacobian of
    the later steps with respect to them is taken as the identity (first order in `xi`).
    """
    call = ModelCall(u.model, u.forward)
    g, val_loss = _val_grad_at_unrolled(u, call)
    g = _preconditioned(u, _trainable(u.model)[1], g)
    batches = [*earlier, TrainingStep(u.train, u.logits, u.weights)]
    norm = float(_norm(g)) if any(t is not None for t in g) else 0.0
    if norm == 0.0:
        return [torch.zeros_like(b.weights) for b in batches], val_loss
    inputs, train_call = [b.train[0] for b in batches], _train_call(u)
    with record_function("hypergrad: J g'"):
        if method == "finite_diff":  # at W +- e g', e = eps / ||g'||
            directions = _central_differences(u, train_call, g, inputs, eps / norm)
        elif method == "jvp":
            directions = _forward_mode(u, train_call, g, inputs)
        else:
            raise ConfigError(f"hypergrad: a window needs finite_diff or jvp, not {method!r}")
    return [_weight_grad(u, b, d) for b, d in zip(batches, directions, strict=True)], val_loss


def finite_diff_hypergradient(u: Unroll, eps: float = 0.01) -> tuple[torch.Tensor, float]:
    """Hypergradient with `J g'` as a central difference at `W +- e g'`, `e = eps / ||g'||`."""
    grads, val_loss = window_hypergradients(u, (), "finite_diff", eps)
    return grads[0], val_loss


def jvp_hypergradient(u: Unroll) -> tuple[torch.Tensor, float]:
    """Hypergradient with `J g'` as a forward-mode Jacobian-vector product (`torch.func.jvp`)."""
    grads, val_loss = window_hypergradients(u, (), "jvp")
    return grads[0], val_loss


@_in_evaluation
def unrolled_hypergradient(u: Unroll) -> tuple[torch.Tensor, float]:
    """Exact `dL_val(W - xi * grad_W L_train(W; p)) / dp` through one SGD step (torch.func).

    Recomputes the training gradient from `p` alone (anything else the caller added to `.grad`,
    such as an L2 penalty, is left out); with `u.precondition`, the step is `xi * P grad` with
    `P` held constant. Costs a second-order pass: for tests and small models.
    """
    call, train_call = ModelCall(u.model, u.forward), _train_call(u)
    names, params = _trainable(u.model)
    primals = {f"model.{n}": p.detach() for n, p in zip(names, params, strict=True)}
    x, y, val_x = for_transforms(u.train[0]), u.train[1], for_transforms(u.val[0])
    if u.reference is not None:  # c(p) from the training logits' detached gradients
        z0 = flat(u.logits).detach()
        dz = logit_gradients(list(u.candidates), z0, y)
        total = reference_total(u.reference, z0, y, dz)

    def val_loss_of(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = 1.0 if u.reference is None else step_scale(weights, dz, total)

        def train_loss(ps: dict[str, torch.Tensor]) -> torch.Tensor:
            z = functional_call(train_call, ps, (x,))
            return c * (loss_matrix(u.candidates, z, y) * weights).sum(dim=1).mean()

        grads = _preconditioned(u, params, list(torch.func.grad(train_loss)(primals).values()))
        stepped = {k: w - u.lr * d for (k, w), d in zip(primals.items(), grads, strict=True)}
        loss = task_loss(functional_call(call, stepped, (val_x,)), u.val[1], u.objective)
        return loss, loss.detach()

    grad, val_loss = torch.func.grad(val_loss_of, has_aux=True)(u.weights.detach())
    return grad, float(val_loss)


def hypergradient(
    u: Unroll, method: str = "finite_diff", eps: float = 0.01
) -> tuple[torch.Tensor, float]:
    """`(dL_val/dp [B, n], L_val(W'))` by one of the second-order methods."""
    if method == "finite_diff":
        return finite_diff_hypergradient(u, eps)
    if method == "jvp":
        return jvp_hypergradient(u)
    if method == "unrolled":
        return unrolled_hypergradient(u)
    raise ConfigError(f"hypergrad: unknown {method!r}; choose one of: {', '.join(HYPERGRADS)}")


__all__ = [
    "HYPERGRADS",
    "ModelCall",
    "TrainingStep",
    "Unroll",
    "cut",
    "evaluation",
    "finite_diff_hypergradient",
    "head",
    "hypergradient",
    "jvp_hypergradient",
    "unrolled_hypergradient",
    "window_hypergradients",
]
