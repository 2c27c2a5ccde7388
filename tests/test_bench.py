"""`recloss bench`: grid validation, cells and their order, resuming, results and the report."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest

from recloss import bench, presets
from recloss.bench import runner
from recloss.cli import main
from recloss.errors import ConfigError
from recloss.rundir import RunDir, RunRecord
from recloss.runs import prepare_data

GRID = {
    "name": "tiny",
    "seeds": [1, 2],
    "base": {"model": {"embed_dim": 4}, "train": {"epochs": 2, "batch_size": 256}},
    "datasets": {
        "syn": {"dataset": "synthetic", "synthetic": {"rows": 3000, "fields": 5, "cardinality": 40}}
    },
    "models": {"deepfm": {"params": {"hidden_dims": [16]}}},
    "methods": ["focal", "ce", "autoloss"],
    "transfer": {
        "methods": ["ce", "autoloss"],
        "models": {"source": "deepfm", "targets": {"nfm": {"params": {"hidden_dims": [8]}}}},
        "datasets": {
            "source": "syn",
            "targets": {
                "syn2": {
                    "dataset": "synthetic",
                    "synthetic": {"rows": 2000, "fields": 4, "cardinality": 30, "seed": 3},
                }
            },
        },
    },
}


def grid_dict(**changes) -> dict:
    d = copy.deepcopy(GRID)
    d.update(changes)
    return d


@pytest.fixture
def grid(tmp_path) -> bench.Grid:
    d = grid_dict()
    d["base"]["data"] = {"cache_dir": str(tmp_path / "cache")}
    return bench.grid_from_dict(d)


def fake_record(auc: float) -> RunRecord:
    def epoch(i: int, seconds: float, valid_auc: float) -> dict:
        return {"epoch": i, "step": 10 * (i + 1), "seconds": seconds, "train_loss": 0.6,
                "samples_per_second": 1000.0, "valid": {"auc": valid_auc}}  # fmt: skip

    return RunRecord.model_validate(
        {
            "test": {"auc": auc, "logloss": 0.5},
            "best_valid": {"auc": auc},
            "best_epoch": 1,
            "epochs": 2,
            "steps": 20,
            "train_seconds": 2.0,
            "wall_seconds": 2.5,
            "samples_per_second": 1000.0,
            "history": [epoch(0, 1.0, auc - 0.01), epoch(1, 2.5, auc)],
            "dataset": {"name": "synthetic"},
            "device": "cpu",
        }
    )


class FakeTraining:
    """Stands in for `train` and `resume`: writes the run record, counts and records calls."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.trained: list[Path] = []
        self.resumed: list[Path] = []
        self.interrupt_at = interrupt_at

    def train(self, cfg, run_dir) -> RunRecord:
        if len(self.trained) == self.interrupt_at:
            raise KeyboardInterrupt
        self.trained.append(Path(run_dir))
        RunDir(run_dir).write_config(cfg)
        return self._finish(RunDir(run_dir))

    def resume(self, run_dir) -> RunRecord:
        self.resumed.append(Path(run_dir))
        return self._finish(RunDir(run_dir))

    @staticmethod
    def _finish(folder: RunDir) -> RunRecord:
        record = fake_record(0.7)
        folder.write_record(record)
        return record


@pytest.fixture
def fake(monkeypatch) -> FakeTraining:
    f = FakeTraining()
    monkeypatch.setattr(runner, "train", f.train)
    monkeypatch.setattr(runner, "resume", f.resume)
    monkeypatch.setattr(runner, "prepare_data", lambda cfg, data: None)
    return f


# -- the grid ------------------------------------------------------------------------------------
def test_cells_seed_by_seed_transfers_after_their_sources(grid, tmp_path):
    cells = bench.expand(grid, tmp_path)
    keys = [c.key for c in cells]
    # per seed: 3 main cells, NFM (CE, AL*), syn2 (CE, AL*)
    assert len(keys) == 2 * (3 + 2 + 2) == len(set(keys))
    assert keys[:7] == [
        "syn/deepfm/focal/seed1",
        "syn/deepfm/ce/seed1",
        "syn/deepfm/autoloss/seed1",
        "syn/nfm/ce/seed1",
        "syn/nfm/autoloss-from-deepfm/seed1",
        "syn2/deepfm/ce/seed1",
        "syn2/deepfm/autoloss-from-syn/seed1",
    ]
    for cell in cells:
        if cell.source_key is not None:
            assert keys.index(cell.source_key) < keys.index(cell.key)


def test_cell_configs_merge_base_dataset_model_method_seed(grid, tmp_path):
    cells = {c.key: c for c in bench.expand(grid, tmp_path)}
    cfg = cells["syn/deepfm/focal/seed2"].config
    assert (cfg.model.name, cfg.model.embed_dim, cfg.model.params) == (
        "deepfm",
        4,
        {"hidden_dims": [16]},
    )
    assert (cfg.loss.name, cfg.train.seed, cfg.train.epochs) == ("focal", 2, 2)
    assert cfg.data.synthetic.rows == 3000 and not cfg.train.progress


def test_transfer_cells_load_the_source_controller_frozen(grid, tmp_path):
    cells = {c.key: c for c in bench.expand(grid, tmp_path)}
    params = cells["syn2/deepfm/autoloss-from-syn/seed2"].config.loss.params
    assert params == {
        "controller": str(tmp_path / "cells/syn/deepfm/autoloss/seed2/controller.safetensors"),
        "freeze_controller": True,
    }
    assert cells["syn/nfm/ce/seed1"].config.model.params == {"hidden_dims": [8]}


@pytest.mark.parametrize(
    "change,key",
    [
        ({"methods": {"ce": {"nme": "ce"}}}, "methods.ce.nme: unknown key (did you mean name?)"),
        ({"datasets": {"syn": {"task": "ternary"}}}, "datasets.syn.task"),
        (
            {"datasets": {"syn": {"dataset": "synthtic"}}},
            "datasets.syn.dataset: unknown data set 'synthtic' (did you mean synthetic?)",
        ),
        ({"models": {"deepfm": {"embed_dim": -1}}}, "models.deepfm.embed_dim"),
        ({"models": {"deepfm": {"dropout": 0.1}}}, "models.deepfm.dropout: unknown key"),
        ({"base": {"train": {"lr": -1}}}, "base.train.lr"),
        ({"models": {"deepfn": {}}}, "models.deepfn: unknown model 'deepfn'"),
        (
            {"models": {"deepfm": {"params": {"hiden_dims": [8]}}}},
            "models.deepfm: model.params.hiden",
        ),
        (
            {"methods": ["ce", "autolos"]},
            "methods.autolos: loss.name: unknown loss or strategy 'autolos' (did you mean autolo",
        ),
        (
            {"methods": {"al": {"name": "autoloss", "params": {"controller_evry": 7}}}},
            "methods.al: loss.params.controller_evry",
        ),
        ({"seeds": []}, "seeds"),
        ({"seeds": [1, 1]}, "seeds"),
        ({"seeds": [-1]}, "seeds.0: Input should be greater than or equal to 0"),
        ({"name": "a/b"}, "name"),
        ({"compare": "bohb"}, "compare"),
        ({"datasets": {}}, "datasets"),
        ({"transfer": {"methods": ["slf"]}}, "transfer.methods"),
        ({"methods": ["ce", "darts"], "transfer": {"methods": ["darts"]}}, "transfer.methods"),
        (
            {"transfer": {"methods": ["ce"], "models": {"source": "ipnn", "targets": ["nfm"]}}},
            "transfer.models.source",
        ),
        (
            {
                "transfer": {
                    "methods": ["ce"],
                    "models": {"source": "deepfm", "targets": ["deepfm"]},
                }
            },
            "transfer.models.targets.deepfm",
        ),
        (
            {
                "transfer": {
                    "methods": ["ce"],
                    "datasets": {
                        "source": "syn",
                        "targets": {"ml": {"dataset": "movielens-100k", "task": "multiclass"}},
                    },
                }
            },
            "transfer.datasets.targets.ml: task",
        ),
    ],
)
def test_grid_errors_name_the_key(change, key):
    with pytest.raises(ConfigError) as err:
        bench.grid_from_dict(grid_dict(**change), "grid.yaml")
    message = str(err.value)
    assert message.startswith("grid.yaml: ") and key in message and "\n" not in message


def test_lists_and_mappings_are_both_accepted():
    g = bench.grid_from_dict(
        grid_dict(
            models=["deepfm", "ipnn"],
            methods={"al": {"name": "autoloss", "label": "AL"}},
            transfer=None,
        )
    )
    assert list(g.models) == ["deepfm", "ipnn"] and g.compared() == "al"
    assert bench.layout(g).methods == {"al": "AL"}


def test_data_option_points_a_data_set_at_its_file(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(json.dumps(grid_dict()))  # JSON is YAML
    g = bench.load_grid(path, {"seeds": [7]}, {"syn2": "/data/avazu.csv"})
    assert g.transfer.datasets.targets["syn2"]["path"] == "/data/avazu.csv" and g.seeds == [7]
    with pytest.raises(ConfigError, match="no data set 'criteo'.*syn, syn2"):
        bench.load_grid(path, data={"criteo": "x"})
    with pytest.raises(ConfigError, match=r"no data set 'syn3' in the grid \(did you mean syn\?\)"):
        bench.load_grid(path, data={"syn3": "x"})


def test_a_missing_data_file_stops_the_bench_before_any_cell(tmp_path, fake, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = grid_dict(datasets={"clicks": {"dataset": "csv", "path": "clicks.csv"}}, transfer=None)
    with pytest.raises(
        ConfigError, match=f"^data set clicks: clicks.csv does not exist .*{tmp_path}"
    ):
        bench.run_bench(bench.grid_from_dict(d), tmp_path / "out")
    assert not fake.trained and not (tmp_path / "out").exists()


def test_an_error_from_an_override_names_it(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(json.dumps(grid_dict()))
    with pytest.raises(ConfigError, match=f"^{path} with --set seeds, epoch: epoch: unknown key"):
        bench.load_grid(path, {"seeds": [7], "epoch": 3})


# -- running -------------------------------------------------------------------------------------
def test_rerun_trains_no_finished_cell(grid, tmp_path, fake):
    root = tmp_path / "bench"
    bench.run_bench(grid, root, progress=False)
    assert len(fake.trained) == 14
    bench.run_bench(grid, root, progress=False)
    assert len(fake.trained) == 14 and not fake.resumed


def test_interrupted_bench_continues_where_it_stopped(grid, tmp_path, monkeypatch):
    root = tmp_path / "bench"
    first = FakeTraining(interrupt_at=5)
    monkeypatch.setattr(runner, "train", first.train)
    with pytest.raises(KeyboardInterrupt):
        bench.run_bench(grid, root, progress=False)
    # the sixth cell was interrupted after an epoch: it has a checkpoint, no metrics
    sixth = bench.cell_dir(root, bench.expand(grid, root)[5].key)
    RunDir(sixth).write_config(bench.expand(grid, root)[5].config)
    RunDir(sixth).checkpoint.write_bytes(b"")
    second = FakeTraining()
    monkeypatch.setattr(runner, "train", second.train)
    monkeypatch.setattr(runner, "resume", second.resume)
    bench.run_bench(grid, root, progress=False)
    assert second.resumed == [sixth]
    assert len(second.trained) == 14 - 5 - 1
    assert not set(first.trained) & set(second.trained)


def test_changed_grid_refuses_stale_cells(grid, tmp_path, fake):
    root = tmp_path / "bench"
    bench.run_bench(grid, root, progress=False)
    changed = grid.model_copy(update={"base": {**grid.base, "train": {"epochs": 3}}})
    with pytest.raises(ConfigError, match="another configuration"):
        bench.run_bench(changed, root, progress=False)
    assert bench.load_bench(root) == grid  # the grid its cells ran with, for their report


def test_a_failed_cell_is_recorded_and_its_transfers_skipped(grid, tmp_path, fake, monkeypatch):
    def train(cfg, run_dir):
        if cfg.loss.name == "autoloss" and not cfg.loss.params:
            raise ConfigError("loss.params: broken")
        return fake.train(cfg, run_dir)

    monkeypatch.setattr(runner, "train", train)
    root = tmp_path / "bench"
    rows = bench.run_bench(grid, root, progress=False)
    failed = {r["run_dir"] for r in rows if r["status"] == "failed"}
    assert failed == {
        f"cells/{k}"
        for k in (
            "syn/deepfm/autoloss/seed1",
            "syn/nfm/autoloss-from-deepfm/seed1",
            "syn2/deepfm/autoloss-from-syn/seed1",
            "syn/deepfm/autoloss/seed2",
            "syn/nfm/autoloss-from-deepfm/seed2",
            "syn2/deepfm/autoloss-from-syn/seed2",
        )
    }
    key = "syn/nfm/autoloss-from-deepfm/seed1"
    folder = RunDir(root / "cells" / key)
    assert folder.has_error() and bench.state(root, key) == "failed"
    error = folder.file(RunDir.ERROR).read_text()
    assert "source cell syn/deepfm/autoloss/seed1 did not finish" in error


def test_a_data_set_that_cannot_be_prepared_is_tried_once_not_for_each_cell(
    tmp_path, fake, monkeypatch
):
    (tmp_path / "clicks.csv").write_text("a,y\n1,0\n2,1\n")
    clicks = {"dataset": "csv", "path": str(tmp_path / "clicks.csv")}
    d = grid_dict(datasets={"clicks": clicks | {"table": {"label": "y", "categorical": ["b"]}}})
    d["base"]["data"], d["transfer"] = {"cache_dir": str(tmp_path / "cache")}, None
    tries = []

    def prepare(cfg, data):
        tries.append(cfg)
        return prepare_data(cfg, data)

    monkeypatch.setattr(runner, "prepare_data", prepare)
    root = tmp_path / "bench"
    rows = bench.run_bench(bench.grid_from_dict(d), root, progress=False)
    assert len(tries) == 1 and not fake.trained
    assert [r["status"] for r in rows] == ["failed"] * 6
    first, *others = [RunDir(root / r["run_dir"]).file(RunDir.ERROR).read_text() for r in rows]
    assert first.startswith("data.table.categorical: column 'b' is not in ")
    again = "(found preparing the data set of clicks/deepfm/focal/seed1; not prepared again)"
    assert others == [f"{first} {again}"] * 5


def test_results_table_has_one_row_per_cell(grid, tmp_path, fake):
    root = tmp_path / "bench"
    bench.run_bench(grid, root, progress=False)
    with (root / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 14 == len(json.loads((root / "results.json").read_text()))
    row = next(r for r in rows if r["run_dir"] == "cells/syn/nfm/autoloss-from-deepfm/seed2")
    assert (row["dataset"], row["model"], row["method"], row["source"], row["seed"]) == (
        "syn",
        "nfm",
        "autoloss",
        "deepfm",
        "2",
    )
    assert float(row["test_auc"]) == 0.7 and float(row["time_to_best_seconds"]) == 2.5


def test_real_cells_train_transfer_and_report(tmp_path, capsys):
    """End to end with real training: two seeds of CE and AutoLoss, a transfer, the report."""
    d = grid_dict(methods=["ce", "autoloss"])
    d["base"]["data"] = {"cache_dir": str(tmp_path / "cache")}
    d["transfer"].pop("datasets")
    path = tmp_path / "grid.yaml"
    path.write_text(json.dumps(d))
    out, docs = tmp_path / "runs", tmp_path / "docs"
    code = main(["bench", str(path), "--out", str(out), "--report-dir", str(docs)])
    assert code == 0, capsys.readouterr().err
    root = out / "tiny"
    assert (root / "cells/syn/deepfm/autoloss/seed1/controller.safetensors").is_file()
    transfer = RunDir(root / "cells/syn/nfm/autoloss-from-deepfm/seed1").read_record()
    assert transfer.test["auc"] > 0
    assert {p.name for p in docs.iterdir()} == {
        "report.md",
        "report.html",
        "efficiency.png",
        "valid_auc_time.png",
    }
    report = (docs / "report.md").read_text()
    assert "| Dataset | Model | Metric | CE | AutoLoss |" in report
    assert "DeepFM \u2192 NFM on syn" in report and "AutoLoss\\*" in report
    assert main(["report", str(root), "--report-dir", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "report.md").read_text() == report


def test_cli_lists_cells_and_reports_grid_errors_on_one_line(tmp_path, capsys):
    path = tmp_path / "grid.yaml"
    path.write_text(json.dumps(grid_dict()))
    assert main(["bench", str(path), "--out", str(tmp_path), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 14 and lines[0] == "pending  syn/deepfm/focal/seed1"
    assert main(["bench", str(path), "--set", "models.deepfm.embed_dim=0", "--list"]) == 2
    err = capsys.readouterr().err
    assert "models.deepfm.embed_dim" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", [p.name for p in presets.list_presets("grid")])
def test_shipped_grids_are_valid(name):
    grid = bench.load_grid(presets.resolve(name, "grid"))
    assert bench.expand(grid, Path("/bench")) and grid.compared() == "autoloss"


def test_demo_grid_compares_every_strategy_and_the_papers_candidate_losses():
    from recloss.runs import SEARCHES
    from recloss.search import STRATEGIES
    from recloss.search.autoloss import DEFAULT_CANDIDATES

    grid = bench.load_grid(presets.resolve("demo", "grid"))
    methods = {grid.method(k) for k in grid.methods}
    builtin_losses = set(DEFAULT_CANDIDATES)  # the paper's columns; gce is an extra candidate
    strategies = set(STRATEGIES.names()) | set(SEARCHES.names())  # bohb: a search only
    assert methods == (strategies - {"weighted"}) | builtin_losses
    assert grid.transfer.models and grid.transfer.datasets and len(grid.seeds) >= 3
