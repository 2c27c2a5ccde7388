"""The configs that ship with recloss (`recloss/configs/`), by name.

A shipped config's name is its path inside the configs folder without `.yaml`: `demo`,
`paper/criteo`, `criteo`, `csv-example`, ... (`recloss list configs`). Commands take a name
wherever they take a config file (`recloss bench demo`, `recloss train --config criteo`); an
existing file of that name wins.

Grid or run config is told by content, not by folder: a file with a top-level `datasets:` or
`methods:` key is a grid (every grid needs both; a run configuration refuses them as unknown
keys), any other file is a run configuration. The scan reads top-level block keys only, which
is how every shipped file is written (tests check each against the real loaders).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from recloss.errors import ConfigError
from recloss.names import did_you_mean

GRID = "grid"
RUN = "run"
KINDS = (GRID, RUN)
GRID_KEYS = frozenset({"datasets", "methods"})  # required of a grid, unknown to a run config
_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:(?:\s|$)")
_LABELS = {GRID: "grid", RUN: "run config"}


@dataclass(frozen=True)
class Preset:
    """A shipped config: its name, kind ("grid" or "run"), first comment line and file."""

    name: str
    kind: str
    description: str
    path: Path


def configs_dir() -> Path:
    """The folder of the shipped configs inside the installed package."""
    root = resources.files("recloss").joinpath("configs")
    if not isinstance(root, Path):  # a zip import: no files to hand to the loaders
        raise ConfigError(f"the shipped configs are not files on disk ({root})")
    return root


def kind_of(text: str) -> str:
    """The kind of a config file's text: "grid" or "run" (see the module's docstring)."""
    keys = {m.group(1) for line in text.splitlines() if (m := _TOP_KEY.match(line))}
    return GRID if keys & GRID_KEYS else RUN


def _description(text: str) -> str:
    """The first non-empty line of the leading comment block."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if stripped:
                break
            continue
        if words := stripped.lstrip("#").strip():
            return words
    return ""


def list_presets(kind: str | None = None) -> list[Preset]:
    """Every shipped config (of `kind`, if given), sorted by name."""
    _check_kind(kind, optional=True)
    root = configs_dir()
    presets = []
    for path in sorted(root.rglob("*.yaml")):
        text = path.read_text()
        name = path.relative_to(root).with_suffix("").as_posix()
        presets.append(Preset(name, kind_of(text), _description(text), path))
    return [p for p in presets if kind is None or p.kind == kind]


def resolve(name_or_path: str | Path, kind: str) -> Path:
    """An existing file as given; else the shipped config of that name and kind; else ConfigError.

    `.yaml` at the end of a name is optional (`paper/criteo.yaml` names `paper/criteo`).
    """
    _check_kind(kind)
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    name = path.as_posix().removesuffix(".yaml")
    shipped = {p.name: p for p in list_presets()}
    found = shipped.get(name)
    if found is not None and found.kind == kind:
        return found.path  # also where a folder of that name is here: the data's, say
    what = "grid" if kind == GRID else "config"  # the words of "file not found" elsewhere
    if path.is_dir():
        raise ConfigError(f"{name_or_path}: a folder, not a {what} file")
    names = [n for n, p in shipped.items() if p.kind == kind]
    other = f" ({name} is a shipped {_LABELS[found.kind]})" if found else did_you_mean(name, names)
    raise ConfigError(
        f"{name_or_path}: {what} file not found, and not a shipped {_LABELS[kind]}{other}; "
        f"shipped {_LABELS[kind]}s: {', '.join(names)}"
    )


def _check_kind(kind: str | None, optional: bool = False) -> None:
    if kind not in KINDS and not (optional and kind is None):
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
