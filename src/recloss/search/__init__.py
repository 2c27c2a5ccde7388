"""Loss strategies: how a batch's candidate losses become the training loss, online."""

from __future__ import annotations

from typing import Any

from recloss.config import LossConfig
from recloss.data.schema import Schema
from recloss.errors import ConfigError
from recloss.losses import LOSSES, check_candidates
from recloss.names import did_you_mean
from recloss.params import check_params
from recloss.registry import Registry
from recloss.search.autoloss import AutoLoss
from recloss.search.base import Artifact, LossStrategy, OptionError, StepContext
from recloss.search.bilevel import DartsWeights, MetaWeights
from recloss.search.dwa import DwaStrategy
from recloss.search.fixed import FixedWeights
from recloss.search.gradnorm import GradNormStrategy
from recloss.search.slf import SlfStrategy
from recloss.search.uncertainty import UncertaintyWeighting

STRATEGIES: Registry[type[LossStrategy]] = Registry("loss strategy")
for _cls in (
    FixedWeights,
    AutoLoss,
    DartsWeights,
    MetaWeights,
    SlfStrategy,
    UncertaintyWeighting,
    GradNormStrategy,
    DwaStrategy,
):
    STRATEGIES.add(_cls.name, _cls)

_BUILT_IN = ("task", "num_classes", "candidates")  # given by `build_strategy`, not `loss.params`


def strategy_params(cfg: LossConfig) -> dict[str, Any]:
    """`loss.params` checked against the strategy's constructor (names and types; the data set
    is not needed); a single loss takes none. ConfigError naming the key."""
    if cfg.name in LOSSES and cfg.name not in STRATEGIES:
        if cfg.params:
            key = f"loss.params.{next(iter(cfg.params))}"
            raise ConfigError(f"{key}: a single loss ({cfg.name}) takes no parameters", key)
        return {}
    if cfg.name not in STRATEGIES:
        raise ConfigError(
            f"loss.name: unknown loss or strategy {cfg.name!r}"
            f"{did_you_mean(cfg.name, [*LOSSES, *STRATEGIES])}; "
            f"losses: {', '.join(LOSSES.names())}; "
            f"strategies: {', '.join(STRATEGIES.names())}"
        )
    return check_params(STRATEGIES.get(cfg.name), cfg.name, cfg.params, "loss.params", _BUILT_IN)


def build_strategy(cfg: LossConfig, schema: Schema) -> LossStrategy:
    """A candidate-loss name gives that single loss; a strategy name gives that strategy."""
    params = strategy_params(cfg)
    if cfg.name in LOSSES and cfg.name not in STRATEGIES:
        check_candidates([cfg.name], schema.task)
        return FixedWeights(schema.task, schema.num_classes, [cfg.name], [1.0])
    check_candidates(cfg.candidates, schema.task)
    try:
        return STRATEGIES.get(cfg.name)(
            task=schema.task,
            num_classes=schema.num_classes,
            candidates=list(cfg.candidates),
            **params,
        )
    except OptionError as err:
        raise err.config_error() from None


__all__ = [
    "STRATEGIES",
    "Artifact",
    "AutoLoss",
    "LossStrategy",
    "OptionError",
    "StepContext",
    "build_strategy",
    "strategy_params",
]
