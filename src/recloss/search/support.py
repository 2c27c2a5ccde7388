"""Small helpers the strategies share: option checks and per-candidate figures."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from recloss.errors import ConfigError


def check_options(checks: Iterable[tuple[str, Any, bool, str]]) -> None:
    """ConfigError naming `loss.params.<name>` for the first `(name, value, ok, what)` not ok."""
    for name, value, ok, what in checks:
        if not ok:
            raise ConfigError(f"loss.params.{name}: must be {what}, got {value!r}")


def positive_int(value: Any) -> bool:
    """Whether `value` is an int (not a bool) of at least 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@torch.no_grad()
def by_candidate(candidates: Sequence[str], values: torch.Tensor) -> dict[str, float]:
    """`{candidate: value}` of a per-candidate vector, JSON-ready."""
    return {c: float(v) for c, v in zip(candidates, values.cpu(), strict=True)}


def weight_summary(candidates: Sequence[str], values: torch.Tensor) -> dict[str, float]:
    """`{"weight_<candidate>": value}`: the end-of-run form of per-candidate weights."""
    return {f"weight_{c}": v for c, v in by_candidate(candidates, values).items()}
