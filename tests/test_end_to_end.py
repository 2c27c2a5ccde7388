"""Full runs end to end (slow, `pytest -m slow`): the quick start's job and a small real bench."""

from __future__ import annotations

import json
import math

import pytest

from recloss.cli import main
from recloss.data.fetch import RecBoleWheel, fetch_ml100k
from recloss.errors import DataError
from recloss.rundir import RunDir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recloss_home(tmp_path_factory):
    """A RECLOSS_HOME holding MovieLens-100K, fetched from PyPI only."""
    home = tmp_path_factory.mktemp("home")
    try:
        fetch_ml100k(home, [RecBoleWheel()])
    except DataError as err:
        pytest.skip(f"could not fetch ml-100k from PyPI: {err}")
    return home


def test_quick_start_job_trains_autoloss_on_movielens(recloss_home, tmp_path, monkeypatch, capsys):
    """`recloss train` with every default: DeepFM + AutoLoss, 5-class MovieLens-100K, 10 epochs."""
    monkeypatch.setenv("RECLOSS_HOME", str(recloss_home))
    assert main(["train", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    run = RunDir(out.strip().splitlines()[-1].removeprefix("run directory: "))
    record = run.read_record()
    assert record.dataset.rows == {"train": 80_000, "valid": 10_000, "test": 10_000}
    assert 0.70 < record.test["auc"] < 1.0  # macro one-vs-rest AUC of the 5 rating classes
    assert 0.35 < record.test["accuracy"] < 1.0  # the majority class is about 0.34
    assert record.history[-1].strategy["controller_steps"] > 0
    assert set(record.weights) == {"focal", "kl", "hinge", "ce"}
    assert math.isclose(sum(record.weights.values()), 1.0, rel_tol=1e-4)
    assert run.file("controller.safetensors").is_file()
    assert "test auc" in out and "learned weight ce" in out


def test_demo_grid_one_seed_on_movielens_binary(recloss_home, tmp_path, monkeypatch):
    """A bench of every method on real binary data: cells finish, the report has every column."""
    monkeypatch.setenv("RECLOSS_HOME", str(recloss_home))
    grid = {
        "name": "e2e",
        "seeds": [1],
        "base": {
            "model": {"embed_dim": 8, "params": {"hidden_dims": [64, 64]}},
            "train": {"epochs": 2, "batch_size": 1024},
            "data": {"task": "binary"},
        },
        "datasets": {"ml": {"dataset": "movielens-100k"}},
        "models": ["deepfm"],
        "methods": ["ce", "focal", "darts", "bohb", "slf", "autoloss"],
    }
    grid["methods"] = {m: {"params": {"trials": 3}} if m == "bohb" else {} for m in grid["methods"]}
    path = tmp_path / "grid.yaml"
    path.write_text(json.dumps(grid))
    assert main(["bench", str(path), "--out", str(tmp_path / "out"), "--report"]) == 0
    rows = json.loads((tmp_path / "out/e2e/results.json").read_text())
    assert {r["method"] for r in rows if r["status"] == "done"} == set(grid["methods"])
    assert all(0.6 < r["test_auc"] < 1.0 for r in rows)  # rating >= 4 is learnable from ids
    report = (tmp_path / "out/e2e/report/report.md").read_text()
    for heading in ("CE", "Focal", "DARTS", "BOHB", "SLF", "AutoLoss"):
        assert heading in report
