"""Post-hoc calibration of logits: Platt scaling and temperature scaling.

Platt scaling (Platt, 1999): `q = sigmoid(scale * z + bias)` fitted to binary labels. Temperature
scaling (Guo et al., ICML 2017, "On Calibration of Modern Neural Networks"): `softmax(z / T)`, one
scale for every class (binary: `sigmoid(z / T)`). Both are monotone maps of the logits when the
scale is positive: they change the logloss, never a binary model's ranking (AUC). AutoLoss's
`calibrated` validation objective judges a step by the logloss it allows after the Platt map;
`train.calibration` fits either map on the validation split after training (`Calibration`).

The fit uses Platt's smoothed targets, `(N+ + 1) / (N+ + 2)` for positives and `1 / (N- + 2)` for
negatives, so that it stays finite on separable data or a handful of positives, and Newton's
method with step halving: plain tensor operations, usable inside torch.func transforms.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict

NEWTON_STEPS = 50


def platt_targets(y: torch.Tensor) -> torch.Tensor:
    """Platt's smoothed targets of binary labels `y`."""
    y = y.double()
    positives = y.sum()
    negatives = len(y) - positives
    return torch.where(y > 0.5, (positives + 1) / (positives + 2), 1 / (negatives + 2))


def _loss(z: torch.Tensor, t: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(params[0] * z + params[1], t)


def fit_platt(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """`(scale, bias)` minimising the logloss of `sigmoid(scale * logits + bias)` on `y`."""
    z, y = logits.detach().double().flatten(), y.detach().double().flatten()
    t = platt_targets(y)
    features = torch.stack([z, torch.ones_like(z)], dim=1)
    params = torch.tensor([1.0, 0.0], dtype=torch.float64)
    loss = _loss(z, t, params)
    for _ in range(NEWTON_STEPS):
        q = torch.sigmoid(features @ params)
        gradient = features.T @ (q - t) / len(z)
        hessian = (features.T * (q * (1 - q))) @ features / len(z)
        step = torch.linalg.solve(hessian + 1e-9 * torch.eye(2, dtype=z.dtype), gradient)
        size = 1.0
        while size > 1e-4 and not bool(_loss(z, t, params - size * step) <= loss):
            size /= 2
        if size <= 1e-4:
            break
        params = params - size * step
        loss, previous = _loss(z, t, params), loss
        if bool(previous - loss < 1e-12):
            break
    scale, bias = params.tolist()
    return scale, bias


def fit_temperature(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The scale `1 / T` minimising the logloss of `softmax(logits / T)` (binary: `sigmoid`)
    on `y`: Newton's method on the one scale, with step halving."""
    z, y = logits.detach().double(), y.detach().long().flatten()

    def loss(scale: torch.Tensor) -> torch.Tensor:
        if z.dim() == 1:
            return F.binary_cross_entropy_with_logits(scale * z, y.double())
        return F.cross_entropy(scale * z, y)

    scale = torch.tensor(1.0, dtype=torch.float64)
    current = loss(scale)
    for _ in range(NEWTON_STEPS):
        gradient, hessian = _derivatives(loss, scale)
        step = gradient / max(float(hessian), 1e-12)
        size = 1.0
        while size > 1e-4 and not bool(loss(scale - size * step) <= current):
            size /= 2
        if size <= 1e-4:
            break
        scale = scale - size * step
        current, previous = loss(scale), current
        if bool(previous - current < 1e-12):
            break
    return float(scale)


def _derivatives(loss, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first and second derivative of a scalar function of one scalar."""
    gradient = torch.func.grad(loss)
    return gradient(scale), torch.func.grad(gradient)(scale)


class Calibration(BaseModel):
    """A fitted map of a model's logits, `scale * z + bias`, applied before the sigmoid or
    softmax (temperature scaling: `scale = 1 / T`, `bias = 0`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["platt", "temperature"]
    scale: float
    bias: float = 0.0

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        return logits * self.scale + self.bias


def fit_calibration(method: str, logits: torch.Tensor, y: torch.Tensor) -> Calibration | None:
    """The `method` map (`none`: None) fitted to `logits` `[N]` or `[N, C]` and labels `y`;
    `auto` is Platt scaling for binary logits and temperature scaling for classes."""
    if method == "none":
        return None
    if method == "auto":
        method = "platt" if logits.dim() == 1 else "temperature"
    if method == "platt":
        if logits.dim() != 1:
            raise ValueError("Platt scaling is for binary logits [N]; use temperature")
        scale, bias = fit_platt(logits, y)
        return Calibration(method="platt", scale=scale, bias=bias)
    return Calibration(method="temperature", scale=fit_temperature(logits, y))


def calibrated_logloss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The fit's own objective at its optimum, `min_(a, b)` of the logloss of
    `sigmoid(a * logits + b)` against Platt's targets, differentiable in `logits`.

    The map is held constant in the gradient: at the optimum that is the gradient of the
    minimum itself (the envelope theorem).
    """
    scale, bias = fit_platt(logits, y)
    targets = platt_targets(y).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits * scale + bias, targets)


__all__ = [
    "Calibration",
    "calibrated_logloss",
    "fit_calibration",
    "fit_platt",
    "fit_temperature",
    "platt_targets",
]
