"""The label-flip channel a model trains through (`train.label_noise: channel`, binary tasks).

Flips of `FlipKind` at rate `r` make the noisy label's probability `alpha r + (1 - beta r) q` of
the clean one's `q`: `r + (1 - 2r) q` for flips of both classes, `(1 - r) q` for positives lost (the
labelling frequency of Elkan and Noto's positive-unlabelled learning, KDD 2008), `r + (1 - r) q`
for negatives turned positive. Training on the noisy labels through it is forward correction
(Patrini et al., CVPR 2017); validation, test and predictions use `q`. The rates come from
`recloss.training.label_noise.estimate_flip_rates`. Bi-level strategies (AutoLoss, DARTS,
meta-learning) take the channel into their hypergradients (`StepContext.train_forward`): their
training batches' logits are the channel's, their validation loss the model's; AutoLoss's
controller sees the channel's probability of the label as drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class FlipKind:
    """Which labels flip: at rate `r`, `P(noisy = 1) = alpha r + (1 - beta r) P(clean = 1)`, so a
    value's clean positive rate `m` moves by `r (alpha - beta m)`, its contrast."""

    name: str
    alpha: float
    beta: float
    what: str  # for the log

    @property
    def max_rate(self) -> float:
        """The highest rate trained through: at `1 / beta` the label says nothing of the class."""
        return 0.9 / self.beta

    def contrast(self, m: Any) -> Any:
        """How far flips at rate 1 move a clean positive rate `m`, and which way."""
        return self.alpha - self.beta * m


BOTH = FlipKind("both", 1.0, 2.0, "flip rate")
POSITIVES = FlipKind("positives", 0.0, 1.0, "rate of positives turned negative")
NEGATIVES = FlipKind("negatives", 1.0, 1.0, "rate of negatives turned positive")
MAX_FLIP_RATE = BOTH.max_rate


@dataclass(frozen=True)
class FlipRates:
    """Per-row flip rates: `overall` plus each categorical value's deviation, clipped."""

    overall: float
    deviations: torch.Tensor  # [sum of the fields' sizes], every field's values one after another
    offsets: torch.Tensor  # [F] where each field's values start in `deviations`
    spreads: tuple[float, ...]  # per field, the standard deviation of its true deviations
    kind: FlipKind | None = BOTH  # None: off, a field's shift contradicts the flips found
    moved_field: int | None = None  # the field whose values' rates turned the correction off

    @classmethod
    def contradicted(cls, fields: int, moved_field: int) -> FlipRates:
        """No flips: field `moved_field`'s values' rates moved as the flips the overall rate
        calls for cannot move them."""
        nothing = torch.zeros(0)
        return cls(0.0, nothing, nothing.long(), (0.0,) * fields, None, moved_field)

    def to(self, device: torch.device | str) -> FlipRates:
        """The same rates with their tables on `device` (the training batches')."""
        return replace(self, deviations=self.deviations.to(device), offsets=self.offsets.to(device))

    def __call__(self, x_cat: torch.Tensor) -> torch.Tensor:
        """The flip rate of each row of a batch's categorical indices `[B, F]`, as `[B]`."""
        if self.kind is None:
            return torch.zeros(len(x_cat), device=x_cat.device)
        per_value = self.deviations[x_cat.long() + self.offsets].sum(dim=1)
        return (self.overall + per_value).clamp(0.0, self.kind.max_rate)

    def noisy_logit(self, z: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """The logit of the noisy label of each row given the model's logit `z` of its clean one."""
        if self.kind is None:
            return z
        return noisy_logit(z, self(x_cat), self.kind)

    def summary(self, fields: tuple[str, ...]) -> dict[str, Any]:
        """JSON-ready: the overall rate, which labels flip (None: no correction), the fields'
        spreads."""
        spreads = {f: s for f, s in zip(fields, self.spreads, strict=True) if s > 0}
        moved = None if self.moved_field is None else fields[self.moved_field]
        flips = None if self.kind is None else self.kind.name
        return {"overall": self.overall, "flips": flips, "spread_by_field": spreads,
                "moved_field": moved}  # fmt: skip

    def describe(self, fields: tuple[str, ...]) -> str:
        """One line: the overall rate and the fields whose values' rates differ."""
        if self.kind is None:
            return (
                f"label noise: the positive rates of {fields[self.moved_field]}'s values moved "
                "from the validation labels' as the flips their overall rate calls for cannot "
                "move them; no correction"
            )
        varied = [f"{f} {s:.2f}" for f, s in zip(fields, self.spreads, strict=True) if s > 0]
        by_field = f"; spread by value: {', '.join(varied)}" if varied else ""
        return f"label noise: estimated {self.kind.what} {self.overall:.3f}{by_field}"


def noisy_logit(z: torch.Tensor, rate: torch.Tensor, kind: FlipKind = BOTH) -> torch.Tensor:
    """The logit of `alpha rate + (1 - beta rate) * sigmoid(z)`: flips of `kind` at `rate` (of
    both classes: `rate + (1 - 2 rate) * sigmoid(z)`)."""
    log_a, log_rest = torch.log(kind.alpha * rate), torch.log((kind.beta - kind.alpha) * rate)
    return _mixture_logit(z, log_a, torch.log1p(-kind.beta * rate), log_rest)


def channel_logit(z: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The logit of `a + b * sigmoid(z)` (`z` itself at `a = 0`, `b = 1`)."""
    return _mixture_logit(z, torch.log(a), torch.log(b), torch.log1p(-(a + b)))


def _mixture_logit(
    z: torch.Tensor, log_a: torch.Tensor, log_b: torch.Tensor, log_rest: torch.Tensor
) -> torch.Tensor:
    """The logit of `a + b * sigmoid(z)` from the logs of `a`, `b` and `1 - a - b`, in log
    space: finite where `a` or `1 - a - b` is 0."""
    positive = torch.logaddexp(log_a, log_b + F.logsigmoid(z))
    negative = torch.logaddexp(log_rest, log_b + F.logsigmoid(-z))
    return positive - negative


__all__ = [
    "BOTH",
    "MAX_FLIP_RATE",
    "NEGATIVES",
    "POSITIVES",
    "FlipKind",
    "FlipRates",
    "channel_logit",
    "noisy_logit",
]
