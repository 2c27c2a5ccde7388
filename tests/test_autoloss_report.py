import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from recloss.config import config_from_dict
from recloss.errors import CompatibilityError, ConfigError, RecLossError
from recloss.report import controller_curves, selection_trace, write_run_report
from recloss.report.run_plots import (
    _grid_logits,
    best_entry,
    controller_figure,
    run_title,
    training_figure,
)
from recloss.rundir import DatasetInfo, EpochRecord, RunDir, RunRecord
from recloss.search.autoloss import AutoLoss
from recloss.search.controller import Controller, ControllerSpec

PNG_MAGIC = b"\x89PNG"


def epoch(i, trace=True):
    strategy = {}
    if trace:
        strategy["trace"] = {
            "step": [10 * i, 10 * i + 5],
            "alpha": {"ce": [0.5, 0.6], "kl": [0.5, 0.4]},
        }
    return EpochRecord(
        epoch=i,
        step=10 * i + 10,
        seconds=1.5 * (i + 1),
        train_loss=0.5,
        samples_per_second=1e3,
        valid={"auc": 0.7 + i / 100},
        strategy=strategy,
    )


def write_run(run_dir, history, config=None, best_epoch=None):
    """A finished run folder whose record has `history`; its other figures made up."""
    run_dir.mkdir(exist_ok=True)
    if config is not None:
        RunDir(run_dir).write_config(config_from_dict(config))
    record = RunRecord(
        test={"auc": 0.7, "logloss": 0.5},
        best_valid=history[-1].valid,
        best_epoch=history[-1].epoch if best_epoch is None else best_epoch,
        epochs=len(history),
        steps=history[-1].step,
        history=history,
        train_seconds=history[-1].seconds,
        wall_seconds=history[-1].seconds,
        samples_per_second=1e3,
        dataset=DatasetInfo(name="synthetic"),
        device="cpu",
    )
    RunDir(run_dir).write_record(record)
    return run_dir


def test_autoloss_run_gets_three_plots(tmp_path):
    run_dir = write_run(tmp_path / "run", [epoch(0), epoch(1)])
    AutoLoss("multiclass", ["ce", "kl"], num_classes=3).save_controller(
        run_dir / "controller.safetensors"
    )
    written = write_run_report(run_dir)
    assert sorted(p.name for p in written) == ["controller.png", "selection.png", "valid_auc.png"]
    assert all(p.read_bytes()[:4] == PNG_MAGIC for p in written)


def test_run_without_controller_gets_only_auc_plot(tmp_path):
    run_dir = write_run(tmp_path / "run", [epoch(0, trace=False)])
    assert [p.name for p in write_run_report(run_dir)] == ["valid_auc.png"]


def test_a_plot_that_cannot_be_written_is_named_and_leaves_no_part(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    run_dir = write_run(tmp_path / "run", [epoch(0, trace=False)])

    def disk_full(figure, path, **kwargs):
        path.write_bytes(PNG_MAGIC)  # what was written before the disk filled
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    with pytest.raises(OSError, match=r"valid_auc.png: could not be written, with .* \(No space"):
        write_run_report(run_dir)
    assert not [p for p in run_dir.iterdir() if ".png" in p.name]


def test_selection_trace_joins_epochs():
    steps, alpha = selection_trace([epoch(0), epoch(1, trace=False), epoch(2)])
    assert steps == [0, 5, 20, 25]
    assert alpha == {"ce": [0.5, 0.6, 0.5, 0.6], "kl": [0.5, 0.4, 0.5, 0.4]}


@pytest.mark.parametrize(("task", "classes"), [("binary", 2), ("multiclass", 4)])
def test_grid_logits_put_the_grid_on_the_plotted_probability(task, classes):
    grid = torch.linspace(0.01, 0.99, 7)
    logits = _grid_logits(grid, 1, classes, task)
    if task == "binary":
        assert torch.allclose(torch.sigmoid(logits), grid)
    else:
        probs = torch.softmax(logits, 1)
        assert torch.allclose(probs[:, 1], grid, atol=1e-6)
        assert torch.allclose(probs.sum(1), torch.ones(7))


def test_controller_curves_evaluate_the_saved_controller():
    torch.manual_seed(0)
    controller = Controller(ControllerSpec("binary", 2, ("ce", "hinge")))
    torch.nn.init.normal_(controller.mlp[-1].weight)
    curves = controller_curves(controller, points=11)
    assert set(curves["alpha"]) == {"0", "1"} and curves["candidates"] == ["ce", "hinge"]
    assert curves["alpha"]["1"].shape == (11, 2)
    np.testing.assert_allclose(curves["alpha"]["0"].sum(1), 1.0, rtol=1e-6)
    expected = controller.alpha(torch.logit(torch.tensor([0.5])), torch.tensor([1]))
    np.testing.assert_allclose(curves["alpha"]["1"][5], expected[0].detach().numpy(), rtol=1e-5)
    assert not np.allclose(curves["alpha"]["0"], curves["alpha"]["1"])


def test_missing_or_bad_metrics_are_reported(tmp_path):
    with pytest.raises(ConfigError, match=r"^\S+: not a run directory \(no config\.yaml\)$"):
        write_run_report(tmp_path)
    (tmp_path / "config.yaml").write_text("train: {epochs: 1}\n")  # a run that never finished
    with pytest.raises(ConfigError, match=r"no metrics\.json; is it a finished run directory\?$"):
        write_run_report(tmp_path)
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(CompatibilityError, match="not a readable RunRecord"):
        write_run_report(tmp_path)


def test_missing_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    run_dir = write_run(tmp_path / "run", [epoch(0)])
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ConfigError, match=r"pip install 'recloss\[plot\]'"):
        write_run_report(run_dir)


CONFIG = {
    "data": {"dataset": "frappe"},
    "model": {"name": "dcnv2"},
    "loss": {"name": "autoloss"},
}


def suptitle(figure):
    return figure.get_suptitle()


def test_every_written_figure_is_titled_with_run_model_data_set_and_loss(tmp_path, monkeypatch):
    from recloss.report import run_plots

    run_dir = write_run(tmp_path / "my-run", [epoch(0), epoch(1)], config=CONFIG)
    AutoLoss("binary", ["ce", "focal"]).save_controller(run_dir / "controller.safetensors")
    saved = {}
    save_png = run_plots.save_png

    def spy(figure, path, **kwargs):
        saved[path.name] = figure
        return save_png(figure, path, **kwargs)

    monkeypatch.setattr(run_plots, "save_png", spy)
    written = write_run_report(run_dir)
    assert (
        sorted(saved)
        == sorted(p.name for p in written)
        == [
            "controller.png",
            "selection.png",
            "valid_auc.png",
        ]
    )
    for figure in saved.values():
        assert suptitle(figure) == "my-run: dcnv2 on frappe, loss autoloss"


def test_title_without_a_config_names_the_record_data_set(tmp_path):
    run_dir = write_run(tmp_path / "bare", [epoch(0)])
    record = RunDir(run_dir).read_record()
    assert run_title(RunDir(run_dir), record) == "bare: unknown model on synthetic, unknown loss"


@pytest.mark.parametrize(("classes", "grid"), [(2, (1, 2)), (3, (1, 3)), (5, (2, 3)), (7, (3, 3))])
def test_controller_figure_is_a_grid_of_labelled_panels(classes, grid):
    task = "binary" if classes == 2 else "multiclass"
    controller = Controller(ControllerSpec(task, classes, ("ce", "focal", "kl")))
    figure = controller_figure(controller, "run: deepfm on criteo, loss autoloss")
    shown = [ax for ax in figure.axes if ax.axison]
    assert len(figure.axes) == grid[0] * grid[1] and len(shown) == classes
    assert figure.axes[0].get_subplotspec().get_gridspec().get_geometry() == grid
    expected = (
        ["label y = 0", "label y = 1"]
        if task == "binary"
        else [f"true class {c}" for c in range(classes)]
    )
    assert [ax.get_title() for ax in shown] == expected
    assert all(ax.get_xlabel() for ax in shown[-min(classes, 3) :])
    width, height = figure.get_size_inches()
    assert width / height <= (3.5 if grid[0] == 1 else 2)  # 5 classes: was one 6.4:1 strip
    assert "deepfm" in suptitle(figure) and "criteo" in suptitle(figure)
    spare = figure.axes[classes:]  # the legend goes in the first empty slot, if any
    legend = (spare[0] if spare else figure.axes[0]).get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["ce", "focal", "kl"]


def test_training_figure_plots_loss_and_auc_by_epoch_and_seconds(tmp_path):
    history = [epoch(i) for i in range(1, 4)]  # 1-based, as the record may number them
    history[2].valid["auc"] = 0.6  # the best is the middle epoch
    figure = training_figure(history, 2, "t")
    axes = np.array(figure.axes).reshape(2, 2)
    assert [ax.get_xlabel() for ax in axes[1]] == ["epoch", "wall-clock seconds"]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["training loss", "validation AUC"]
    for row, values in zip(axes, ([0.5] * 3, [0.71, 0.72, 0.6]), strict=True):
        for ax, xs in zip(row, ([1, 2, 3], [3.0, 4.5, 6.0]), strict=True):
            curve, best_line, star = ax.get_lines()
            assert list(curve.get_xdata()) == xs
            assert list(curve.get_ydata()) == pytest.approx(values)
            assert list(best_line.get_xdata()) == [xs[1]] * 2
            assert list(star.get_xdata()) == [xs[1]]
    legend = [t.get_text() for t in axes[1, 1].get_legend().get_texts()]
    assert legend == ["best epoch 2 (AUC 0.7200)"]


def test_training_figure_shows_the_logloss_where_no_auc_is_defined():
    history = [epoch(i) for i in range(1, 3)]
    for entry in history:  # a validation split of one class
        entry.valid.update(auc=float("nan"), logloss=0.4)
    axes = np.array(training_figure(history, 2, "t").axes).reshape(2, 2)
    assert axes[1, 0].get_ylabel() == "validation logloss"
    assert [t.get_text() for t in axes[1, 1].get_legend().get_texts()][0].startswith(
        "best epoch 2 (logloss "
    )


def test_best_entry_follows_the_record_else_the_first_best_auc():
    history = [epoch(i) for i in range(3)]
    history[2].valid["auc"] = history[1].valid["auc"]
    assert best_entry(history, 0).epoch == 0
    assert best_entry(history).epoch == 1
    assert best_entry(history, 99).epoch == 1  # no such epoch: the first of the equal bests
    history[0].valid["auc"] = float("nan")
    assert best_entry(history[:1]) is None


def _interrupted_run(tmp_path, callback) -> Path:
    from recloss import train

    cfg = {
        "data": {"dataset": "synthetic", "cache_dir": str(tmp_path / "cache"),
                 "synthetic": {"rows": 3000, "fields": 4, "cardinality": 20}},
        "model": {"params": {"hidden_dims": [8]}},
        "train": {"epochs": 3, "batch_size": 512, "progress": False,
                  "checkpoint_every_steps": 1},
    }  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "run", callbacks=[callback])
    return tmp_path / "run"


def test_a_run_in_progress_is_plotted_from_its_checkpoint(tmp_path, monkeypatch):
    from conftest import InterruptAfter

    from recloss.report import run_plots

    run_dir = _interrupted_run(tmp_path, InterruptAfter(2))
    saved, save_png = {}, run_plots.save_png

    def spy(figure, path, **kwargs):
        saved[path.name] = figure
        return save_png(figure, path, **kwargs)

    monkeypatch.setattr(run_plots, "save_png", spy)
    written = write_run_report(run_dir)
    assert sorted(p.name for p in written) == ["selection.png", "valid_auc.png"]
    assert all(p.read_bytes()[:4] == PNG_MAGIC for p in written)
    title = "run: deepfm on synthetic, loss autoloss (in progress, after epoch 2)"
    assert {suptitle(figure) for figure in saved.values()} == {title}


def test_a_run_before_its_first_epoch_has_nothing_to_plot(tmp_path):
    from conftest import InterruptAtStep

    run_dir = _interrupted_run(tmp_path, InterruptAtStep(2))
    with pytest.raises(RecLossError, match=r"run: no epoch has finished yet; nothing to plot"):
        write_run_report(run_dir)
