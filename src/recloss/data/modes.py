"""Permissions of what recloss writes: those of an ordinary file or folder under the user's umask.

`tempfile.mkdtemp` makes 0700 folders and some writers (safetensors) create 0600 files via a
private temporary; renamed into place they would keep those modes, unlike everything else.
"""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore it at once
    os.umask(mask)
    return mask


def as_created(path: str | Path) -> Path:
    """Give `path` the mode a plain `open`/`mkdir` would: 0o666 or 0o777 less the umask."""
    path = Path(path)
    full = 0o777 if path.is_dir() else 0o666
    os.chmod(path, full & ~current_umask())
    return path
