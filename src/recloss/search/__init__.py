"""Loss strategies: how a batch's candidate losses become the training loss."""

from __future__ import annotations

import inspect
from typing import Any

from recloss.config import LossConfig
from recloss.data.schema import Schema
from recloss.errors import ConfigError
from recloss.losses import LOSSES, check_candidates
from recloss.registry import Registry
from recloss.search.base import LossStrategy, StepContext
from recloss.search.fixed import FixedWeights

STRATEGIES: Registry[type[LossStrategy]] = Registry("loss strategy")
STRATEGIES.add("weighted", FixedWeights)


def _register_builtin_strategies() -> None:
    from recloss.search.autoloss import AutoLossStrategy
    from recloss.search.bohb import BohbStrategy
    from recloss.search.darts import DartsStrategy
    from recloss.search.dwa import DwaStrategy
    from recloss.search.gradnorm import GradNormStrategy
    from recloss.search.meta import MetaStrategy
    from recloss.search.slf import SlfStrategy
    from recloss.search.uncertainty import UncertaintyWeighting

    STRATEGIES.add("autoloss", AutoLossStrategy)
    for name, cls in [
        ("darts", DartsStrategy),
        ("bohb", BohbStrategy),
        ("meta", MetaStrategy),
        ("slf", SlfStrategy),
        ("uncertainty", UncertaintyWeighting),
        ("gradnorm", GradNormStrategy),
        ("dwa", DwaStrategy),
    ]:
        STRATEGIES.add(name, cls)


_register_builtin_strategies()


def build_strategy(cfg: LossConfig, schema: Schema) -> LossStrategy:
    """A candidate-loss name gives that single loss; a strategy name gives that strategy."""
    if cfg.name in LOSSES and cfg.name not in STRATEGIES:
        check_candidates([cfg.name], schema.task)
        if cfg.params:
            raise ConfigError(f"loss.params: a single loss ({cfg.name}) takes no parameters")
        return FixedWeights(schema.task, schema.num_classes, [cfg.name], [1.0])
    if cfg.name not in STRATEGIES:
        raise ConfigError(
            f"loss.name: unknown loss or strategy {cfg.name!r}; "
            f"losses: {', '.join(LOSSES.names())}; "
            f"strategies: {', '.join(STRATEGIES.names())}"
        )
    check_candidates(cfg.candidates, schema.task)
    cls = STRATEGIES.get(cfg.name)
    _check_params(cls, cfg.name, cfg.params)
    return cls(schema.task, schema.num_classes, list(cfg.candidates), **cfg.params)


def _check_params(cls: type, name: str, params: dict[str, Any]) -> None:
    accepted = [
        p
        for p in inspect.signature(cls.__init__).parameters
        if p not in ("self", "task", "num_classes", "candidates")
    ]
    for key in params:
        if key not in accepted:
            raise ConfigError(
                f"loss.params.{key}: unknown parameter of {name}; valid: {', '.join(accepted)}"
            )


__all__ = ["STRATEGIES", "LossStrategy", "StepContext", "build_strategy"]
