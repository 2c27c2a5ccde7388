import sys

import numpy as np
import pytest
import torch

from recloss.errors import CompatibilityError, ConfigError
from recloss.report import controller_curves, selection_trace, write_run_report
from recloss.report.run_plots import _grid_logits
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


def write_run(run_dir, history):
    """A finished run folder whose record has `history`; its other figures made up."""
    run_dir.mkdir(exist_ok=True)
    record = RunRecord(
        test={"auc": 0.7, "logloss": 0.5},
        best_valid=history[-1].valid,
        best_epoch=history[-1].epoch,
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
    with pytest.raises(ConfigError, match="no metrics.json"):
        write_run_report(tmp_path)
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(CompatibilityError, match="not a readable RunRecord"):
        write_run_report(tmp_path)


def test_missing_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    run_dir = write_run(tmp_path / "run", [epoch(0)])
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ConfigError, match=r"pip install 'recloss\[plot\]'"):
        write_run_report(run_dir)
