"""The `recloss` command line: listing, errors as one line, train / eval / data round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recloss.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data_flags(tmp_path) -> list[str]:
    return [
        "--dataset",
        "synthetic",
        "--set",
        f"data.cache_dir={tmp_path / 'cache'}",
        "--set",
        "data.synthetic={rows: 3000, fields: 5, cardinality: 40}",
    ]


@pytest.fixture
def synthetic_flags(tmp_path, data_flags) -> list[str]:
    return data_flags + [
        "--out",
        str(tmp_path / "runs"),
        "--set",
        "model.embed_dim=4",
        "--set",
        "train.progress=false",
    ]


@pytest.mark.parametrize(
    "what,expected",
    [
        ("models", ["deepfm", "ipnn", "nfm", "autoint", "lr", "fm", "widedeep", "dcnv2"]),
        ("losses", ["ce", "focal", "kl", "hinge"]),
        ("strategies", ["autoloss", "weighted"]),
        ("datasets", ["movielens-100k", "criteo", "avazu", "frappe", "synthetic", "csv"]),
    ],
)
def test_list(capsys, what, expected):
    code, out, _ = run(capsys, "list", what)
    names = [line.split()[0] for line in out.splitlines()]
    assert code == 0 and set(expected) <= set(names)
    assert all(len(line.split()) > 1 for line in out.splitlines())  # each has a description


def test_unknown_model_lists_choices(capsys, synthetic_flags):
    code, out, err = run(capsys, "train", *synthetic_flags, "--model", "deepfn")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "deepfn" in err and "deepfm" in err and "autoint" in err


def test_bad_config_value_names_the_key(capsys, synthetic_flags):
    code, _, err = run(capsys, "train", *synthetic_flags, "--set", "train.lr=-1")
    assert code == 2 and "train.lr" in err and len(err.strip().splitlines()) == 1


def test_unknown_config_key_is_named(capsys, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  epoch: 3\n")
    code, _, err = run(capsys, "train", "--config", str(config))
    assert code == 2 and "train.epoch: unknown key" in err and str(config) in err


def test_invalid_yaml_names_file_and_line(capsys, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  epochs: 3\n bad: [\n")
    code, _, err = run(capsys, "train", "--config", str(config))
    assert code == 2 and f"{config} line" in err


def test_train_then_eval(capsys, synthetic_flags):
    code, out, _ = run(
        capsys, "train", *synthetic_flags, "--epochs", "2", "--loss", "ce", "--model", "fm"
    )
    assert code == 0
    assert "test auc" in out and "test logloss" in out
    run_dir = Path(out.strip().splitlines()[-1].split(": ", 1)[1])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    code, out, _ = run(capsys, "eval", str(run_dir))
    assert code == 0
    evaluated = dict(line.split() for line in out.splitlines())
    assert float(evaluated["auc"]) == pytest.approx(metrics["test"]["auc"], abs=1e-4)


def test_flags_override_config_file(capsys, tmp_path, synthetic_flags):
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  epochs: 5\n  batch_size: 64\nloss:\n  name: hinge\n")
    code, out, _ = run(capsys, "train", "--config", str(config), *synthetic_flags, "--epochs", "1")
    assert code == 0
    run_dir = Path(out.strip().splitlines()[-1].split(": ", 1)[1])
    saved = (run_dir / "config.yaml").read_text()
    assert "epochs: 1" in saved and "batch_size: 64" in saved and "name: hinge" in saved


def test_missing_data_path_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--dataset", "criteo", "--data", str(tmp_path / "nope.txt"))
    assert code == 2 and "nope.txt" in err and len(err.strip().splitlines()) == 1


def test_data_prepare_and_info(capsys, data_flags):
    code, out, _ = run(capsys, "data", "prepare", *data_flags)
    assert code == 0 and "prepared synthetic" in out
    code, out, _ = run(capsys, "data", "info", *data_flags)
    assert code == 0 and '"rows"' in out


# -- every model and every loss through `recloss train`, on each format the readers support ------

from datafiles import write_avazu, write_criteo, write_frappe, write_ml100k_grouplens  # noqa: E402

MODELS = ["lr", "fm", "widedeep", "deepfm", "ipnn", "nfm", "autoint", "dcnv2"]
LOSSES = ["ce", "focal", "kl", "hinge", "autoloss"]


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> dict[str, list[str]]:
    root = tmp_path_factory.mktemp("formats")
    return {
        "criteo": ["--dataset", "criteo", "--data", str(write_criteo(root / "train.txt", 600))],
        "avazu": ["--dataset", "avazu", "--data", str(write_avazu(root / "train.csv", 600))],
        "frappe": [
            "--dataset",
            "frappe",
            "--data",
            str(write_frappe(root / "frappe", (480, 60, 60))),
        ],
        "movielens-100k": [
            "--dataset",
            "movielens-100k",
            "--data",
            str(write_ml100k_grouplens(root / "ml-100k", rows=600)),
        ],
        "synthetic": [
            "--dataset",
            "synthetic",
            "--set",
            "data.synthetic={rows: 600, fields: 4, cardinality: 20}",
        ],
    }


def train_cell(capsys, tmp_path, flags: list[str], model: str, loss: str) -> dict:
    code, out, err = run(
        capsys,
        "train",
        *flags,
        "--model",
        model,
        "--loss",
        loss,
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--out",
        str(tmp_path / "runs"),
        "--set",
        f"data.cache_dir={tmp_path / 'cache'}",
        "--set",
        "model.embed_dim=4",
        "--set",
        "train.progress=false",
    )
    assert code == 0, err
    run_dir = Path(out.strip().splitlines()[-1].split(": ", 1)[1])
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.parametrize("dataset", ["criteo", "avazu", "frappe", "movielens-100k", "synthetic"])
@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_on_every_format(capsys, tmp_path, data_files, dataset, model):
    metrics = train_cell(capsys, tmp_path, data_files[dataset], model, "ce")
    assert set(metrics["test"]) >= {"auc", "logloss"}
    assert metrics["test"]["logloss"] > 0


@pytest.mark.parametrize("dataset", ["criteo", "avazu", "frappe", "movielens-100k", "synthetic"])
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_on_every_format(capsys, tmp_path, data_files, dataset, loss):
    metrics = train_cell(capsys, tmp_path, data_files[dataset], "deepfm", loss)
    assert metrics["test"]["logloss"] > 0
    if loss == "autoloss":
        assert set(metrics["strategy"]) == {f"weight_{c}" for c in ["focal", "kl", "hinge", "ce"]}


def test_bad_set_value_is_one_line(capsys):
    code, _, err = run(capsys, "train", "--set", "train.epochs=[")
    assert code == 2 and "train.epochs=[" in err and len(err.strip().splitlines()) == 1


def test_missing_controller_file_is_one_line(capsys, synthetic_flags, tmp_path):
    code, _, err = run(
        capsys, "train", *synthetic_flags, "--controller", str(tmp_path / "nope.safetensors")
    )
    assert code == 2 and "nope.safetensors" in err and len(err.strip().splitlines()) == 1
