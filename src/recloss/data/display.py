"""Plain-text tables and quantities for what `recloss data` prints."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path


def human_bytes(n: int) -> str:
    """Bytes in decimal units: `512 B`, `3.1 MB`, `42.0 GB`."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def when(seconds: float) -> str:
    """A local time to the minute."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell, two spaces apart; `right`: right-aligned columns.

    The last column is not padded (it may be long: paths).
    """
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = []
        for i, cell in enumerate(row):
            last = i == len(row) - 1
            text = str(cell)
            if i in right:
                text = text.rjust(widths[i])
            elif not last:
                text = text.ljust(widths[i])
            cells.append(text)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


MAX_LISTED = 4  # source files of several folders named one by one; more are counted


def sources_text(sources: Sequence[dict]) -> str:
    """A cache's sources in a line: its files (one folder written once), a table, or generated."""
    paths = [s["path"] for s in sources if "path" in s]
    tables = [s for s in sources if "path" not in s]
    parts = []
    if paths:
        parents = {str(Path(p).parent) for p in paths}
        if len(paths) > 1 and len(parents) == 1:
            names = ",".join(Path(p).name for p in paths)
            parts.append(f"{parents.pop()}/{{{names}}}")
        elif len(paths) > MAX_LISTED:  # a partitioned folder's: a file per partition
            parts.append(f"{len(paths):,} files under {os.path.commonpath(paths)}")
        else:
            parts.append(", ".join(paths))
    parts += [f"in-memory table ({count(s.get('rows'))} rows)" for s in tables]
    return ", ".join(parts) or "generated"
