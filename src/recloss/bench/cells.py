"""A grid's cells: one run each, in order (transfers after their sources), and their folders."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recloss.bench.grid import Grid, loss_keys, model_keys
from recloss.config import RunConfig, merge
from recloss.rundir import RunDir


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
    """The bench directory of a grid under `--out`."""
    return Path(out).expanduser().resolve() / grid.name


def cell_dir(root: Path, key: str) -> Path:
    """The run folder of a cell."""
    return root / "cells" / key


Part = tuple[str, dict[str, Any]]  # a data set's or model's name and keys
Source = tuple[str, str]  # a transfer's source name and source cell key


def expand(grid: Grid, root: Path) -> list[Cell]:
    """Every cell, seed by seed; within a seed the transfer cells come after their sources."""
    cells = []
    for seed in grid.seeds:
        main = itertools.product(grid.datasets.items(), grid.models.items(), grid.methods)
        cells += [_cell(grid, root, data, model, method, seed) for data, model, method in main]
        cells += _transfer_cells(grid, root, seed)
    return cells


def _transfer_cells(grid: Grid, root: Path, seed: int) -> Iterator[Cell]:
    """The model transfers' cells, then the data set transfers'."""
    t = grid.transfer
    if t is None:
        return
    if t.models is not None:
        yield from _model_transfer_cells(grid, root, seed)
    if t.datasets is not None:
        yield from _dataset_transfer_cells(grid, root, seed)


def _model_transfer_cells(grid: Grid, root: Path, seed: int) -> Iterable[Cell]:
    t = grid.transfer.models
    for dataset in t.datasets or list(grid.datasets):
        data = (dataset, grid.datasets[dataset])
        for model, method in itertools.product(t.targets.items(), grid.transfer.methods):
            source = _source(grid, t.source, f"{dataset}/{t.source}/{method}/seed{seed}", method)
            yield _cell(grid, root, data, model, method, seed, source)


def _dataset_transfer_cells(grid: Grid, root: Path, seed: int) -> Iterable[Cell]:
    t = grid.transfer.datasets
    models = {k: grid.models[k] for k in t.models or grid.models}
    combos = itertools.product(t.targets.items(), models.items(), grid.transfer.methods)
    for data, model, method in combos:
        source = _source(grid, t.source, f"{t.source}/{model[0]}/{method}/seed{seed}", method)
        yield _cell(grid, root, data, model, method, seed, source)


def _source(grid: Grid, name: str, key: str, method: str) -> Source | None:
    """(source name, source cell key) of a transferred method; None for a fixed loss."""
    return (name, key) if grid.artifact(method) is not None else None


def _cell(
    grid: Grid,
    root: Path,
    data: Part,
    model: Part,
    method: str,
    seed: int,
    source: Source | None = None,
) -> Cell:
    """The cell of one combination; `source` is (source name, source cell key) for a transfer."""
    loss = loss_keys(grid, method)
    if source is not None:
        artifact = grid.artifact(method)
        learned = RunDir(cell_dir(root, source[1])).file(artifact.file)
        loss["params"] |= artifact.frozen(str(learned))
    raw = merge({"train": {"progress": False}}, grid.base)
    raw = merge(
        raw, {"data": data[1], "model": model_keys(*model), "loss": loss, "train": {"seed": seed}}
    )
    config = RunConfig.model_validate(raw)
    return Cell(data[0], model[0], method, seed, config, *(source or (None, None)))
