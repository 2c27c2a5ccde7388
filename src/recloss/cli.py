"""The `recloss` command line: parses arguments and calls the library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from recloss.config import RunConfig, load_config
from recloss.errors import ConfigError, RecLossError

if TYPE_CHECKING:
    from recloss.rundir import RunRecord

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
DATA_FLAGS = {"dataset": "data.dataset", "data": "data.path"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recloss", description="Train deep recommenders with automatically searched losses."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model (default: DeepFM on MovieLens-100K)")
    _add_config_flags(train)
    train.add_argument("--model", help="model name (see `recloss list models`)")
    train.add_argument("--loss", help="candidate loss or strategy (see `recloss list losses`)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--out", help="folder that receives the run directory (default: runs)")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"])
    train.add_argument(
        "--controller-every",
        type=int,
        metavar="K",
        help="AutoLoss: update the controller every K training steps",
    )
    train.add_argument("--hypergrad", choices=["finite_diff", "jvp", "unrolled", "first_order"])
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

    ev = commands.add_parser("eval", help="evaluate a finished run's best model")
    ev.add_argument("run_dir")
    ev.add_argument("--data", help="a new file of the run's data format (default: its test split)")

    data = commands.add_parser("data", help="prepare a data set or show what is cached")
    data.add_argument("action", choices=["prepare", "info"])
    _add_config_flags(data)

    lst = commands.add_parser("list", help="list what can be named in a config")
    lst.add_argument("what", choices=["models", "losses", "strategies", "datasets"])

    bench = commands.add_parser("bench", help="run a grid of data sets x models x methods x seeds")
    bench.add_argument("grid", help="grid YAML file (see configs/demo/demo.yaml)")
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
    p.add_argument("--config", metavar="FILE", help="YAML run configuration")
    p.add_argument("--dataset", help="data set name (see `recloss list datasets`)")
    p.add_argument("--data", metavar="PATH", help="data file or folder")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set train.lr=0.002 (repeatable)",
    )


def config_from_args(args: argparse.Namespace, flags: dict[str, str]) -> RunConfig:
    """The config file, then `--set` overrides, then the named flags (flags win)."""
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
    for flag, key in flags.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    return load_config(args.config, overrides)


def cmd_train(args: argparse.Namespace) -> None:
    from recloss.runs import resume, train

    record = resume(args.resume) if args.resume else train(config_from_args(args, TRAIN_FLAGS))
    print_record(record)
    print(f"run directory: {record.run_dir}")


def print_record(record: RunRecord) -> None:
    rows = [("test " + k, v) for k, v in record.test.items()]
    rows += [("best valid " + k, v) for k, v in record.best_valid.items()]
    rows += [(f"learned weight {c}", v) for c, v in record.weights.items()]
    rows += [
        ("epochs (best)", f"{record.epochs} ({record.best_epoch + 1})"),
        ("train seconds", record.train_seconds),
        ("samples/s", record.samples_per_second),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{name:<{width}}  {text}")


def cmd_eval(args: argparse.Namespace) -> None:
    from recloss.runs import evaluate

    for key, value in evaluate(args.run_dir, args.data).items():
        print(f"{key:<10}{value:.4f}")


def cmd_data(args: argparse.Namespace) -> None:
    from recloss.data import prepare_dataset

    cfg = config_from_args(args, DATA_FLAGS)
    dataset = prepare_dataset(cfg.data, progress=args.action == "prepare")
    if args.action == "prepare":
        print(f"prepared {cfg.data.dataset} in {dataset.root}")
    print(json.dumps(dataset.meta, indent=2, default=str))


def _registry(what: str) -> dict[str, Any]:
    """Name -> object of what `recloss list` shows."""
    if what == "models":
        from recloss.models import MODELS as registry
    elif what == "losses":
        from recloss.losses import LOSSES as registry
    elif what == "strategies":
        from recloss.runs import SEARCHES
        from recloss.search import STRATEGIES

        # a two-stage method takes the name of the online strategy it searches with
        return {n: STRATEGIES.get(n) for n in STRATEGIES} | {n: SEARCHES.get(n) for n in SEARCHES}
    else:
        from recloss.data import DATASETS as registry
    return {name: registry.get(name) for name in registry}


def cmd_list(args: argparse.Namespace) -> None:
    items = _registry(args.what)
    for name in sorted(items):
        line = f"{name:<16}{_describe(items[name])}"
        if args.what == "models":
            from recloss.models import default_params

            params = ", ".join(f"{k}={v}" for k, v in default_params(name).items())
            line += f"  [{params}]"
        print(line)


def _describe(obj: Any) -> str:
    if hasattr(obj, "expects"):  # a data set spec
        return f"{obj.task} task, min_count {obj.min_count}; {obj.expects}"
    doc = getattr(obj, "description", None) or getattr(obj, "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def cmd_bench(args: argparse.Namespace) -> None:
    from recloss import bench

    overrides = {k: yaml.safe_load(v) for k, v in _key_values(args.set, "--set").items()}
    grid = bench.load_grid(args.grid, overrides, _key_values(args.data, "--data"))
    root = bench.bench_dir(grid, args.out)
    if args.list:
        for cell in bench.expand(grid, root):
            print(f"{bench.state(root, cell.key):<8} {cell.key}")
        return
    rows = bench.run_bench(grid, root)
    print(f"results: {root / 'results.csv'}")
    if args.report or args.report_dir:
        for path in bench.write_report(grid, root, args.report_dir):
            print(path)
    failed = [row["run_dir"] for row in rows if row["status"] != "done"]
    if failed:
        raise RecLossError(
            f"{len(failed)} cells did not finish (see error.txt in each); "
            "rerun the same command to retry them"
        )


def _key_values(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE")
        pairs[key.strip()] = value
    return pairs


def cmd_report(args: argparse.Namespace) -> None:
    from recloss import bench
    from recloss.report import write_run_report

    run_dir = Path(args.run_dir)
    if bench.is_bench(run_dir):
        paths = bench.write_report(bench.load_bench(run_dir), run_dir, args.report_dir)
    else:
        paths = write_run_report(run_dir)
    for path in paths:
        print(path)


COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "data": cmd_data,
    "list": cmd_list,
    "bench": cmd_bench,
    "report": cmd_report,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (RecLossError, OSError) as err:  # OSError: a path the user gave (unreadable, no space)
        print(f"recloss: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = {
            "train": " (resume with `recloss train --resume RUN_DIR`)",
            "bench": " (rerun the same command to continue)",
        }.get(args.command, "")
        print(f"recloss: interrupted{hint}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
