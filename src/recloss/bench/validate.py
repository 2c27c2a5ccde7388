"""Validating a grid before any training: names, every cell's sections, transfers."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from recloss.bench.grid import NAME, DatasetTransfer, Grid, loss_keys, model_keys
from recloss.config import RunConfig, format_validation_error, merge
from recloss.errors import ConfigError, RecLossError
from recloss.keys import problem_text
from recloss.runs import check_method, is_fixed, transferable_methods


def grid_from_dict(raw: dict[str, Any], source: str = "grid") -> Grid:
    """Validate a grid: its own keys, then every cell's configuration, naming the key at fault."""
    try:
        grid = Grid.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, root=Grid)) from None
    _check_names(grid, source)
    _check_sections(grid, source)
    _check_transfer(grid, source)
    return grid


def _check_names(grid: Grid, source: str) -> None:
    """Names usable as folders, each seed once, `compare` and `efficiency` among the methods."""
    for where, names in {"name": [grid.name], **_name_groups(grid)}.items():
        for name in names:
            if not NAME.match(name) or "-from-" in name:
                raise ConfigError(
                    f"{source}: {where}: {name!r} is not a usable name "
                    "(letters, digits, _ . + -; no '-from-')"
                )
    if len(set(grid.seeds)) != len(grid.seeds):
        raise ConfigError(f"{source}: seeds: each seed once")
    for key in ("compare", "efficiency"):
        for name in _as_list(getattr(grid, key)):
            if name not in grid.methods:
                raise ConfigError(f"{source}: {key}: {name!r} is not one of the methods")


def _name_groups(grid: Grid) -> dict[str, Iterable[str]]:
    groups = {"datasets": grid.datasets, "models": grid.models, "methods": grid.methods}
    if grid.transfer and grid.transfer.models:
        groups["transfer.models.targets"] = grid.transfer.models.targets
    if grid.transfer and grid.transfer.datasets:
        groups["transfer.datasets.targets"] = grid.transfer.datasets.targets
    return groups


def _as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else value


def _check_sections(grid: Grid, source: str) -> None:
    """Validate every section merged over `base`, name each data set, and build each model and
    method once."""
    from recloss.data import DATASETS
    from recloss.data.schema import Schema
    from recloss.models import build_model

    schema = Schema("binary", 2, ("a", "b"), (4, 4))  # a toy: bad names and parameters fail now
    _validate_run(grid.base, None, "base", source)
    datasets, models = _sections(grid)
    for where, spec in datasets.items():
        data = _validate_run(grid.base, ("data", spec), where, source).data
        _built(lambda name=data.dataset: DATASETS.get(name), f"{where}.dataset", source)
    for where, (name, spec) in models.items():
        m = _validate_run(grid.base, ("model", model_keys(name, spec)), where, source).model
        _built(lambda m=m: build_model(m.name, schema, m.embed_dim, **m.params), where, source)
    for key in grid.methods:
        where = f"methods.{key}"
        loss = _validate_run(grid.base, ("loss", loss_keys(grid, key)), where, source).loss
        _built(lambda loss=loss: check_method(loss, schema), where, source)


def _sections(grid: Grid) -> tuple[dict[str, Any], dict[str, tuple[str, Any]]]:
    """Where -> keys of every data set, and where -> (name, keys) of every model."""
    t = grid.transfer
    datasets = {f"datasets.{k}": v for k, v in grid.datasets.items()}
    models = {f"models.{k}": (k, v) for k, v in grid.models.items()}
    if t is not None and t.datasets is not None:
        datasets |= {f"transfer.datasets.targets.{k}": v for k, v in t.datasets.targets.items()}
    if t is not None and t.models is not None:
        models |= {f"transfer.models.targets.{k}": (k, v) for k, v in t.models.targets.items()}
    return datasets, models


def _built(build: Callable[[], Any], where: str, source: str) -> None:
    try:
        build()
    except RecLossError as err:
        raise ConfigError(f"{source}: {where}: {err}") from None


def _validate_run(
    base: dict[str, Any], section: tuple[str, dict[str, Any]] | None, where: str, source: str
) -> RunConfig:
    """Validate base + one section; an error in the section is reported under `where`."""
    raw = merge(base, {section[0]: section[1]}) if section else copy.deepcopy(base)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        parts = []
        for e in err.errors():
            loc = [str(p) for p in e["loc"]]
            inside = section is not None and loc[:1] == [section[0]]
            loc = [where, *loc[1:]] if inside else ["base", *loc]
            parts.append(f"{'.'.join(loc)}: {problem_text(e, RunConfig)}")
        raise ConfigError(f"{source}: " + "; ".join(parts)) from None


def _check_transfer(grid: Grid, source: str) -> None:
    t = grid.transfer
    if t is None:
        return
    _check_transfer_methods(grid, source)
    if t.models is not None:
        _known(t.models.source, grid.models, "transfer.models.source", source)
        _fresh(t.models.targets, grid.models, "transfer.models.targets", source)
        for name in t.models.datasets or []:
            _known(name, grid.datasets, "transfer.models.datasets", source)
    if t.datasets is not None:
        _check_dataset_transfer(grid, t.datasets, source)


def _transferable(grid: Grid, key: str) -> bool:
    return grid.artifact(key) is not None or is_fixed(grid.method(key))


def _check_transfer_methods(grid: Grid, source: str) -> None:
    for name in grid.transfer.methods:
        if name not in grid.methods:
            raise ConfigError(f"{source}: transfer.methods: {name!r} is not one of the methods")
        if not _transferable(grid, name):
            raise ConfigError(
                f"{source}: transfer.methods: {name} ({grid.method(name)}) has no loss network "
                f"that can be transferred; transferable: {', '.join(transferable_methods())} "
                "or a fixed loss"
            )


def _check_dataset_transfer(grid: Grid, d: DatasetTransfer, source: str) -> None:
    _known(d.source, grid.datasets, "transfer.datasets.source", source)
    _fresh(d.targets, grid.datasets, "transfer.datasets.targets", source)
    for name in d.models or []:
        _known(name, grid.models, "transfer.datasets.models", source)
    want = _task(grid.base, grid.datasets[d.source])
    for name, spec in d.targets.items():
        if _task(grid.base, spec) != want:
            raise ConfigError(
                f"{source}: transfer.datasets.targets.{name}: task "
                f"{_task(grid.base, spec)} differs from the source's ({want})"
            )


def _known(name: str, names: Iterable[str], where: str, source: str) -> None:
    if name not in names:
        raise ConfigError(f"{source}: {where}: {name!r} is not one of: {', '.join(names)}")


def _fresh(targets: Iterable[str], names: Iterable[str], where: str, source: str) -> None:
    for name in targets:
        if name in names:
            raise ConfigError(
                f"{source}: {where}.{name}: already a name of the main grid; "
                "give the transfer target its own name"
            )


def _task(base: dict[str, Any], spec: dict[str, Any]) -> str:
    from recloss.data import DATASETS

    data = RunConfig.model_validate(merge(base, {"data": spec})).data
    return data.task or DATASETS.get(data.dataset).task
