"""The grid file: its schema, reading it, and validating every section before any training."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from recloss.config import RunConfig, format_validation_error, read_yaml_mapping, set_dotted
from recloss.errors import ConfigError, RecLossError
from recloss.runs import check_method, is_fixed, method_artifact, transferable_methods

GRID_FILE = "grid.yaml"  # in the bench folder: the grid it was run with
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # safe as a folder name


# -- the schema ------------------------------------------------------------------------------------
class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MethodSpec(_Spec):
    """One column of the results table: a candidate loss or a loss strategy."""

    name: str | None = None  # default: the method's key
    candidates: list[str] | None = None  # default: base.loss.candidates
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None  # column heading; default: the paper's name of the method


Named = dict[str, dict[str, Any]]  # name -> config keys (DataConfig or ModelConfig)


def _named(value: Any) -> Any:
    """A list of names means each with default settings."""
    if isinstance(value, list):
        return {str(name): {} for name in value}
    if isinstance(value, dict):
        return {k: ({} if v is None else v) for k, v in value.items()}
    return value


class ModelTransfer(_Spec):
    """DeepFM -> NFM, AutoInt: targets trained with the source model's loss network."""

    source: str  # a key of `models`
    targets: Named  # models not in `models`, in the same forms
    datasets: list[str] | None = None  # keys of `datasets`; default: all

    _targets = field_validator("targets", mode="before")(lambda cls, v: _named(v))


class DatasetTransfer(_Spec):
    """Criteo -> Avazu: target data sets of the same task trained with the source's loss network."""

    source: str  # a key of `datasets`
    targets: Named  # data sets not in `datasets`, in the same forms
    models: list[str] | None = None  # keys of `models`; default: all

    _targets = field_validator("targets", mode="before")(lambda cls, v: _named(v))


class TransferSpec(_Spec):
    methods: list[str]  # keys of `methods`: fixed losses, or strategies with a transferable network
    models: ModelTransfer | None = None
    datasets: DatasetTransfer | None = None


class Grid(_Spec):
    """A benchmark: every data set x model x method x seed, plus optional transfer cells."""

    name: str
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)
    base: dict[str, Any] = Field(default_factory=dict)  # RunConfig keys shared by every cell
    datasets: Named = Field(min_length=1)  # name -> DataConfig keys
    models: Named = Field(min_length=1)  # name -> ModelConfig keys (name defaults to the key)
    methods: dict[str, MethodSpec] = Field(min_length=1)
    compare: str | None = None  # the method tested against the best baseline; default: autoloss
    efficiency: list[str] | None = None  # methods of the AUC-over-time plot
    transfer: TransferSpec | None = None

    _names = field_validator("datasets", "models", "methods", mode="before")(
        lambda cls, v: _named(v)
    )

    def method(self, key: str) -> str:
        """The loss or strategy name a method key stands for."""
        return (self.methods[key].name or key).lower()

    def artifact(self, key: str):  # -> recloss.search.base.Artifact | None
        """The learned loss network a method's cells hand on to transfer cells, if any."""
        return method_artifact(self.method(key))

    def plotted(self) -> list[str]:
        """Methods of the AUC-over-time plot (`efficiency`, else CE, SLF and AutoLoss)."""
        if self.efficiency is not None:
            return self.efficiency
        return [k for k in self.methods if self.method(k) in ("ce", "slf", "autoloss")]

    def compared(self) -> str | None:
        """The method marked against the best baseline (`compare`, else the AutoLoss method)."""
        if self.compare is not None:
            return self.compare
        return next((k for k in self.methods if self.method(k) == "autoloss"), None)


# -- a cell's keys ---------------------------------------------------------------------------------
def model_keys(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The `model` section of a model key and its settings."""
    return {"name": name, **spec}


def loss_keys(grid: Grid, key: str) -> dict[str, Any]:
    """The `loss` section of a method key."""
    m = grid.methods[key]
    keys: dict[str, Any] = {"name": grid.method(key), "params": dict(m.params)}
    if m.candidates is not None:
        keys["candidates"] = m.candidates
    return keys


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with `top` merged in, mapping by mapping."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# -- reading and writing ---------------------------------------------------------------------------
def load_grid(
    path: str | Path, overrides: dict[str, Any] | None = None, data: dict[str, str] | None = None
) -> Grid:
    """Read a grid file; `overrides` set dotted keys, `data` points data sets at their files."""
    p = Path(path)
    raw = read_yaml_mapping(p, "grid")
    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value)
    for name, file in (data or {}).items():
        _set_data_path(raw, name, file, str(p))
    return grid_from_dict(raw, str(p))


def _set_data_path(raw: dict[str, Any], name: str, file: str, source: str) -> None:
    transfer = (raw.get("transfer") or {}).get("datasets") or {}
    places = ((raw, "datasets"), (transfer, "targets"))
    for owner, key in places:
        named = _named(owner.get(key))
        if isinstance(named, dict) and name in named:
            named[name] = {**named[name], "path": file}
            owner[key] = named
            return
    known = [n for owner, key in places for n in _named(owner.get(key) or {})]
    raise ConfigError(
        f"{source}: --data {name}=...: no data set {name!r} in the grid; "
        f"its data sets: {', '.join(known)}"
    )


def is_bench(root: str | Path) -> bool:
    """Whether a folder is a bench directory (it holds the grid it was run with)."""
    return (Path(root) / GRID_FILE).is_file()


def save_grid(grid: Grid, root: Path) -> None:
    """Write the grid into its bench directory, for `load_bench`."""
    (root / GRID_FILE).write_text(yaml.safe_dump(grid.model_dump(mode="json"), sort_keys=False))


def load_bench(root: str | Path) -> Grid:
    """The grid a bench directory was run with."""
    path = Path(root) / GRID_FILE
    if not path.is_file():
        raise ConfigError(f"{root}: not a bench directory (no {GRID_FILE})")
    return grid_from_dict(yaml.safe_load(path.read_text()), str(path))


# -- validation ------------------------------------------------------------------------------------
def grid_from_dict(raw: dict[str, Any], source: str = "grid") -> Grid:
    """Validate a grid: its own keys, then every cell's configuration, naming the key at fault."""
    try:
        grid = Grid.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None
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
    """Validate every section merged over `base`, and build each model and method once."""
    from recloss.data.schema import Schema
    from recloss.models import build_model

    schema = Schema("binary", 2, ("a", "b"), (4, 4))  # a toy: bad names and parameters fail now
    _validate_run(grid.base, None, "base", source)
    datasets, models = _sections(grid)
    for where, spec in datasets.items():
        _validate_run(grid.base, ("data", spec), where, source)
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
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            parts.append(f"{'.'.join(loc)}: {msg}")
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
