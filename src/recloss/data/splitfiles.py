"""Given split files: a folder's `train.*`, `valid.*` (or `validation.*`) and `test.*` files, or
the three files `data.splits` names.

A folder holding all three uses them as the train, validation and test splits; one holding
none reads its data files as one source that `data.split` divides at random. A lone `train.*`
file is that one source too (Criteo's `train.txt`, Avazu's `train.csv` hold all their labeled
rows). Any other subset (say `valid` and `test` without `train`) is an error naming what is
missing: the given test rows must never land in a random training split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from recloss.config import DataConfig
from recloss.data.splits import SPLITS
from recloss.errors import DataError

log = logging.getLogger("recloss.data")

STEMS = {"train": ("train",), "valid": ("valid", "validation"), "test": ("test",)}


def _is_split_file(path: Path, stems: Sequence[str], suffixes: Sequence[str]) -> bool:
    """`train.csv`, or with a prefix `frappe.train.libfm`, for each stem and suffix."""
    names = [f"{stem}{suffix}" for stem in stems for suffix in suffixes]
    return any(path.name == n or path.name.endswith(f".{n}") for n in names)


def _pattern(split: str, suffixes: Sequence[str]) -> str:
    stems = "/".join(STEMS[split])
    return f"{stems}{suffixes[0]}" if len(suffixes) == 1 else f"{stems}.*"


def folder_splits(name: str, folder: Path, suffixes: Sequence[str]) -> dict[str, Path] | None:
    """The folder's three split files by name; None when it has none (or only `train`)."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    found = {s: [p for p in files if _is_split_file(p, STEMS[s], suffixes)] for s in SPLITS}
    for split, hits in found.items():
        if len(hits) > 1:
            shown = ", ".join(p.name for p in hits)
            raise DataError(f"{name}: {folder} has {len(hits)} {split} files ({shown}); keep one")
    present = [s for s in SPLITS if found[s]]
    if len(present) == len(SPLITS):
        return {s: found[s][0] for s in SPLITS}
    if present in ([], ["train"]):
        return None
    have = ", ".join(found[s][0].name for s in present)
    lacking = " and ".join(_pattern(s, suffixes) for s in SPLITS if not found[s])
    raise DataError(
        f"{name}: {folder} has the split file(s) {have} but no {lacking}; give all three "
        "splits, or pass a single file to split it at random (data.split)"
    )


def configured_splits(name: str, cfg: DataConfig) -> dict[str, Path]:
    """The files `data.splits` names; relative ones are taken from `data.path` when a folder."""
    assert cfg.splits is not None
    base = Path(cfg.path) if cfg.path else None
    if base is not None and not base.is_dir():
        raise DataError(
            f"{name}: data.path {base} is not a folder; with data.splits give a folder "
            "(their relative paths start there) or no path"
        )
    found = {}
    for split in SPLITS:
        path = Path(cfg.splits[split])
        if base is not None and not path.is_absolute():
            path = base / path
        if not path.is_file():
            raise DataError(f"{name}: data.splits.{split}: {path} is not a file")
        found[split] = path
    _check_apart(name, found)
    return found


def _check_apart(name: str, files: dict[str, Path]) -> None:
    """DataError where training rows would be validated or tested on; a warning where the
    validation file is the test file, whose metrics then come from the split that chose them."""
    for held_out in ("valid", "test"):
        if files["train"].samefile(files[held_out]):
            raise DataError(
                f"{name}: data.splits: {files['train']} is both the train and the {held_out} "
                "split; the model would be judged on the rows it trains on"
            )
    if files["valid"].samefile(files["test"]):
        log.warning(
            "%s: data.splits: %s is both the valid and the test split; the test metrics are those "
            "of the rows that chose the best epoch, and read higher than on unseen rows",
            name, files["test"],
        )  # fmt: skip
