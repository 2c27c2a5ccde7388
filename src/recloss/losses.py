"""Candidate losses: per-example values `[B]` from logits, and the registry that names them.

Binary logits are `[B]` (a single logit, `q = sigmoid(z)`), multi-class logits are `[B, C]`
(`P = softmax(z)`); labels are int64 class indices. Every loss is computed in log space from the
logits, so values and gradients stay finite for any float32 logit (tested up to |z| = 1e4).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from recloss.data.schema import Task
from recloss.errors import ConfigError, RecLossError
from recloss.registry import Registry

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

FOCAL_GAMMA = 2.0
KL_SMOOTHING = 0.1
GCE_Q = 0.7
ALL_TASKS: tuple[Task, ...] = ("binary", "multiclass")


@dataclass(frozen=True)
class CandidateLoss:
    """A per-example loss `(logits, y) -> [B]`, what it is, and the tasks it supports."""

    fn: LossFn
    description: str
    tasks: tuple[Task, ...] = ALL_TASKS
    label: str = ""  # the display name in tables

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fn(logits, y)


LOSSES: Registry[CandidateLoss] = Registry("loss")


def register_loss(
    name: str,
    description: str | None = None,
    tasks: Sequence[Task] = ALL_TASKS,
    label: str | None = None,
) -> Callable[[LossFn], LossFn]:
    """Decorator: register `fn(logits, y) -> [B]` as candidate `name` (text: its docstring)."""

    def decorator(fn: LossFn) -> LossFn:
        doc = description or (fn.__doc__ or name).strip().splitlines()[0]
        LOSSES.add(name, CandidateLoss(fn, doc, tuple(tasks), label or name))
        return fn

    return decorator


def task_of(logits: torch.Tensor) -> Task:
    """`binary` for logits `[B]`, `multiclass` for `[B, C]`."""
    if logits.dim() == 1:
        return "binary"
    if logits.dim() == 2 and logits.shape[1] >= 2:
        return "multiclass"
    shape = tuple(logits.shape)
    raise ValueError(f"logits must be [B] (binary) or [B, C >= 2] (multi-class), got {shape}")


def _signed(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`s * z` with `s = 2y - 1`: the margin of the true class of a binary example."""
    return torch.where(y.bool(), logits, -logits)


def _log_true_and_rest(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(log p_t, log(1 - p_t))` per example: the true class's probability and its complement."""
    if logits.dim() == 1:
        margin = _signed(logits, y)
        return F.logsigmoid(margin), F.logsigmoid(-margin)
    lse = torch.logsumexp(logits, dim=1)
    true = logits.gather(1, y[:, None]).squeeze(1)
    # log of the summed probability of the other classes, exact even when P_y rounds to 1
    rest = logits.scatter(1, y[:, None], float("-inf"))
    return true - lse, torch.logsumexp(rest, dim=1) - lse


@register_loss("ce", label="CE")
def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (logloss): -log p_t."""
    if logits.dim() == 1:
        return F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none")
    return F.cross_entropy(logits, y, reduction="none")


def focal_loss(logits: torch.Tensor, y: torch.Tensor, gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    """Focal loss: (1 - p_t)^gamma * CE, down-weighting examples that are already well fitted."""
    log_pt, log_rest = _log_true_and_rest(logits, y)
    return torch.exp(gamma * log_rest) * -log_pt


def kl_loss(logits: torch.Tensor, y: torch.Tensor, eps: float = KL_SMOOTHING) -> torch.Tensor:
    """KL(t || P) to the label-smoothed target `t = (1 - eps) * onehot(y) + eps / C`.

    With a hard one-hot target KL equals CE exactly (the target's entropy is 0), so the
    smoothing (eps = 0.1 by default) is what makes KL a distinct candidate.
    """
    if logits.dim() == 1:
        logits = torch.stack([torch.zeros_like(logits), logits], dim=1)
    n_classes = logits.shape[1]
    log_p = F.log_softmax(logits, dim=1)
    off, on = eps / n_classes, 1.0 - eps + eps / n_classes
    target = torch.full_like(log_p, off).scatter(1, y[:, None], on)
    neg_entropy = on * math.log(on) + (n_classes - 1) * off * math.log(off) if eps > 0 else 0.0
    return neg_entropy - (target * log_p).sum(dim=1)


@register_loss("hinge", label="Hinge")
def hinge_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Hinge loss on the logit margin: max(0, 1 - s*z); Crammer-Singer for multi-class."""
    if logits.dim() == 1:
        return F.relu(1.0 - _signed(logits, y))
    true = logits.gather(1, y[:, None]).squeeze(1)
    best_other = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return F.relu(1.0 + best_other - true)


def generalized_cross_entropy(
    logits: torch.Tensor, y: torch.Tensor, q: float = GCE_Q
) -> torch.Tensor:
    """Generalised cross-entropy (Zhang & Sabuncu, NeurIPS 2018): (1 - p_t^q) / q.

    Between CE (q -> 0) and MAE on the probability (q = 1): its gradient is CE's times p_t^q, so
    an example the model confidently contradicts pushes less, which makes it robust to label noise.
    Not one of the paper's candidates; add it with `loss.candidates`.
    """
    log_pt, _ = _log_true_and_rest(logits, y)
    return -torch.expm1(q * log_pt) / q


FOCAL_TEXT = f"Focal loss (gamma={FOCAL_GAMMA:g}): (1 - p_t)^gamma * CE."
KL_TEXT = f"KL divergence to the label-smoothed target (eps={KL_SMOOTHING:g})."
register_loss("focal", FOCAL_TEXT, label="Focal")(focal_loss)
register_loss("kl", KL_TEXT, label="KL")(kl_loss)
GCE_TEXT = f"Generalised cross-entropy (q={GCE_Q:g}): (1 - p_t^q) / q, robust to label noise."
register_loss("gce", GCE_TEXT, label="GCE")(generalized_cross_entropy)


def candidate_losses(names: Sequence[str]) -> list[CandidateLoss]:
    """The registered candidates `names`; ConfigError naming `loss.candidates` for an unknown
    one (whatever the task: checked before any data is read)."""
    key = "loss.candidates"
    if not names:
        raise ConfigError(f"{key}: give at least one candidate loss", key)
    for name in names:
        if name not in LOSSES:
            choices = ", ".join(LOSSES.names())
            raise ConfigError(f"{key}: unknown loss {name!r}; choose one of: {choices}", key)
    return [LOSSES.get(name) for name in names]


def check_candidates(names: Sequence[str], task: Task) -> list[CandidateLoss]:
    """The registered candidates `names`; ConfigError when one is unknown or unfit for `task`."""
    found = candidate_losses(names)
    for name, loss in zip(names, found, strict=True):
        if task not in loss.tasks:
            raise ConfigError(
                f"loss.candidates: {name!r} supports {', '.join(loss.tasks)} tasks, not {task}",
                "loss.candidates",
            )
    return found


def loss_matrix(names: Sequence[str], logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example values of the candidates `names`, stacked as `[B, n]` in that order.

    Binary logits may also come as `[B, 1]`.
    """
    if logits.dim() == 2 and logits.shape[1] == 1:
        logits = logits.squeeze(1)
    losses = check_candidates(names, task_of(logits))
    values = [loss(logits, y) for loss in losses]
    for name, value in zip(names, values, strict=True):
        if value.shape != logits.shape[:1]:  # a registered loss that reduced over the batch
            raise RecLossError(
                f"loss {name!r} gave shape {list(value.shape)}; a candidate loss gives one value "
                f"per example, [B] = [{len(logits)}]"
            )
    return torch.stack(values, dim=1)


__all__ = [
    "LOSSES",
    "CandidateLoss",
    "check_candidates",
    "cross_entropy",
    "focal_loss",
    "hinge_loss",
    "kl_loss",
    "loss_matrix",
    "register_loss",
    "task_of",
]
