"""Grid files: reading one (with overrides and data paths), and the copy in a bench directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from recloss.bench.grid import Grid, _named
from recloss.bench.validate import grid_from_dict
from recloss.config import set_dotted
from recloss.errors import ConfigError
from recloss.names import did_you_mean
from recloss.rundir import write_text
from recloss.yamlfile import read_yaml_mapping

GRID_FILE = "grid.yaml"  # in the bench folder: the grid it was run with


def load_grid(
    path: str | Path, overrides: dict[str, Any] | None = None, data: dict[str, str] | None = None
) -> Grid:
    """Read a grid file; `overrides` set dotted keys, `data` points data sets at their files.
    An error names the file, and the overridden keys with it."""
    p = Path(path)
    raw = read_yaml_mapping(p, "grid")
    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value)
    for name, file in (data or {}).items():
        _set_data_path(raw, name, file, str(p))
    source = f"{p} with --set {', '.join(overrides)}" if overrides else str(p)
    return grid_from_dict(raw, source)


def _set_data_path(raw: dict[str, Any], name: str, file: str, source: str) -> None:
    transfer = (raw.get("transfer") or {}).get("datasets") or {}
    places = ((raw, "datasets"), (transfer, "targets"))
    for owner, key in places:
        named = _named(owner.get(key))
        if isinstance(named, dict) and name in named:
            named[name] = {**named[name], "path": file}
            owner[key] = named
            return
    known = [n for owner, key in places for n in _named(owner.get(key) or {})]
    raise ConfigError(
        f"{source}: --data {name}=...: no data set {name!r} in the grid"
        f"{did_you_mean(name, known)}; its data sets: {', '.join(known)}"
    )


def is_bench(root: str | Path) -> bool:
    """Whether a folder is a bench directory (it holds the grid it was run with)."""
    return (Path(root) / GRID_FILE).is_file()


def save_grid(grid: Grid, root: Path) -> None:
    """Write the grid into its bench directory, for `load_bench`."""
    write_text(root / GRID_FILE, yaml.safe_dump(grid.model_dump(mode="json"), sort_keys=False))


def load_bench(root: str | Path) -> Grid:
    """The grid a bench directory was run with."""
    path = Path(root) / GRID_FILE
    if not path.is_file():
        raise ConfigError(f"{root}: not a bench directory (no {GRID_FILE})")
    return grid_from_dict(yaml.safe_load(path.read_text()), str(path))
