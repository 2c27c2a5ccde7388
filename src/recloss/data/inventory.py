"""What the cache folder holds, and removing it: `recloss data ls` and `recloss data clean`.

Only what recloss made is listed or removed: folders `<data set>-<fingerprint>` with a
`meta.json`, and temporaries named as in `tempfolders`; anything else under the root is left
alone, so pointing `data.cache_dir` at a shared folder is safe.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from recloss.data.cache import ENCODED, FORMAT_VERSION, META_FILE, cache_root, read_meta
from recloss.data.display import count, human_bytes, sources_text, table, when
from recloss.data.tempfolders import (
    OwnedFolder,
    Temporary,
    disk_usage,
    remove_temporary,
    temporaries,
)

CACHE_NAME = re.compile(r"^(?P<dataset>.+)-(?P<key>[0-9a-f]{16})$")
READY, OLD, DAMAGED = "ready", "old format", "damaged"
LIVE, STALE = "in progress", "stale temporary"


@dataclass(frozen=True)
class CacheEntry:
    """One cache, or one temporary folder of a preparation, under the cache root."""

    path: Path
    dataset: str
    state: str  # READY, OLD (another format version) or DAMAGED (rebuilt when used), LIVE, STALE
    size: int  # bytes on disk
    fingerprint: str | None = None
    rows: int | None = None
    created: str = ""  # local time, to the minute
    sources: str = ""
    temporary: Temporary | None = None
    busy: bool = False  # a live preparation is writing inside it (an encoded file)


def _meta(path: Path) -> dict | None:
    try:
        meta = json.loads((path / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and "fingerprint" in meta else None


def _created(meta: dict, path: Path) -> str:
    stamp = meta.get("created")
    if isinstance(stamp, str) and len(stamp) >= 16:
        return stamp[:16].replace("T", " ")
    return when((path / META_FILE).stat().st_mtime)


def _modified(path: Path) -> str:
    try:
        return when(path.stat().st_mtime)
    except FileNotFoundError:  # removed meanwhile
        return ""


def _state(path: Path, meta: dict) -> str:
    if read_meta(path, meta["fingerprint"]) is not None:
        return READY
    return OLD if meta.get("format_version") != FORMAT_VERSION else DAMAGED


def _cache_entry(path: Path, meta: dict, busy: bool) -> CacheEntry:
    rows = meta.get("total_rows")
    if rows is None and isinstance(meta.get("rows"), dict):
        rows = sum(meta["rows"].values())
    match = CACHE_NAME.match(path.name)
    return CacheEntry(
        path=path,
        dataset=str(meta.get("dataset") or (match["dataset"] if match else path.name)),
        state=_state(path, meta),
        size=disk_usage(path),
        fingerprint=meta["fingerprint"],
        rows=rows,
        created=_created(meta, path),
        sources=sources_text(meta.get("sources") or []),
        busy=busy,
    )


def _temp_entry(temp: Temporary, dataset: str) -> CacheEntry:
    owner = f"process {temp.pid} " + ("is writing it" if temp.live else "is gone")
    match = CACHE_NAME.match(temp.final)
    return CacheEntry(
        path=temp.path,
        dataset=dataset,
        state=LIVE if temp.live else STALE,
        size=disk_usage(temp.path),
        fingerprint=match["key"] if match else temp.final,
        created=_modified(temp.path),
        sources=owner,
        temporary=temp,
    )


def list_caches(root: Path, dataset: str | None = None) -> list[CacheEntry]:
    """Every cache and temporary under `root` (encoded files' too), of one data set or all."""
    entries = []
    for temp in temporaries(root):
        match = CACHE_NAME.match(temp.final)
        entries.append(_temp_entry(temp, match["dataset"] if match else temp.final))
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        meta = None if path.name.startswith(".") or not path.is_dir() else _meta(path)
        if meta is None:
            continue
        inner = temporaries(path / ENCODED)  # of files being encoded with this cache
        entry = _cache_entry(path, meta, busy=any(t.live for t in inner))
        entries += [entry, *(_temp_entry(t, entry.dataset) for t in inner)]
    entries = [e for e in entries if dataset is None or e.dataset == dataset]
    return sorted(entries, key=lambda e: (e.dataset, str(e.path.relative_to(root))))


@dataclass
class Cleaned:
    """What `clean_caches` removed (with the bytes each freed) and what it had to keep."""

    removed: list[tuple[CacheEntry, int]] = field(default_factory=list)
    kept: list[CacheEntry] = field(default_factory=list)  # in use by a live preparation

    @property
    def freed(self) -> int:
        return sum(size for _, size in self.removed)


def _remove_cache(path: Path) -> int:
    """Remove a complete cache: first renamed (atomically) into a temporary of our own.

    Readers then see the whole cache or none, and a removal killed midway leaves a stale
    temporary that the next preparation or clean removes.
    """
    size = disk_usage(path)
    with OwnedFolder(path) as tmp:
        os.replace(path, tmp)  # onto the empty folder OwnedFolder made
    return size


def clean_caches(entries: list[CacheEntry], stale_only: bool = False) -> Cleaned:
    """Remove these entries of `list_caches` (only the stale temporaries if `stale_only`).

    Temporaries a live process is writing, and caches it is writing into, are kept: each
    temporary's owner is checked again, under its lock, as it is removed.
    """
    done = Cleaned()
    for entry in entries:
        if entry.state == LIVE or (entry.busy and not stale_only):
            done.kept.append(entry)
        elif entry.temporary is not None:
            if entry.state == STALE and entry.path.exists():  # not gone with its cache
                size = remove_temporary(entry.temporary)
                if size is not None:
                    done.removed.append((entry, size))
        elif not stale_only:
            try:
                done.removed.append((entry, _remove_cache(entry.path)))
            except FileNotFoundError:  # a concurrent clean removed it first
                continue
    return done


def format_listing(root: Path, entries: list[CacheEntry], dataset: str | None = None) -> str:
    """The table `recloss data ls` prints (of `dataset`'s caches, if given)."""
    if not entries:
        return f"no {dataset + ' ' if dataset else ''}caches in {root}"
    header = ("DATA SET", "FOLDER", "STATE", "ROWS", "SIZE", "CREATED", "SOURCES")
    rows = [
        (
            e.dataset,
            str(e.path.relative_to(root)),
            e.state,
            count(e.rows),
            human_bytes(e.size),
            e.created,
            e.sources,
        )
        for e in entries
    ]
    caches = sum(e.temporary is None for e in entries)
    stale = sum(e.state == STALE for e in entries)
    live = sum(e.state == LIVE for e in entries)
    parts = [f"{caches} cache{'' if caches == 1 else 's'}"]
    parts += [f"{stale} stale temporar{'y' if stale == 1 else 'ies'}"] if stale else []
    parts += [f"{live} in progress"] if live else []
    total = human_bytes(sum(e.size for e in entries))
    return "\n".join(
        [f"cache root: {root}", table(header, rows, right=(3, 4)), f"{', '.join(parts)}: {total}"]
    )


def format_cleaned(root: Path, done: Cleaned) -> str:
    """What `recloss data clean` prints after removing."""
    lines = []
    for entry, size in done.removed:
        what = "" if entry.temporary is None else f"{entry.state}, "
        lines.append(f"removed {entry.path.relative_to(root)} ({what}{human_bytes(size)})")
    for entry in done.kept:
        why = "a running preparation writes " + ("it" if entry.state == LIVE else "into it")
        lines.append(f"kept {entry.path.relative_to(root)} ({why})")
    if not done.removed:
        lines.append(f"nothing removed from {root}")
    else:
        n = len(done.removed)
        lines.append(f"freed {human_bytes(done.freed)} in {root} ({n} removed)")
    return "\n".join(lines)


def run_ls_or_clean(
    action: str, cache_dir: str | None, dataset: str | None, stale_only: bool = False
) -> None:
    """`recloss data ls` / `recloss data clean`: print the listing, or remove and say what.

    `clean` without a data set (and not only stale temporaries) lists all it removes first.
    """
    root = cache_root(cache_dir)
    entries = list_caches(root, dataset)
    if action == "ls" or (dataset is None and not stale_only and entries):
        print(format_listing(root, entries, dataset), flush=True)
    if action == "clean":
        print(format_cleaned(root, clean_caches(entries, stale_only)))
