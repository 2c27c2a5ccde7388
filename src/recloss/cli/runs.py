"""`recloss train`, `eval` and `predict`: a configuration from the flags, a run, its table."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING, Any

import yaml

from recloss.cli.parser import TRAIN_FLAGS
from recloss.config import RunConfig, load_config, origin_of
from recloss.errors import ConfigError

if TYPE_CHECKING:
    from recloss.rundir import RunRecord


def config_from_args(args: argparse.Namespace, flags: dict[str, str]) -> RunConfig:
    """The config file, then `--set` overrides, then the named flags (flags win)."""
    return _config_and_origins(args, flags)[0]


def _config_and_origins(
    args: argparse.Namespace, flags: dict[str, str]
) -> tuple[RunConfig, dict[str, str]]:
    """The run's configuration, and for each key given on the command line the flag that gave
    it."""
    overrides: dict[str, Any] = {}
    origins: dict[str, str] = {}  # key -> the flag that set it, for error messages
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or "" in key.split("."):
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, KEY dotted as in train.lr")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
        origins[key.strip()] = f"--set {item}"
    for flag, key in flags.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
            origins[key] = f"--{flag.replace('_', '-')} {value}"
    path = None
    if args.config is not None:
        from recloss.presets import resolve

        path = resolve(args.config, "run")
    cfg = load_config(path, overrides, origins)
    _check_names(cfg, str(path) if path is not None else "defaults", origins)
    return cfg, origins


def _check_names(cfg: RunConfig, source: str, origins: dict[str, str]) -> None:
    """The data set, model and method names checked now, the error naming the file or flag
    that gave the value."""
    from recloss.runs import check_names

    try:
        check_names(cfg)
    except ConfigError as err:
        raise ConfigError(f"{origin_of(err.key, origins) or source}: {err}") from None


def cmd_train(args: argparse.Namespace) -> None:
    from recloss.runs import resume, train
    from recloss.training.distributed import is_main

    if args.resume:
        _refuse_with_resume(args)
        record = resume(args.resume)
    else:
        cfg, origins = _config_and_origins(args, TRAIN_FLAGS)
        try:
            record = train(cfg)
        except ConfigError as err:  # found once the data is read: name the flag here too
            raise _named_by_flag(err, origins) from None
    if is_main():  # across ranks, rank 0 alone reports
        print_record(record)
        print(f"run directory: {record.run_dir}")


def _named_by_flag(err: ConfigError, origins: dict[str, str]) -> ConfigError:
    """`err` led by the flag that gave its key (which leads its message), if a flag did."""
    origin = origin_of(err.key or str(err).partition(":")[0], origins)
    return ConfigError(f"{origin}: {err}", err.key) if origin else err


def _refuse_with_resume(args: argparse.Namespace) -> None:
    """A resumed run keeps its saved configuration: flags that would change it are refused."""
    given = [
        f"--{flag.replace('_', '-')}" for flag in TRAIN_FLAGS if getattr(args, flag) is not None
    ]
    given += ["--set"] * bool(args.set) + ["--config"] * bool(args.config)
    if given:
        raise ConfigError(
            f"{', '.join(given)}: cannot be combined with --resume, which continues the run with "
            "its saved configuration; start a new run to change it"
        )


def metric_name(key: str, task: str | None) -> str:
    """A metric's name on screen: multi-class AUC is the macro one-vs-rest AUC."""
    return "auc (macro one-vs-rest)" if key == "auc" and task == "multiclass" else key


def print_record(record: RunRecord) -> None:
    task = record.dataset.task
    rows = [("test " + metric_name(k, task), v) for k, v in record.test.items()]
    if record.calibration is not None:
        uncalibrated = record.test_uncalibrated or {}
        rows += [(f"test {metric_name(k, task)} uncalibrated", v) for k, v in uncalibrated.items()]
        c = record.calibration
        rows += [(f"calibration ({c.method})", f"scale {c.scale:.4f}, bias {c.bias:.4f}")]
    rows += [("best valid " + metric_name(k, task), v) for k, v in record.best_valid.items()]
    rows += [(f"learned weight {c}", v) for c, v in record.weights.items()]
    rows += [
        ("epochs (best)", f"{record.epochs} ({record.best_epoch})"),
        ("train seconds", f"{record.train_seconds:.1f}"),
        ("samples/s", f"{record.samples_per_second:,.0f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {metric_text(value) if isinstance(value, float) else value}")


def metric_text(value: float) -> str:
    """A metric on screen; NaN is an AUC undefined on rows of one class."""
    return f"{value:.4f}" if math.isfinite(value) else "undefined: the rows hold one class"


def cmd_eval(args: argparse.Namespace) -> None:
    from recloss.rundir import RunDir
    from recloss.runs import evaluate

    group = args.group or RunDir(args.run_dir).read_config().train.gauc_by
    metrics = evaluate(args.run_dir, args.data, group=group)
    if not RunDir(args.run_dir).is_finished():
        print(f"{args.run_dir}: not finished; its best model so far", file=sys.stderr)
    task = "multiclass" if "accuracy" in metrics else "binary"  # `recloss.metrics.evaluate`
    rows = [(metric_name(k, task), metric_text(metrics[k])) for k in ("auc", "logloss", "accuracy")
            if k in metrics]  # fmt: skip
    if "gauc" in metrics:
        counted = f"{metrics['gauc_groups']:,} groups of both classes"
        counted += f", {metrics['gauc_rows']:.1%} of the rows"
        gauc = metrics["gauc"]
        text = f"{gauc:.4f}" if math.isfinite(gauc) else "undefined: no group holds both classes"
        rows.append((f"gauc by {group}", f"{text}  ({counted})"))
    width = max(len(name) for name, _ in rows)
    for name, text in rows:
        print(f"{name:<{width}}  {text}")


def cmd_predict(args: argparse.Namespace) -> None:
    from recloss.runs import predict_to_file
    from recloss.runs.scoring import STDOUT

    written = predict_to_file(args.run_dir, args.data, args.output, keep=args.keep)
    rows, skipped = "one row per input row, in order", written.skipped_lines
    if skipped:
        rows += f"; {skipped} skipped bad line{'s' * (skipped != 1)} got no row"
    to_stdout = args.output == STDOUT  # then the predictions are stdout, the summary is not
    where = "standard output" if to_stdout else written.path
    print(
        f"wrote {written.rows} predictions ({rows}) to {where}",
        file=sys.stderr if to_stdout else sys.stdout,
    )
