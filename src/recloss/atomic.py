"""Files written whole or not at all (a temporary file beside the target, renamed over it), and
writes that fail named by their file."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: Path, write: Callable[[Path], None], per_process: bool = False) -> None:
    """`write(tmp)`, then rename `tmp` to `path`: a crash never leaves half a file. A write that
    fails (a full disk) removes `tmp` and raises OSError naming `path` and the space left, which
    neither torch's error (a RuntimeError) nor a Python write's (no file name) says.

    `tmp` is `path` + `.tmp`, so the next write replaces what a killed one left (a checkpoint's
    worth of disk); `per_process` names it by process, for small files that several ranks may
    write at once, which then never rename each other's half."""
    suffix = f".{os.getpid()}.tmp" if per_process else ".tmp"
    tmp = path.with_name(path.name + suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:  # a Ctrl-C midway too leaves no temporary behind
        tmp.unlink(missing_ok=True)
        if not isinstance(err, OSError | RuntimeError):
            raise
        raise unwritable(path, err) from None


def append_line(path: Path, line: str) -> None:
    """Append `line` to a log file, as `write_atomic` names a failure."""
    try:
        with path.open("a") as log:
            log.write(line + "\n")
    except OSError as err:
        raise unwritable(path, err) from None


def unwritable(path: Path, err: Exception) -> OSError:
    """The error for a write to `path` that failed with `err`: the file, why, and the space left
    where that may be why (a full disk, or torch's writer, whose errors give no cause)."""
    cause = getattr(err, "strerror", None) or str(err).splitlines()[0]
    space = getattr(err, "errno", None) in (None, errno.ENOSPC, errno.EDQUOT)
    return OSError(
        f"{path}: could not be written{space_left(path.parent) if space else ''} ({cause})"
    )


def space_left(folder: Path) -> str:
    """`, with N MB free on its disk` for `folder`'s file system ("" if it does not exist)."""
    try:
        return f", with {shutil.disk_usage(folder).free / 1e6:,.1f} MB free on its disk"
    except OSError:  # no such folder
        return ""


def file_in_the_way(folder: Path) -> Path | None:
    """The file standing at `folder` or above it, where a folder would have to be made."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    return None if existing.is_dir() else existing
