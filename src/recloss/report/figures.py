"""The bench's figures: seconds to the best validation AUC, and validation AUC over time.

Matplotlib is optional (`pip install 'recloss[plot]'`); figures are drawn with its object API on
the Agg canvas, so no display and no global backend switch are needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from recloss.atomic import write_atomic
from recloss.errors import ConfigError
from recloss.report.stats import Index, stat
from recloss.report.tables import Layout
from recloss.rundir import RunDir, RunRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def efficiency_figure(index: Index, layout: Layout) -> Figure:
    """Mean seconds to the best validation AUC per method, one panel per data set and model."""
    figure, axes = _panels(layout)
    labels = list(layout.methods.values())
    for ax, (dataset, model, title) in zip(axes, _pairs(layout), strict=True):
        stats = [
            stat(index, (dataset, model, m, ""), "time_to_best_seconds") for m in layout.methods
        ]
        colors = ["tab:orange" if m == layout.compare else "tab:blue" for m in layout.methods]
        means = [s.mean if s.n else 0 for s in stats]
        spread = [
            [min(s.std, m) for s, m in zip(stats, means, strict=True)],
            [s.std for s in stats],
        ]
        ax.barh(labels, means, xerr=spread, color=colors, alpha=0.8)
        ax.invert_yaxis()
        ax.set(title=title, xlabel="seconds to the best validation AUC")
    return figure


def auc_time_figure(index: Index, layout: Layout, root: Path) -> Figure:
    """Validation AUC against wall-clock seconds, one line per seed, one colour per method."""
    figure, axes = _panels(layout)
    for ax, (dataset, model, title) in zip(axes, _pairs(layout), strict=True):
        for i, method in enumerate(layout.efficiency):
            for j, row in enumerate(index.get((dataset, model, method, ""), [])):
                seconds, auc = auc_curve(RunDir(root / row["run_dir"]).read_record())
                ax.plot(
                    seconds,
                    auc,
                    color=f"C{i}",
                    alpha=0.7,
                    marker=".",
                    label=layout.methods[method] if j == 0 else None,
                )
        ax.set(title=title, xlabel="wall-clock seconds", ylabel="validation AUC")
        if ax.lines:  # a panel whose cells all failed has nothing to name
            ax.legend()
    return figure


def auc_curve(record: RunRecord) -> tuple[list[float], list[float]]:
    """(seconds, validation AUC) per epoch, the search stage's seconds included."""
    offset = record.search_seconds
    return [offset + e.seconds for e in record.history], [e.valid["auc"] for e in record.history]


def new_figure(width: float, height: float) -> Figure:
    """An empty figure with constrained layout; ConfigError when Matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plots need Matplotlib: pip install 'recloss[plot]'") from None
    return Figure(figsize=(width, height), layout="constrained")


def save_png(figure: Figure, path: Path, dpi: int) -> Path:
    """Write `figure` as a PNG file, whole or not at all."""
    write_atomic(path, lambda tmp: figure.savefig(tmp, dpi=dpi, format="png"))
    return path


def _pairs(layout: Layout) -> list[tuple[str, str, str]]:
    return [
        (d, m, f"{dl}, {ml}")
        for d, dl in layout.datasets.items()
        for m, ml in layout.models.items()
    ]


def _panels(layout: Layout) -> tuple[Figure, list[Any]]:
    """A figure with a panel per data set (rows) and model (columns)."""
    rows, cols = len(layout.datasets), len(layout.models)
    figure = new_figure(5 * cols, 3.6 * rows)
    return figure, list(figure.subplots(rows, cols, squeeze=False).ravel())


__all__ = ["auc_curve", "auc_time_figure", "efficiency_figure", "new_figure"]
