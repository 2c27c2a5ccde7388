"""`recloss data`, `list`, `bench` and `report`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from recloss.cli.parser import DATA_FLAGS, LISTS
from recloss.cli.runs import config_from_args
from recloss.errors import ConfigError, RecLossError


def cmd_data(args: argparse.Namespace) -> None:
    from recloss.data import prepare_dataset
    from recloss.data.inventory import run_ls_or_clean
    from recloss.data.summary import format_info

    cfg = config_from_args(args, DATA_FLAGS)
    if args.action in ("ls", "clean"):  # the caches under data.cache_dir / $RECLOSS_HOME/cache
        named = cfg.data.dataset if _names_a_dataset(args) else None  # none named: every cache
        return run_ls_or_clean(args.action, cfg.data.cache_dir, named, args.stale_only)
    dataset = prepare_dataset(cfg.data, progress=args.action == "prepare")
    if args.action == "prepare":
        print(f"prepared {cfg.data.dataset} in {dataset.root}")
    print(json.dumps(dataset.meta, indent=2, default=str) if args.json else format_info(dataset))


def _names_a_dataset(args: argparse.Namespace) -> bool:
    """Whether the command line names a data set: `--dataset`, `--set data.dataset=` or a
    config file (whose data set, given or default, is the one it trains on)."""
    set_keys = [item.partition("=")[0].strip() for item in args.set]
    return args.dataset is not None or args.config is not None or "data.dataset" in set_keys


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
    elif what == "configs":
        from recloss.presets import list_presets

        return {preset.name: preset for preset in list_presets()}
    else:
        from recloss.data import DATASETS as registry
    return {name: registry.get(name) for name in registry}


def cmd_list(args: argparse.Namespace) -> None:
    for what in [args.what] if args.what else LISTS:
        if not args.what:
            print(f"{what}:")
        _list(what, indent="" if args.what else "  ")


def _list(what: str, indent: str) -> None:
    items = _registry(what)
    for name in sorted(items):
        line = f"{indent}{name:<16}{_describe(items[name])}"
        if what == "models":
            from recloss.models import default_params

            params = ", ".join(f"{k}={v}" for k, v in default_params(name).items())
            line += f"  [{params}]"
        print(line)


def _describe(obj: Any) -> str:
    from recloss.presets import Preset

    if isinstance(obj, Preset):  # a shipped config
        return f"{obj.kind:<6}{obj.description}"
    if hasattr(obj, "expects"):  # a data set spec; generated values are codes, none rare
        counted = "" if obj.open is None else f", min_count {obj.min_count}"
        return f"{obj.task} task{counted}; {obj.expects}"
    doc = getattr(obj, "description", None) or getattr(obj, "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def cmd_bench(args: argparse.Namespace) -> None:
    from recloss import bench
    from recloss.presets import resolve

    overrides = {k: yaml.safe_load(v) for k, v in _key_values(args.set, "--set").items()}
    path = resolve(args.grid, "grid")
    grid = bench.load_grid(path, overrides, _key_values(args.data, "--data"))
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
            f"{len(failed)} cell{'s' if len(failed) > 1 else ''} did not finish (see error.txt "
            "in each); rerun the same command to retry them"
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
