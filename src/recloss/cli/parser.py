"""The command line's arguments: every command, its flags, and the config key each flag sets."""

from __future__ import annotations

import argparse

from recloss import __version__
from recloss.cli.launch import QUIET_FLAG

# command-line flag -> dotted config key
TRAIN_FLAGS = {
    "dataset": "data.dataset",
    "data": "data.path",
    "model": "model.name",
    "loss": "loss.name",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "device": "train.device",
    "out": "out",
    "controller_every": "loss.params.controller_every",
    "hypergrad": "loss.params.hypergrad",
    "controller": "loss.params.controller",
    "freeze_controller": "loss.params.freeze_controller",
}
LISTS = ["models", "losses", "strategies", "datasets", "configs"]  # what `recloss list` shows
DATA_FLAGS = {"dataset": "data.dataset", "data": "data.path"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recloss", description="Train deep recommenders with automatically searched losses."
    )
    parser.add_argument("--version", action="version", version=f"recloss {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model (default: DeepFM on MovieLens-100K)")
    _add_config_flags(train)
    train.add_argument("--model", help="model name (see `recloss list models`)")
    train.add_argument(
        "--loss",
        help="a candidate loss (`recloss list losses`) or a strategy (`recloss list strategies`)",
    )
    train.add_argument("--epochs", type=int, help="train.epochs (default: the data set's)")
    train.add_argument("--batch-size", type=int, help="train.batch_size (default: the data set's)")
    train.add_argument(
        "--seed", type=int, help="train.seed: initial weights, dropout and batch order (default 42)"
    )
    train.add_argument("--out", help="folder that receives the run directory (default: runs)")
    train.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], help="train.device (default: auto)"
    )
    train.add_argument(
        "--controller-every",
        type=int,
        metavar="K",
        help="AutoLoss: update the controller every K training steps",
    )
    train.add_argument(
        "--hypergrad",
        choices=["finite_diff", "jvp", "unrolled", "first_order"],
        help="AutoLoss: how the controller's hypergradient is computed (default: finite_diff)",
    )
    train.add_argument(
        "--controller", metavar="FILE", help="AutoLoss: start from a saved controller"
    )
    train.add_argument(
        "--freeze-controller",
        action="store_true",
        default=None,
        help="AutoLoss: keep the controller fixed (transfer)",
    )
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    train.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="data-parallel training in N processes on this machine (one per GPU), through "
        "torchrun; train.batch_size is the global batch",
    )
    # given by `--nproc` to its ranks: their errors go to the launcher, which prints one line
    train.add_argument(QUIET_FLAG, action="store_true", help=argparse.SUPPRESS)

    pred = commands.add_parser("predict", help="write a finished run's predictions for a file")
    pred.add_argument("run_dir", help="a finished run's directory")
    pred.add_argument("--data", required=True, help="a file of the run's data format")
    pred.add_argument(
        "--output", required=True, help="preds.csv or preds.parquet, or - for CSV on stdout"
    )
    pred.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="COLUMN",
        help="a column of the file written as it is before the predictions, e.g. --keep id "
        "(repeatable)",
    )

    ev = commands.add_parser("eval", help="evaluate a finished run's best model")
    ev.add_argument("run_dir", help="a finished run's directory")
    ev.add_argument("--data", help="a new file of the run's data format (default: its test split)")
    ev.add_argument(
        "--group",
        metavar="FIELD",
        help="also the AUC within each value of this categorical field (gAUC), e.g. user_id "
        "(default: the run's train.gauc_by)",
    )

    data = commands.add_parser("data", help="prepare or show a data set; list or clean caches")
    data.add_argument(
        "action",
        choices=["prepare", "info", "ls", "clean"],
        help="prepare: build the data set's cache; info: its schema, splits and vocabulary; "
        "ls: the caches and their sizes; clean: remove caches (all, or --dataset's)",
    )
    _add_config_flags(data)
    data.add_argument("--json", action="store_true", help="prepare, info: the raw metadata")
    data.add_argument("--stale-only", action="store_true", help="clean: killed runs' leftovers")

    lst = commands.add_parser("list", help="list what can be named in a config")
    lst.add_argument(
        "what",
        nargs="?",
        choices=LISTS,
        help="configs: the shipped grids and run configs, by the name commands take "
        "(default: everything)",
    )

    bench = commands.add_parser("bench", help="run a grid of data sets x models x methods x seeds")
    bench.add_argument(
        "grid",
        help="grid YAML file, or a shipped grid's name: demo, paper/criteo, ... "
        "(see `recloss list configs`)",
    )
    bench.add_argument(
        "--out", default="runs", help="folder that receives <grid name>/ (default: runs)"
    )
    bench.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="file or folder of the grid's data set NAME (repeatable)",
    )
    bench.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any grid key, e.g. --set seeds=[1,2] (repeatable)",
    )
    bench.add_argument(
        "--list", action="store_true", help="list the cells and their state; run none"
    )
    bench.add_argument(
        "--report", action="store_true", help="then write report.md, report.html and plots"
    )
    bench.add_argument(
        "--report-dir",
        metavar="DIR",
        help="folder of the report (default: <out>/<grid name>/report)",
    )

    report = commands.add_parser("report", help="write PNG plots of a run, or a bench's report")
    report.add_argument("run_dir", help="a run directory or a bench directory (<out>/<grid name>)")
    report.add_argument(
        "--report-dir",
        metavar="DIR",
        help="bench directories: folder of the report (default: BENCH_DIR/report)",
    )
    return parser


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE|NAME",
        help="YAML run configuration file, or a shipped one's name (see `recloss list configs`)",
    )
    p.add_argument("--dataset", help="data set name (see `recloss list datasets`)")
    p.add_argument("--data", metavar="PATH", help="data file or folder")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set train.lr=0.002 (repeatable)",
    )
