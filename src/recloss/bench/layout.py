"""The report of a bench: headings from the registries, its layout, and writing it."""

from __future__ import annotations

from pathlib import Path

from recloss.bench.cells import expand
from recloss.bench.grid import Grid
from recloss.bench.runner import collect_rows
from recloss.models import MODELS
from recloss.report import Layout, TransferBlock, write_results
from recloss.report import write_report as render_report
from recloss.runs import method_label


def label(key: str, grid: Grid | None = None) -> str:
    """The heading of a method, model or data set (a data set's is its key)."""
    if grid is not None and key in grid.methods:
        return grid.methods[key].label or method_label(grid.method(key))
    if key in MODELS:
        return MODELS.get(key).label
    name = key.lower()
    return method_label(name) if method_label(name) != name else key


def layout(grid: Grid) -> Layout:
    """What the report shows, in the grid's order, with the paper's headings."""
    return Layout(
        title=grid.name,
        seeds=len(grid.seeds),
        datasets={k: k for k in grid.datasets},
        models={k: label(k) for k in grid.models},
        methods={k: label(k, grid) for k in grid.methods},
        compare=grid.compared(),
        efficiency=grid.plotted(),
        transfers=_transfer_blocks(grid),
    )


def _transfer_blocks(grid: Grid) -> list[TransferBlock]:
    """One block per data set of a model transfer, one per target of a data set transfer."""
    t = grid.transfer
    if t is None:
        return []
    blocks = []
    if t.models is not None:
        src, targets = t.models.source, list(t.models.targets)
        for dataset in t.models.datasets or list(grid.datasets):
            title = f"{label(src)} \u2192 {', '.join(label(m) for m in targets)} on {dataset}"
            columns = [(dataset, m, label(m)) for m in targets]
            blocks.append(TransferBlock(title, columns, _transfer_rows(grid, src)))
    if t.datasets is not None:
        src, models = t.datasets.source, t.datasets.models or list(grid.models)
        for dataset in t.datasets.targets:
            columns = [(dataset, m, label(m)) for m in models]
            blocks.append(
                TransferBlock(f"{src} \u2192 {dataset}", columns, _transfer_rows(grid, src))
            )
    return blocks


def _transfer_rows(grid: Grid, source: str) -> list[tuple[str, str, str]]:
    """(label, method, source) of each row: `source` empty for the fixed losses."""
    return [
        (f"{label(m, grid)}*", m, source if grid.artifact(m) is not None else "")
        for m in grid.transfer.methods
    ]


def write_report(grid: Grid, root: Path, report_dir: str | Path | None = None) -> list[Path]:
    """Collect the cells' results and write report.md, report.html and the plots."""
    rows = collect_rows(root, expand(grid, root))
    write_results(rows, root)
    out = Path(report_dir) if report_dir is not None else root / "report"
    return render_report(rows, layout(grid), root, out)
