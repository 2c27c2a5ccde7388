"""Plots of one run, finished or in progress: loss selection over steps, training curves, the
controller.

`write_run_report` writes `selection.png` (mean selection probability per candidate over
training steps), `valid_auc.png` (training loss and validation AUC, against epochs and against
wall-clock seconds, the best epoch marked) and `controller.png` (the learned selection
probabilities, a panel per label). Every figure is titled with the run folder, model, data set
and loss method. A run still training (or interrupted) gets the first two from its checkpoint,
for the epochs it has finished. Matplotlib is optional (`pip install 'recloss[plot]'`); see
`recloss.report.figures`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from recloss.errors import RecLossError
from recloss.report.figures import new_figure, save_png
from recloss.rundir import EpochRecord, RunDir, RunRecord
from recloss.search.autoloss import CONTROLLER_FILE
from recloss.search.controller import Controller, load_controller
from recloss.training import checkpoint

if TYPE_CHECKING:
    from matplotlib.figure import Figure


CONTROLLER_COLUMNS = 3  # panels per row of `controller.png`


def write_run_report(run_dir: str | Path) -> list[Path]:
    """Write the run's PNG plots next to its `metrics.json` (a run in progress: from its last
    checkpoint, the epochs done so far); return the files written."""
    run = RunDir(run_dir)
    if run.is_finished() or not run.checkpoint.is_file():
        record = run.read_record()
        history, best_epoch, title = record.history, record.best_epoch, run_title(run, record)
    else:
        history, best_epoch = progress_so_far(run)
        title = f"{run_title(run)} (in progress, after epoch {len(history)})"
    figures = {
        "selection.png": selection_figure(history, title),
        "valid_auc.png": training_figure(history, best_epoch, title, _monitor(run)),
    }
    if run.file(CONTROLLER_FILE).is_file():
        controller = load_controller(run.file(CONTROLLER_FILE))
        figures["controller.png"] = controller_figure(controller, title)
    written = []
    for name, figure in figures.items():
        if figure is not None:
            written.append(save_png(figure, run.file(name), dpi=120))
    return written


def progress_so_far(run: RunDir) -> tuple[list[EpochRecord], int]:
    """The epochs a run in progress has finished, and its best one, from its checkpoint."""
    state = checkpoint.load(run.checkpoint)["state"]
    if not state["history"]:
        raise RecLossError(f"{run.path}: no epoch has finished yet; nothing to plot")
    return [EpochRecord.model_validate(e) for e in state["history"]], state["best_epoch"]


def _monitor(run: RunDir) -> str:
    """The validation metric the run picked its best epoch by (`train.monitor`)."""
    try:
        return run.read_config().train.monitor
    except RecLossError:  # no or unreadable config: the default
        return "auc"


def run_title(run: RunDir, record: RunRecord | None = None) -> str:
    """`folder: model on data set, loss method`, from `config.yaml` (else what the record says)."""
    folder = run.path.resolve().name
    try:
        cfg = run.read_config()
    except RecLossError:  # no or unreadable config: the plots need only the record
        dataset = record.dataset.name if record is not None else "unknown data set"
        return f"{folder}: unknown model on {dataset}, unknown loss"
    return f"{folder}: {cfg.model.name} on {cfg.data.dataset}, loss {cfg.loss.name}"


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


def selection_figure(history: list[EpochRecord], title: str | None = None) -> Figure | None:
    """Mean selection probability of each candidate over training steps (None without a trace)."""
    steps, alpha = selection_trace(history)
    if not steps:
        return None
    figure = new_figure(6.5, 4.2)
    ax = figure.subplots()
    for name, values in alpha.items():
        ax.plot(steps, values, label=name)
    ax.set(
        title="loss selection over training",
        xlabel="training step",
        ylabel="mean selection probability",
        ylim=(0, 1),
    )
    ax.legend(title="candidate")
    _suptitle(figure, title)
    return figure


def best_entry(history: list[EpochRecord], best_epoch: int | None = None) -> EpochRecord | None:
    """The epoch `best_epoch` names (as the record numbers them), else the first best finite AUC."""
    for entry in history:
        if best_epoch is not None and entry.epoch == best_epoch:
            return entry
    finite = [e for e in history if math.isfinite(e.valid["auc"])]
    return max(finite, key=lambda e: e.valid["auc"]) if finite else None


def training_figure(
    history: list[EpochRecord],
    best_epoch: int | None = None,
    title: str | None = None,
    monitor: str = "auc",
) -> Figure | None:
    """Training loss (top) and the validation metric that picked the best epoch (bottom: AUC,
    gAUC or the logloss) against the epoch (left) and wall-clock seconds (right), the best epoch
    marked in every panel (None without epochs)."""
    if not history:
        return None
    figure = new_figure(10, 6.5)
    axes = figure.subplots(2, 2, sharex="col", sharey="row")
    best = best_entry(history, best_epoch)
    metric, name = _selection_metric(history, monitor)
    rows: list[tuple[Any, str]] = [
        (lambda e: e.train_loss, "training loss"),
        (lambda e: e.valid[metric], f"validation {name}"),
    ]
    columns = [("epoch", "epoch"), ("seconds", "wall-clock seconds")]
    for r, (value, ylabel) in enumerate(rows):
        for c, (x_name, xlabel) in enumerate(columns):
            ax = axes[r, c]
            ax.plot([getattr(e, x_name) for e in history], [value(e) for e in history], marker="o")
            if best is not None:
                label = f"best epoch {best.epoch} ({name} {best.valid[metric]:.4f})"
                ax.axvline(getattr(best, x_name), color="tab:red", linestyle="--", label=label)
                ax.plot(getattr(best, x_name), value(best), "*", color="tab:red", markersize=12)
            ax.set(xlabel=xlabel if r == len(rows) - 1 else "", ylabel=ylabel if c == 0 else "")
            ax.set_title(f"{ylabel} by {xlabel}", fontsize="medium")
            ax.grid(alpha=0.3)
    epochs = [e.epoch for e in history]
    if len(epochs) <= 12:
        axes[1, 0].set_xticks(epochs)
    else:
        axes[1, 0].xaxis.get_major_locator().set_params(integer=True)
    if best is not None:
        axes[1, 1].legend(loc="lower right")
    _suptitle(figure, title)
    return figure


def _selection_metric(history: list[EpochRecord], monitor: str) -> tuple[str, str]:
    """The validation metric that picked the best epoch: `train.monitor`'s, the logloss also
    where the (g)AUC is undefined on a validation split of one class."""
    if monitor == "logloss" or all(math.isnan(e.valid[monitor]) for e in history):
        return "logloss", "logloss"
    return monitor, {"auc": "AUC", "gauc": "gAUC"}[monitor]


def auc_figure(history: list[EpochRecord], title: str | None = None) -> Figure | None:
    """`training_figure` with the best epoch taken from the history (the name `report` exports)."""
    return training_figure(history, None, title)


def controller_figure(controller: Controller, title: str | None = None) -> Figure:
    """Learned selection probabilities as a function of the prediction, one panel per label,
    at most `CONTROLLER_COLUMNS` panels a row."""
    curves = controller_curves(controller)
    labels = list(curves["alpha"])
    binary = controller.spec.task == "binary"
    cols = min(CONTROLLER_COLUMNS, len(labels))
    rows = math.ceil(len(labels) / cols)
    figure = new_figure(4.2 * cols, 3.3 * rows + 0.4)
    axes = list(figure.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel())
    xlabel = "predicted probability of class 1" if binary else "probability of the true class"
    for i, (ax, label) in enumerate(zip(axes, labels, strict=False)):
        for j, name in enumerate(curves["candidates"]):
            ax.plot(curves["grid"], curves["alpha"][label][:, j], label=name)
        ax.set_title(f"label y = {label}" if binary else f"true class {label}", fontsize="medium")
        ax.set(ylim=(0, 1))
        ax.grid(alpha=0.3)
        if i % cols == 0:
            ax.set_ylabel("selection probability")
        if i + cols >= len(labels):  # the lowest panel of its column
            ax.set_xlabel(xlabel)
            ax.xaxis.set_tick_params(labelbottom=True)
    handles, names = axes[0].get_legend_handles_labels()
    spare = axes[len(labels) :]
    for ax in spare:
        ax.set_axis_off()
    (spare[0] if spare else axes[0]).legend(
        handles, names, title="candidate", loc="center" if spare else "best"
    )
    _suptitle(figure, title)
    return figure


def _suptitle(figure: Figure, title: str | None) -> None:
    if title:
        figure.suptitle(title)


__all__ = [
    "CONTROLLER_COLUMNS",
    "auc_figure",
    "best_entry",
    "controller_curves",
    "controller_figure",
    "run_title",
    "selection_figure",
    "selection_trace",
    "training_figure",
    "write_run_report",
]
