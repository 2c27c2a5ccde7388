"""What a method name (`loss.name`) stands for: a single loss, an online strategy or a search.

Two-stage methods (`SEARCHES`) are resolved first: `darts` and `meta` as a run's method search
with the online strategy of the same name, then retrain. Bench tables and transfer cells learn
a method's display name, its transferable artifact and whether it is fixed from here, and this
module learns them from the registries.
"""

from __future__ import annotations

from recloss.config import LossConfig, RunConfig
from recloss.data.schema import Schema
from recloss.errors import ConfigError, RecLossError
from recloss.losses import LOSSES, candidate_losses, check_candidates
from recloss.names import did_you_mean
from recloss.registry import Registry
from recloss.runs.bohb import BohbSearch
from recloss.runs.race import RaceSearch
from recloss.runs.twostage import OnlineSearch, Search, mixture_config, split_retrain
from recloss.search import STRATEGIES, Artifact, OptionError, build_strategy, strategy_params

SEARCHES: Registry[Search] = Registry("two-stage method")
SEARCHES.add("darts", OnlineSearch("darts", STRATEGIES.get("darts").label))
SEARCHES.add("meta", OnlineSearch("meta", STRATEGIES.get("meta").label))
SEARCHES.add("bohb", BohbSearch())
SEARCHES.add("race", RaceSearch())


def is_single_loss(name: str) -> bool:
    return name in LOSSES and name not in STRATEGIES


def method_label(name: str) -> str:
    """The display name of a loss, strategy or two-stage method (the name itself if unknown)."""
    if name in SEARCHES:
        return SEARCHES.get(name).label
    if name in STRATEGIES:
        return STRATEGIES.get(name).label
    if name in LOSSES:
        return LOSSES.get(name).label
    return name


def method_artifact(name: str) -> Artifact | None:
    """The learned loss network a method's runs leave behind for transfer, if any."""
    if name in SEARCHES or name not in STRATEGIES:
        return None
    return STRATEGIES.get(name).artifact


def transferable_methods() -> list[str]:
    """The strategies whose runs leave a learned loss network another run can load frozen."""
    return [n for n in STRATEGIES if n not in SEARCHES and STRATEGIES.get(n).artifact is not None]


def is_fixed(name: str) -> bool:
    """Whether a method ignores the data (a single loss, fixed weights): it transfers as is."""
    return is_single_loss(name) or (
        name in STRATEGIES and name not in SEARCHES and STRATEGIES.get(name).fixed
    )


def check_label_noise(name: str, schema: Schema) -> None:
    """ConfigError unless `train.label_noise: channel` can train method `name` on this data set:
    binary labels, and a single loss or a strategy whose updates see the channel."""
    if schema.task != "binary":
        raise ConfigError(
            f"train.label_noise: channel is for binary tasks, not {schema.n_outputs} classes"
        )
    sees = name in STRATEGIES and name not in SEARCHES and STRATEGIES.get(name).sees_train_forward
    if not (is_single_loss(name) or sees):
        able = [n for n in STRATEGIES.names() if STRATEGIES.get(n).sees_train_forward]
        raise ConfigError(
            f"train.label_noise: channel trains a single loss or {', '.join(able)}, not {name}"
        )


def check_method_name(name: str) -> None:
    """ConfigError unless `name` is a single loss, an online strategy or a two-stage method."""
    if name in LOSSES or name in STRATEGIES or name in SEARCHES:
        return
    strategies = sorted({*STRATEGIES, *SEARCHES})
    guess = did_you_mean(name, [*LOSSES, *strategies])
    raise ConfigError(
        f"loss.name: unknown loss or strategy {name!r}{guess}; losses: {', '.join(LOSSES)}; "
        f"strategies: {', '.join(strategies)}",
        "loss.name",
    )


# Stand-ins for the data set before it is read: an option both refuse, no task takes.
_TASK_STAND_INS = (
    Schema("binary", 2, ("a", "b"), (4, 4)),
    Schema("multiclass", 3, ("a", "b"), (4, 4)),
)


def check_method(loss: LossConfig, schema: Schema | None = None) -> None:
    """ConfigError naming the key, before any training, for a method that cannot be built.

    Without `schema` (before the data is read): the names, its parameters' names and types,
    and values that no task could take (one only the data set rules out, such as a saved
    controller of another task, waits for the schema)."""
    check_method_name(loss.name)
    if schema is not None:
        return _build(loss, schema)
    candidate_losses(loss.candidates)  # a single loss ignores them, but a typo is still one
    _build(loss, None)
    refusals = []
    for stand_in in _TASK_STAND_INS:
        try:
            return _build(loss, stand_in)
        except ConfigError as err:
            if not (err.key or "").startswith("loss.params."):
                return  # refused for what the data set is, not for an option's value
            refusals.append(err)
        except RecLossError:  # a saved file that does not fit the stand-in: the schema will tell
            return
    raise refusals[0]


def _build(loss: LossConfig, schema: Schema | None) -> None:
    """Build the method for `schema` (without one: check its parameters' names and types)."""
    if schema is not None and not is_single_loss(loss.name):
        check_candidates(loss.candidates, schema.task)
    try:
        if loss.name not in SEARCHES:
            if schema is None:
                strategy_params(loss)
            else:
                build_strategy(loss, schema)
            return
        retrain, search_loss = split_retrain(loss)
        SEARCHES.get(loss.name).check(search_loss, schema)
        if retrain == "autoloss" and schema is not None:
            uniform = dict.fromkeys(loss.candidates, 1.0)
            build_strategy(mixture_config(RunConfig(loss=loss), uniform, retrain).loss, schema)
    except OptionError as err:
        raise err.config_error() from None


__all__ = [
    "SEARCHES",
    "check_label_noise",
    "check_method",
    "check_method_name",
    "is_fixed",
    "method_artifact",
    "method_label",
    "transferable_methods",
]
