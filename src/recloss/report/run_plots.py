"""Plots of one finished run: loss selection over steps, validation AUC over time, the controller.

Matplotlib is optional (`pip install 'recloss[plot]'`); see `recloss.report.figures`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from recloss.report.figures import new_figure
from recloss.rundir import EpochRecord, RunDir
from recloss.search.autoloss import CONTROLLER_FILE
from recloss.search.controller import Controller, load_controller

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def write_run_report(run_dir: str | Path) -> list[Path]:
    """Write the run's PNG plots next to its `metrics.json`; return the files written."""
    run = RunDir(run_dir)
    history = run.read_record().history
    figures = {
        "selection.png": selection_figure(history),
        "valid_auc.png": auc_figure(history),
    }
    if run.file(CONTROLLER_FILE).is_file():
        figures["controller.png"] = controller_figure(load_controller(run.file(CONTROLLER_FILE)))
    written = []
    for name, figure in figures.items():
        if figure is not None:
            figure.savefig(run.file(name), dpi=120)
            written.append(run.file(name))
    return written


def selection_trace(history: list[EpochRecord]) -> tuple[list[int], dict[str, list[float]]]:
    """Steps and mean selection probability per candidate, joined over the epochs' traces."""
    steps: list[int] = []
    alpha: dict[str, list[float]] = {}
    for entry in history:
        trace = entry.strategy.get("trace")
        if not trace:
            continue
        steps += trace["step"]
        for name, values in trace["alpha"].items():
            alpha.setdefault(name, []).extend(values)
    return steps, alpha


def controller_curves(controller: Controller, points: int = 99) -> dict[str, Any]:
    """Selection probabilities on a probability grid, per label value (no model needed).

    Binary: against the predicted probability of class 1. Multi-class: against the probability
    of the true class, the rest spread evenly over the other classes.
    """
    spec = controller.spec
    grid = torch.linspace(0.01, 0.99, points)
    curves = {}
    with torch.no_grad():
        for label in range(spec.num_classes):
            y = torch.full((points,), label, dtype=torch.long)
            alpha = controller.alpha(_grid_logits(grid, label, spec.num_classes, spec.task), y)
            curves[str(label)] = alpha.numpy()
    return {"grid": grid.numpy(), "candidates": list(spec.candidates), "alpha": curves}


def _grid_logits(grid: torch.Tensor, label: int, num_classes: int, task: str) -> torch.Tensor:
    if task == "binary":
        return torch.logit(grid)
    rest = ((1 - grid) / (num_classes - 1))[:, None].expand(-1, num_classes).clone()
    rest[:, label] = grid
    return rest.log()


def selection_figure(history: list[EpochRecord]) -> Figure | None:
    """Mean selection probability of each candidate over training steps (None without a trace)."""
    steps, alpha = selection_trace(history)
    if not steps:
        return None
    figure, ax = _figure()
    for name, values in alpha.items():
        ax.plot(steps, values, label=name)
    ax.set(xlabel="training step", ylabel="mean selection probability", ylim=(0, 1))
    ax.legend()
    return figure


def auc_figure(history: list[EpochRecord]) -> Figure | None:
    """Validation AUC against wall-clock seconds since the start of training."""
    if not history:
        return None
    figure, ax = _figure()
    ax.plot([e.seconds for e in history], [e.valid["auc"] for e in history], marker="o")
    ax.set(xlabel="wall-clock seconds", ylabel="validation AUC")
    return figure


def controller_figure(controller: Controller) -> Figure:
    """Learned selection probabilities as a function of the prediction, one panel per label."""
    curves = controller_curves(controller)
    labels = list(curves["alpha"])
    binary = controller.spec.task == "binary"
    figure, axes = _figure(len(labels))
    for ax, label in zip(np.atleast_1d(axes), labels, strict=True):
        for i, name in enumerate(curves["candidates"]):
            ax.plot(curves["grid"], curves["alpha"][label][:, i], label=name)
        xlabel = "predicted probability of class 1" if binary else "probability of the true class"
        ax.set(title=f"label {label}", xlabel=xlabel, ylim=(0, 1))
    np.atleast_1d(axes)[0].set_ylabel("selection probability (alpha)")
    np.atleast_1d(axes)[0].legend()
    return figure


def _figure(panels: int = 1) -> tuple[Figure, Any]:
    figure = new_figure(4.5 * panels, 3.5)
    return figure, figure.subplots(1, panels)


__all__ = [
    "auc_figure",
    "controller_curves",
    "controller_figure",
    "selection_figure",
    "selection_trace",
    "write_run_report",
]
