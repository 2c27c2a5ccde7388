"""Running a grid: each unfinished cell trained or resumed, failures recorded, the results rows."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from recloss.bench.cells import Cell, cell_dir, expand
from recloss.bench.grid import Grid
from recloss.bench.gridfile import save_grid
from recloss.errors import ConfigError, DataError, RecLossError
from recloss.progress import ProgressBar
from recloss.report import run_row, summary_line, write_results
from recloss.rundir import RunDir
from recloss.runs import prepare_data, resume, train


def _run_dir(root: Path, key: str) -> RunDir:
    return RunDir(cell_dir(root, key))


def state(root: Path, key: str) -> str:
    """done, failed (its error file says why) or pending."""
    folder = _run_dir(root, key)
    if folder.is_finished():
        return "done"
    return "failed" if folder.has_error() else "pending"


def run_bench(grid: Grid, root: Path, progress: bool = True) -> list[dict[str, Any]]:
    """Run every unfinished cell (sources before their transfer cells); return the results rows."""
    cells = expand(grid, root)
    for cell in cells:
        _check_unchanged(root, cell)
    todo = [c for c in cells if not _run_dir(root, c.key).is_finished()]
    _check_data_paths(todo)
    root.mkdir(parents=True, exist_ok=True)
    save_grid(grid, root)
    bar = ProgressBar(
        total=len(cells),
        initial=len(cells) - len(todo),
        unit="cell",
        desc=grid.name,
        show=progress,
        dynamic_ncols=True,
    )
    if len(todo) < len(cells):
        bar.write(f"{len(cells) - len(todo)} of {len(cells)} cells already finished")
    unprepared: dict[str, str] = {}
    for cell in todo:
        bar.write(run_cell(root, cell, unprepared))
        bar.update()
        write_results(collect_rows(root, cells), root)
    bar.close()
    rows = collect_rows(root, cells)
    write_results(rows, root)
    return rows


def run_cell(root: Path, cell: Cell, unprepared: dict[str, str] | None = None) -> str:
    """Train (or resume) one cell; return its summary line. Failures are recorded, not raised.

    `unprepared` maps the data settings that could not be prepared to the error: the cells
    that share them fail with it rather than preparing the data set again (minutes each)."""
    folder = _run_dir(root, cell.key)
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.clear_error()
    try:
        if cell.source_key is not None and not _run_dir(root, cell.source_key).is_finished():
            raise RecLossError(f"its source cell {cell.source_key} did not finish")
        if folder.has_progress():
            record = resume(folder.path)
        else:
            _prepare(cell, {} if unprepared is None else unprepared)
            record = train(cell.config, run_dir=folder.path)
    except Exception as err:  # one failed cell must not stop a bench of hours; it is retried later
        detail = str(err) if isinstance(err, RecLossError) else traceback.format_exc()
        folder.write_error(detail)
        return f"{cell.key}: FAILED: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
    return f"{cell.key}: {summary_line(run_row(record))}"


def _prepare(cell: Cell, unprepared: dict[str, str]) -> None:
    """The cell's data set prepared (or found in its cache), unless it failed for another cell."""
    settings = cell.config.data.model_dump_json()
    if settings in unprepared:
        raise DataError(unprepared[settings])
    try:
        prepare_data(cell.config, None)
    except RecLossError as err:
        again = f"(found preparing the data set of {cell.key}; not prepared again)"
        unprepared[settings] = f"{err} {again}"
        raise


def _check_data_paths(cells: list[Cell]) -> None:
    """ConfigError now for a data file that does not exist, not a failed cell for each run."""
    for cell in cells:
        path = cell.config.data.path
        if path is not None and not Path(path).exists():
            raise ConfigError(
                f"data set {cell.dataset}: {path} does not exist (a relative path is read from "
                f"the current folder, {Path.cwd()})"
            )


def _check_unchanged(root: Path, cell: Cell) -> None:
    """A cell folder from an earlier bench must hold the run this grid asks for."""
    folder = _run_dir(root, cell.key)
    if not folder.is_run():
        return
    if folder.read_config().model_dump() != cell.config.model_dump():
        raise ConfigError(
            f"{folder.path}: holds a run of another configuration (the grid changed); "
            "remove that folder to rerun it, or bench into another --out"
        )


def collect_rows(root: Path, cells: list[Cell]) -> list[dict[str, Any]]:
    """One results row per cell: its record's figures when finished, its status otherwise."""
    rows = []
    for cell in cells:
        folder = _run_dir(root, cell.key)
        ident = {
            "dataset": cell.dataset,
            "model": cell.model,
            "method": cell.method,
            "source": cell.source or "",
            "seed": cell.seed,
            "run_dir": str(folder.path.relative_to(root)),
        }
        status = state(root, cell.key)
        figures = run_row(folder.read_record()) if status == "done" else {}
        rows.append({**ident, "status": status, **figures})
    return rows
