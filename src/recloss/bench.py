"""Benchmark grids: data sets x models x loss methods x seeds, run cell by cell and resumable.

A grid (YAML) names its data sets, models and methods once; every combination and seed is a
*cell*, a normal run directory under `<out>/<grid name>/cells/<data set>/<model>/<method>/seed<k>/`.
A cell whose `metrics.json` exists is finished and never rerun; an interrupted cell resumes from its
checkpoint. Transfer cells train a model with the loss network a source cell learned (frozen), so
they run after their sources.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from tqdm.auto import tqdm

from recloss import tables
from recloss.config import RunConfig, format_validation_error, read_yaml_mapping, set_dotted
from recloss.errors import ConfigError, RecLossError
from recloss.train import CHECKPOINT, load_run_config, resume, train

GRID_FILE = "grid.yaml"
METRICS_FILE = "metrics.json"
ERROR_FILE = "error.txt"
SEARCH_FILE = "search.json"  # a two-stage method's finished search (see search/twostage.py)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # safe as a folder name


@dataclass(frozen=True)
class Transferable:
    """A strategy whose learned loss network a cell can hand on: its file and how to load it."""

    artifact: str
    params: Callable[[Path], dict[str, Any]]


TRANSFERABLE: dict[str, Transferable] = {
    "autoloss": Transferable(
        "controller.safetensors", lambda f: {"controller": str(f), "freeze_controller": True}
    ),
    "slf": Transferable(
        "slf_network.safetensors", lambda f: {"network": str(f), "freeze_network": True}
    ),
}
FIXED = ("ce", "focal", "kl", "hinge", "weighted")  # run as they are on a transfer target
LABELS = {
    "focal": "Focal",
    "kl": "KL",
    "hinge": "Hinge",
    "ce": "CE",
    "meta": "MeLU",
    "bohb": "BOHB",
    "darts": "DARTS",
    "slf": "SLF",
    "autoloss": "AutoLoss",
    "uncertainty": "Uncertainty",
    "gradnorm": "GradNorm",
    "dwa": "DWA",
    "weighted": "Weighted",
    "deepfm": "DeepFM",
    "ipnn": "IPNN",
    "nfm": "NFM",
    "autoint": "AutoInt",
    "fm": "FM",
    "lr": "LR",
    "widedeep": "Wide&Deep",
    "dcnv2": "DCN-v2",
}


# -- the grid --------------------------------------------------------------------------------------
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
    groups = {"datasets": grid.datasets, "models": grid.models, "methods": grid.methods}
    if grid.transfer and grid.transfer.models:
        groups["transfer.models.targets"] = grid.transfer.models.targets
    if grid.transfer and grid.transfer.datasets:
        groups["transfer.datasets.targets"] = grid.transfer.datasets.targets
    for where, names in {"name": [grid.name], **groups}.items():
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


def _check_sections(grid: Grid, source: str) -> None:
    """Validate every section merged over `base`, and build each model and method once."""
    from recloss.data.schema import Schema
    from recloss.models import build_model
    from recloss.search import build_strategy

    schema = Schema("binary", 2, ("a", "b"), (4, 4))  # a toy: bad names and parameters fail now
    _validate_run(grid.base, None, "base", source)
    t = grid.transfer
    datasets = {f"datasets.{k}": v for k, v in grid.datasets.items()}
    models = {f"models.{k}": (k, v) for k, v in grid.models.items()}
    if t is not None and t.datasets is not None:
        datasets |= {f"transfer.datasets.targets.{k}": v for k, v in t.datasets.targets.items()}
    if t is not None and t.models is not None:
        models |= {f"transfer.models.targets.{k}": (k, v) for k, v in t.models.targets.items()}
    for where, spec in datasets.items():
        _validate_run(grid.base, ("data", spec), where, source)
    for where, (name, spec) in models.items():
        m = _validate_run(grid.base, ("model", _model_keys(name, spec)), where, source).model
        _built(lambda m=m: build_model(m.name, schema, m.embed_dim, **m.params), where, source)
    for key in grid.methods:
        where = f"methods.{key}"
        loss = _validate_run(grid.base, ("loss", _loss_keys(grid, key)), where, source).loss
        _built(lambda loss=loss: build_strategy(loss, schema), where, source)


def _built(build: Callable[[], Any], where: str, source: str) -> None:
    try:
        build()
    except RecLossError as err:
        raise ConfigError(f"{source}: {where}: {err}") from None


def _validate_run(
    base: dict[str, Any], section: tuple[str, dict[str, Any]] | None, where: str, source: str
) -> RunConfig:
    """Validate base + one section; an error in the section is reported under `where`."""
    raw = _merge(base, {section[0]: section[1]}) if section else copy.deepcopy(base)
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
    for name in t.methods:
        if name not in grid.methods:
            raise ConfigError(f"{source}: transfer.methods: {name!r} is not one of the methods")
        if grid.method(name) not in TRANSFERABLE and grid.method(name) not in FIXED:
            raise ConfigError(
                f"{source}: transfer.methods: {name} ({grid.method(name)}) has no loss network "
                f"that can be transferred; transferable: {', '.join(TRANSFERABLE)} or a fixed loss"
            )
    if t.models is not None:
        _known(t.models.source, grid.models, "transfer.models.source", source)
        _fresh(t.models.targets, grid.models, "transfer.models.targets", source)
        for name in t.models.datasets or []:
            _known(name, grid.datasets, "transfer.models.datasets", source)
    if t.datasets is not None:
        d = t.datasets
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

    data = RunConfig.model_validate(_merge(base, {"data": spec})).data
    return data.task or DATASETS.get(data.dataset).task


def _model_keys(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, **spec}


def _loss_keys(grid: Grid, key: str) -> dict[str, Any]:
    m = grid.methods[key]
    keys: dict[str, Any] = {"name": grid.method(key), "params": dict(m.params)}
    if m.candidates is not None:
        keys["candidates"] = m.candidates
    return keys


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with `top` merged in, mapping by mapping."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else value


# -- cells -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One training run of the grid."""

    dataset: str
    model: str
    method: str  # a key of the grid's methods
    seed: int
    config: RunConfig
    source: str | None = None  # transfer: the model or data set the loss network comes from
    source_key: str | None = None  # transfer: the cell that learned it

    @property
    def name(self) -> str:
        return self.method if self.source is None else f"{self.method}-from-{self.source}"

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.model}/{self.name}/seed{self.seed}"


def bench_dir(grid: Grid, out: str | Path) -> Path:
    return Path(out).resolve() / grid.name


def cell_dir(root: Path, key: str) -> Path:
    return root / "cells" / key


Part = tuple[str, dict[str, Any]]  # a data set's or model's name and keys


def expand(grid: Grid, root: Path) -> list[Cell]:
    """Every cell, seed by seed; within a seed the transfer cells come after their sources."""
    cells = []
    for seed in grid.seeds:
        main = itertools.product(grid.datasets.items(), grid.models.items(), grid.methods)
        cells += [_cell(grid, root, data, model, method, seed) for data, model, method in main]
        cells += _transfer_cells(grid, root, seed)
    return cells


def _transfer_cells(grid: Grid, root: Path, seed: int) -> Iterable[Cell]:
    t = grid.transfer
    if t is None:
        return
    if t.models is not None:
        src = t.models.source
        for dataset in t.models.datasets or list(grid.datasets):
            data = (dataset, grid.datasets[dataset])
            for model, method in itertools.product(t.models.targets.items(), t.methods):
                source = _source(grid, src, f"{dataset}/{src}/{method}/seed{seed}", method)
                yield _cell(grid, root, data, model, method, seed, source)
    if t.datasets is not None:
        src = t.datasets.source
        models = {k: grid.models[k] for k in t.datasets.models or grid.models}
        for data, model, method in itertools.product(
            t.datasets.targets.items(), models.items(), t.methods
        ):
            source = _source(grid, src, f"{src}/{model[0]}/{method}/seed{seed}", method)
            yield _cell(grid, root, data, model, method, seed, source)


def _source(grid: Grid, name: str, key: str, method: str) -> tuple[str, str] | None:
    """(source name, source cell key) of a transferred method; None for a fixed loss."""
    return (name, key) if grid.method(method) in TRANSFERABLE else None


def _cell(
    grid: Grid,
    root: Path,
    data: Part,
    model: Part,
    method: str,
    seed: int,
    source: tuple[str, str] | None = None,
) -> Cell:
    """The cell of one combination; `source` is (source name, source cell key) for a transfer."""
    loss = _loss_keys(grid, method)
    if source is not None:
        transfer = TRANSFERABLE[grid.method(method)]
        loss["params"] |= transfer.params(cell_dir(root, source[1]) / transfer.artifact)
    raw = _merge({"train": {"progress": False}}, grid.base)
    raw = _merge(
        raw, {"data": data[1], "model": _model_keys(*model), "loss": loss, "train": {"seed": seed}}
    )
    config = RunConfig.model_validate(raw)
    return Cell(data[0], model[0], method, seed, config, *(source or (None, None)))


# -- running ---------------------------------------------------------------------------------------
def is_done(root: Path, key: str) -> bool:
    return (cell_dir(root, key) / METRICS_FILE).is_file()


def state(root: Path, key: str) -> str:
    """done, failed (its error.txt says why) or pending."""
    if is_done(root, key):
        return "done"
    return "failed" if (cell_dir(root, key) / ERROR_FILE).is_file() else "pending"


def run_bench(grid: Grid, root: Path, progress: bool = True) -> list[dict[str, Any]]:
    """Run every unfinished cell (sources before their transfer cells); return the results rows."""
    cells = expand(grid, root)
    root.mkdir(parents=True, exist_ok=True)
    (root / GRID_FILE).write_text(yaml.safe_dump(grid.model_dump(mode="json"), sort_keys=False))
    for cell in cells:
        _check_unchanged(root, cell)
    todo = [c for c in cells if not is_done(root, c.key)]
    bar = tqdm(
        total=len(cells),
        initial=len(cells) - len(todo),
        unit="cell",
        desc=grid.name,
        disable=not progress,
        dynamic_ncols=True,
    )
    if len(todo) < len(cells):
        bar.write(f"{len(cells) - len(todo)} of {len(cells)} cells already finished")
    for cell in todo:
        bar.write(run_cell(root, cell))
        bar.update()
        tables.write_results(collect_rows(root, cells), root)
    bar.close()
    rows = collect_rows(root, cells)
    tables.write_results(rows, root)
    return rows


def run_cell(root: Path, cell: Cell) -> str:
    """Train (or resume) one cell; return its summary line. Failures are recorded, not raised."""
    path = cell_dir(root, cell.key)
    path.mkdir(parents=True, exist_ok=True)
    (path / ERROR_FILE).unlink(missing_ok=True)
    try:
        if cell.source_key is not None and not is_done(root, cell.source_key):
            raise RecLossError(f"its source cell {cell.source_key} did not finish")
        result = resume(path) if _started(path) else train(cell.config, path)
    except Exception as err:  # one failed cell must not stop a bench of hours; it is retried later
        detail = str(err) if isinstance(err, RecLossError) else traceback.format_exc()
        (path / ERROR_FILE).write_text(detail)
        return f"{cell.key}: FAILED: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
    return f"{cell.key}: {tables.summary_line(tables.run_row(result.metrics))}"


def _started(path: Path) -> bool:
    """Whether a cell folder holds progress to resume: a checkpoint, or a finished search stage."""
    return (path / "config.yaml").is_file() and (
        any(path.rglob(CHECKPOINT)) or (path / SEARCH_FILE).is_file()
    )


def _check_unchanged(root: Path, cell: Cell) -> None:
    """A cell folder from an earlier bench must hold the run this grid asks for."""
    path = cell_dir(root, cell.key)
    if not (path / "config.yaml").is_file():
        return
    if load_run_config(path).model_dump() != cell.config.model_dump():
        raise ConfigError(
            f"{path}: holds a run of another configuration (the grid changed); "
            "remove that folder to rerun it, or bench into another --out"
        )


def collect_rows(root: Path, cells: list[Cell]) -> list[dict[str, Any]]:
    """One results row per cell: its metrics when finished, its status otherwise."""
    rows = []
    for cell in cells:
        path = cell_dir(root, cell.key)
        ident = {
            "dataset": cell.dataset,
            "model": cell.model,
            "method": cell.method,
            "source": cell.source or "",
            "seed": cell.seed,
            "run_dir": str(path.relative_to(root)),
        }
        status = state(root, cell.key)
        if status == "done":
            metrics = json.loads((path / METRICS_FILE).read_text())
            rows.append({**ident, "status": status, **tables.run_row(metrics)})
        else:
            rows.append({**ident, "status": status})
    return rows


# -- the report's layout ---------------------------------------------------------------------------
def label(key: str, grid: Grid | None = None) -> str:
    """The heading of a method, model or data set."""
    if grid is not None and key in grid.methods:
        return grid.methods[key].label or LABELS.get(grid.method(key), key)
    return LABELS.get(key.lower(), key)


def layout(grid: Grid) -> tables.Layout:
    """What the report shows, in the grid's order, with the paper's headings."""
    methods = {k: label(k, grid) for k in grid.methods}
    return tables.Layout(
        title=grid.name,
        seeds=len(grid.seeds),
        datasets={k: label(k) for k in grid.datasets},
        models={k: label(k) for k in grid.models},
        methods=methods,
        compare=grid.compared(),
        efficiency=grid.plotted(),
        transfers=_transfer_blocks(grid),
    )


def _transfer_blocks(grid: Grid) -> list[tables.TransferBlock]:
    t = grid.transfer
    if t is None:
        return []
    blocks = []
    if t.models is not None:
        src = t.models.source
        for dataset in t.models.datasets or list(grid.datasets):
            targets = ", ".join(label(m) for m in t.models.targets)
            blocks.append(
                tables.TransferBlock(
                    title=f"{label(src)} \u2192 {targets} on {label(dataset)}",
                    columns=[(dataset, m, label(m)) for m in t.models.targets],
                    rows=_transfer_rows(grid, src),
                )
            )
    if t.datasets is not None:
        src = t.datasets.source
        for dataset in t.datasets.targets:
            blocks.append(
                tables.TransferBlock(
                    title=f"{label(src)} \u2192 {label(dataset)}",
                    columns=[
                        (dataset, m, label(m)) for m in t.datasets.models or list(grid.models)
                    ],
                    rows=_transfer_rows(grid, src),
                )
            )
    return blocks


def _transfer_rows(grid: Grid, source: str) -> list[tuple[str, str, str]]:
    """(label, method, source) of each row: `source` empty for the fixed losses."""
    return [
        (f"{label(m, grid)}*", m, source if grid.method(m) in TRANSFERABLE else "")
        for m in grid.transfer.methods
    ]


def write_report(grid: Grid, root: Path, report_dir: str | Path | None = None) -> list[Path]:
    """Collect the cells' results and write report.md, report.html and the plots."""
    rows = collect_rows(root, expand(grid, root))
    tables.write_results(rows, root)
    out = Path(report_dir) if report_dir is not None else root / "report"
    return tables.write_report(rows, layout(grid), root, out)


def load_bench(root: str | Path) -> Grid:
    """The grid a bench directory was run with."""
    path = Path(root) / GRID_FILE
    if not path.is_file():
        raise ConfigError(f"{root}: not a bench directory (no {GRID_FILE})")
    return grid_from_dict(yaml.safe_load(path.read_text()), str(path))


__all__ = [
    "Cell",
    "Grid",
    "MethodSpec",
    "TRANSFERABLE",
    "Transferable",
    "bench_dir",
    "collect_rows",
    "expand",
    "grid_from_dict",
    "layout",
    "load_bench",
    "load_grid",
    "run_bench",
    "run_cell",
    "state",
    "write_report",
]
