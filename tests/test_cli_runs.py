"""The command line around a run: per-epoch lines and train.log, predict, resume, version."""

from __future__ import annotations

import re

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from datafiles import write_criteo

import recloss
from recloss.cli import main
from recloss.config import RunConfig
from recloss.errors import ConfigError
from recloss.rundir import RunDir


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def criteo_run(tmp_path, capsys):
    """A finished two-epoch run on a small Criteo file, progress shown as a user sees it."""
    data = write_criteo(tmp_path / "train.txt", rows=600)
    argv = ["train", "--dataset", "criteo", "--data", str(data), "--loss", "ce", "--epochs", "2"]
    argv += ["--out", str(tmp_path / "runs"), "--set", f"data.cache_dir={tmp_path / 'cache'}"]
    argv += ["--set", "model.embed_dim=4", "--set", "train.batch_size=64"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return RunDir(out.strip().splitlines()[-1].removeprefix("run directory: ")), data, out, err


def test_each_epoch_is_a_line_on_screen_and_in_train_log(criteo_run):
    folder, _, out, err = criteo_run
    record = folder.read_record()
    lines = folder.log.read_text().splitlines()
    assert [line.split("  ")[0] for line in lines[:2]] == ["epoch 1/2", "epoch 2/2"]
    for line, entry in zip(lines, record.history, strict=False):
        assert f"train loss {entry.train_loss:.4f}" in line
        assert f"valid auc {entry.valid['auc']:.4f}" in line
        assert ("(best)" in line) == (entry.epoch == record.best_epoch or entry.epoch == 1)
    assert lines[-1].startswith(f"test (best epoch {record.best_epoch})")
    assert f"auc {record.test['auc']:.4f}" in lines[-1]
    assert "epoch 1/2  train loss" in err and "epoch 1/2  train loss" not in out  # stdout: results


def test_predict_writes_one_probability_per_row_in_order(criteo_run, tmp_path, capsys):
    folder, data, _, _ = criteo_run
    expected = recloss.predict(folder.path, data)
    for name in ("preds.csv", "preds.parquet"):
        code, out, err = run(capsys, "predict", str(folder.path), "--data", str(data),
                             "--output", str(tmp_path / name))  # fmt: skip
        assert code == 0, err
        assert f"wrote {len(expected)} predictions" in out
        path = tmp_path / name
        table = pa_csv.read_csv(path) if name.endswith(".csv") else pq.read_table(path)
        assert table.column_names == ["probability"] and table.num_rows == 600
        got = table.column("probability").to_numpy()
        assert abs(got - expected).max() < 1e-6  # the CSV keeps enough digits


def test_predict_to_standard_output_writes_the_csv_there_and_the_summary_to_stderr(
    criteo_run, capsys
):
    folder, data, _, _ = criteo_run
    expected = recloss.predict(folder.path, data)
    code, out, err = run(capsys, "predict", str(folder.path), "--data", str(data), "--output", "-")
    assert code == 0, err
    header, *values = out.splitlines()
    assert header == "probability" and len(values) == 600
    assert abs(np.array(values, dtype=float) - expected).max() < 1e-6
    assert err == "wrote 600 predictions (one row per input row, in order) to standard output\n"


@pytest.mark.parametrize(
    "output, message",
    [
        ("p.txt", "give a .csv or .parquet file name, or - (standard output)"),
        ("train.txt/p.csv", "train.txt is a file, not a folder"),
        ("folder.csv", "a folder stands there; give a file name"),
    ],
)
def test_an_output_predictions_cannot_go_to_is_refused_before_any_row_is_scored(
    criteo_run, tmp_path, capsys, monkeypatch, output, message
):
    folder, data, _, _ = criteo_run
    (tmp_path / "folder.csv").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("recloss.runs.scoring.best_model", lambda *a: pytest.fail("loaded"))
    code, _, err = run(capsys, "predict", str(folder.path), "--data", str(data), "--output", output)
    assert code == 2 and err == f"recloss: error: --output {output}: {message}\n"


def test_several_problems_of_one_flag_name_it_once(capsys):
    code, _, err = run(capsys, "train", "--set", "train={lr: -1, epochs: 0}")
    assert code == 2 and err.count("--set train=") == 1 and err.count("\n") == 1
    assert err.startswith("recloss: error: --set train={lr: -1, epochs: 0}: train.")
    assert "; train.lr: Input should be greater than 0" in err or "; train.epochs: " in err


def test_resume_refuses_flags_and_a_finished_run_prints_its_table(criteo_run, capsys):
    folder, _, out, _ = criteo_run
    code, _, err = run(capsys, "train", "--resume", str(folder.path), "--epochs", "5")
    assert code == 2 and err.count("\n") == 1
    assert "--epochs: cannot be combined with --resume" in err
    code, again, _ = run(capsys, "train", "--resume", str(folder.path))
    assert code == 0 and again == out  # the same table and folder as when it finished


def test_results_table_names_the_macro_auc_and_rounds_seconds_and_rates(tmp_path, capsys):
    record = recloss.RunRecord.model_validate(
        {"test": {"auc": 0.7, "logloss": 1.2, "accuracy": 0.4}, "best_valid": {"auc": 0.7},
         "best_epoch": 1, "epochs": 1, "steps": 1, "history": [], "train_seconds": 12.34,
         "wall_seconds": 1.0, "samples_per_second": 48867.6, "device": "cpu",
         "dataset": {"name": "movielens-100k", "task": "multiclass"}}
    )  # fmt: skip
    from recloss.cli import print_record

    print_record(record)
    out = capsys.readouterr().out
    assert re.search(r"^test auc \(macro one-vs-rest\) +0\.7000$", out, re.M)
    assert re.search(r"^train seconds +12\.3$", out, re.M)
    assert re.search(r"^samples/s +48,868$", out, re.M)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert (
        exit_.value.code == 0
        and capsys.readouterr().out.strip() == f"recloss {recloss.__version__}"
    )


def test_run_folders_are_claimed_atomically(tmp_path):
    cfg = RunConfig(out=str(tmp_path))
    first, second = RunDir.new(cfg), RunDir.new(cfg)
    assert first.path != second.path and first.path.is_dir() and second.path.is_dir()


def test_an_out_folder_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "afile").touch()
    for out in ("afile", "afile/sub"):
        with pytest.raises(ConfigError, match=f"^out: .*{out}: a file stands where its folder"):
            RunDir.new(RunConfig(out=str(tmp_path / out)))


def test_an_out_folder_that_is_a_file_is_found_before_the_data_is_prepared(tmp_path, capsys):
    (tmp_path / "afile").touch()
    cache = tmp_path / "cache"
    argv = ["train", "--dataset", "synthetic", "--out", str(tmp_path / "afile" / "runs")]
    assert main([*argv, "--set", f"data.cache_dir={cache}"]) == 2
    assert capsys.readouterr().err == (
        f"recloss: error: --out {tmp_path}/afile/runs: out: {tmp_path}/afile/runs: a file stands "
        "where its folder would be\n"
    )
    assert not cache.exists()


def test_python_dash_m_runs_the_command_line():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "recloss", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == f"recloss {recloss.__version__}"


def test_a_reader_that_stops_early_ends_the_output_quietly():
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # as `recloss list | head -1` once head has its line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "recloss", "list"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == ""


@pytest.mark.parametrize(
    "argv, start",
    [
        (["--set", "train.lr=-1"], "--set train.lr=-1: train.lr: Input should be greater than 0"),
        (["--epochs", "0"], "--epochs 0: train.epochs: Input should be greater than 0"),
        (["--seed", "-1"], "--seed -1: train.seed: Input should be greater than or equal to 0"),
        (["--set", "train.lr=.inf"], "--set train.lr=.inf: train.lr: Input should be a finite"),
        (["--set", ".lr=3"], "--set '.lr=3': expected KEY=VALUE, KEY dotted as in train.lr"),
        (
            ["--set", "data.split=[.nan, 0.5, 0.5]"],
            "--set data.split=[.nan, 0.5, 0.5]: data.split.0: Input should be a finite number",
        ),
        (
            ["--set", "loss.params.controller_lr=.inf"],
            "--set loss.params.controller_lr=.inf: loss.params.controller_lr: Input should be a",
        ),
        (
            ["--set", "data.split=[0.5, 0.6, 0.1]"],
            "--set data.split=[0.5, 0.6, 0.1]: data.split: (0.5, 0.6, 0.1) must be",
        ),
        (
            ["--set", "data.split=[0.5, 0.5]"],
            "--set data.split=[0.5, 0.5]: data.split: [0.5, 0.5] must be 3 fractions",
        ),
        (
            ["--set", "model.params.dropout=2"],
            "--set model.params.dropout=2: model.params.dropout:",
        ),
        (["--model", "deepfn"], "--model deepfn: model.name: unknown model 'deepfn'"),
        (["--dataset", "nope"], "--dataset nope: data.dataset: unknown data set 'nope'; choose"),
        (
            ["--dataset", "Criteo1"],
            "--dataset Criteo1: data.dataset: unknown data set 'Criteo1' (did you mean criteo?)",
        ),
        (["--loss", "nope"], "--loss nope: loss.name: unknown loss or strategy 'nope'"),
        (
            ["--set", "loss.params.controler_lr=0.1"],
            "--set loss.params.controler_lr=0.1: loss.params.controler_lr: unknown parameter",
        ),
        (
            ["--set", "loss.params.controller_every=0"],
            "--set loss.params.controller_every=0: loss.params.controller_every: must be a",
        ),
        (
            ["--set", "loss.candidates=[focal, nope]"],
            "--set loss.candidates=[focal, nope]: loss.candidates: unknown loss 'nope'",
        ),
        (["--set", "loss.data.task=binary"], "--set loss.data.task=binary: loss.data: unknown"),
    ],
)
def test_errors_name_the_flag_that_gave_the_value(capsys, argv, start):
    code, _, err = run(capsys, "train", *argv)
    assert code == 2 and err.startswith(f"recloss: error: {start}") and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv, start",
    [
        (
            ["--set", "data.split=[0.9, 0.1, 0.0]"],
            "--set data.split=[0.9, 0.1, 0.0]: data.split: no",
        ),
        (
            ["--loss", "slf", "--set", "train.label_noise=channel"],
            "--set train.label_noise=channel",
        ),
        (["--set", "data.task=multiclass"], "--set data.task=multiclass: data.task: criteo"),
    ],
)
def test_errors_found_once_the_data_is_read_name_the_flag_too(tmp_path, capsys, argv, start):
    data = ["--dataset", "criteo", "--data", str(write_criteo(tmp_path / "t.txt", rows=60))]
    cache = ["--set", f"data.cache_dir={tmp_path / 'cache'}", "--out", str(tmp_path / "runs")]
    code, _, err = run(capsys, "train", *data, *cache, *argv)
    assert code == 2 and err.startswith(f"recloss: error: {start}") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_unknown_method_lists_the_two_stage_methods_too(capsys):
    code, _, err = run(capsys, "train", "--loss", "nope")
    assert code == 2 and "strategies: autoloss, bohb, darts" in err and ", race," in err


def test_model_params_errors_name_the_config_file(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("model:\n  params: {dropout: 2}\n")
    code, _, err = run(capsys, "train", "--config", str(config))
    assert code == 2 and err.startswith(f"recloss: error: {config}: model.params.dropout:")


def test_list_without_an_argument_lists_everything(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    headers = [line for line in out.splitlines() if not line.startswith(" ")]
    assert headers == ["models:", "losses:", "strategies:", "datasets:", "configs:"]
    assert "  deepfm " in out and "  autoloss " in out and "  bohb " in out and "  demo " in out


def test_an_auc_undefined_on_one_class_says_so_in_the_results(tmp_path, capsys, caplog):
    argv = ["train", "--dataset", "synthetic", "--loss", "ce", "--epochs", "1", "--out"]
    argv += [
        str(tmp_path),
        "--set",
        "data.synthetic.rows=20",
        "--set",
        f"data.cache_dir={tmp_path}",
    ]
    code, out, _ = run(capsys, *argv)  # 2 validation rows, both negative
    assert code == 0 and "its AUC is undefined" in caplog.text
    assert "best valid auc      undefined: the rows hold one class" in out.splitlines()
