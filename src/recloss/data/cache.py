"""The prepared-data cache: one folder of memory-mapped arrays and metadata, written atomically.

Layout: `meta.json`, `vocab.arrow`, and one folder per split holding `x_cat.npy` (int32),
`y.npy` (int8/int16 class indices), `x_num.npy` (float32, continuous numeric fields only) and
`extra.<name>.npy` arrays (e.g. the synthetic data's true click probability). A cache is built in
a hidden temporary folder next to its final place and renamed into place once complete, so an
interrupted preparation never leaves a folder that looks valid; a killed one's temporary is
removed by the next preparation in that folder (see `tempfolders`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa

from recloss.data.tempfolders import OwnedFolder
from recloss.errors import ConfigError

FORMAT_VERSION = 1
META_FILE = "meta.json"
ENCODED = "encoded"  # folder of a cache holding other files encoded with its vocabularies
KEPT_ENCODINGS = 4  # the most recently used files' encodings kept there
HASHED_BYTES = 1 << 20  # hashed at each end of a source file


def recloss_home() -> Path:
    """`$RECLOSS_HOME`, by default `~/.cache/recloss`."""
    home = os.environ.get("RECLOSS_HOME")
    return _folder(Path(home or "~/.cache/recloss").expanduser(), "RECLOSS_HOME" if home else None)


def cache_root(cache_dir: str | None) -> Path:
    """The folder holding the prepared caches: `data.cache_dir`, else `$RECLOSS_HOME/cache`."""
    if cache_dir:
        return _folder(Path(cache_dir).expanduser(), "data.cache_dir")
    return recloss_home() / "cache"


def _folder(path: Path, setting: str | None) -> Path:
    """`path`, unless it is a file where a folder belongs (ConfigError naming the setting)."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{setting or path}: {path} is a file, not a folder", setting)
    return path


def file_identity(path: Path) -> dict:
    """What identifies a source file's content: path, size, mtime and a hash of both ends."""
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(HASHED_BYTES))
        if stat.st_size > 2 * HASHED_BYTES:
            f.seek(-HASHED_BYTES, os.SEEK_END)
        digest.update(f.read(HASHED_BYTES))
    return {
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256_ends": digest.hexdigest(),
    }


class _HashSink:
    """A write-only file that hashes what is written to it and keeps nothing."""

    closed = False

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def table_identity(table: pa.Table) -> dict:
    """What identifies an in-memory table's content: a hash of its Arrow IPC stream.

    The stream (schema without metadata, then the record batches) is hashed as it is written,
    without a copy. Equal content chunked differently hashes differently: only a cache miss.
    """
    table = table.replace_schema_metadata(None)
    sink = _HashSink()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return {
        "rows": table.num_rows,
        "columns": table.column_names,
        "ipc_bytes": sink.size,
        "sha256": sink.digest.hexdigest(),
    }


def content_key(identities: list[dict], settings: dict) -> tuple[str, list[dict]]:
    """Short hash of the sources' identities, the settings and the cache format version."""
    blob = json.dumps(
        {"version": FORMAT_VERSION, "files": identities, "settings": settings}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16], identities


def keep_recent_encodings(used: Path) -> None:
    """Mark `used` (an encoding under `ENCODED`) as just used; remove all but the recent ones.

    A file scored every day would otherwise leave a copy of its encoded rows per day.
    """
    with contextlib.suppress(OSError):  # a read-only cache is used as it is
        os.utime(used / META_FILE)
    used_at = {folder: _used_at(folder) for folder in used.parent.iterdir()}
    done = sorted((f for f, at in used_at.items() if at), key=used_at.__getitem__, reverse=True)
    for folder in done[KEPT_ENCODINGS:]:  # temporaries (no metadata yet) are not among them
        shutil.rmtree(folder, ignore_errors=True)  # mapped arrays stay readable (POSIX)


def _used_at(encoding: Path) -> float:
    """When an encoding was last used; 0 for a temporary (or one another process removed)."""
    try:
        return (encoding / META_FILE).stat().st_mtime
    except OSError:
        return 0.0


def read_meta(root: Path, fingerprint: str) -> dict | None:
    """The metadata of a complete cache with this fingerprint, else None."""
    try:
        meta = json.loads((root / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format_version") != FORMAT_VERSION or meta.get("fingerprint") != fingerprint:
        return None
    return meta if _files_whole(root, meta) else None


def _files_whole(root: Path, meta: dict) -> bool:
    """Whether every split has its arrays and every file opens whole (a copy cut short does
    not)."""
    splits = meta.get("rows", {})
    if not all((root / s / name).is_file() for s in splits for name in ("x_cat.npy", "y.npy")):
        return False
    try:
        for path in root.glob("*/*.npy"):
            load_array(path)
        for path in root.glob("*.arrow"):
            with pa.memory_map(str(path)) as source:
                pa.ipc.open_file(source)  # reads the footer at its end
    except (OSError, ValueError, pa.ArrowInvalid):
        return False
    return True


class ArrayFile:
    """A .npy file of known shape, filled by row ranges with positioned writes.

    Writing through a file descriptor rather than a writable memory map keeps the written
    pages out of the process's resident memory, so preparing a data set larger than RAM works.
    """

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.dtype = np.dtype(dtype)
        with open(path, "wb") as f:
            header = {
                "descr": np.lib.format.dtype_to_descr(self.dtype),
                "fortran_order": False,
                "shape": shape,
            }
            np.lib.format.write_array_header_1_0(f, header)
            self.offset = f.tell()
            self.row_bytes = self.dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
            f.truncate(self.offset + self.row_bytes * shape[0])
        self._fd = os.open(path, os.O_WRONLY)

    def write(self, start: int, rows: np.ndarray) -> None:
        """Write `rows` from row `start` on."""
        data = memoryview(np.ascontiguousarray(rows, dtype=self.dtype)).cast("B")
        at = self.offset + start * self.row_bytes
        while data:
            written = os.pwrite(self._fd, data, at)
            data, at = data[written:], at + written

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class CacheWriter:
    """Builds a cache folder in a temporary place; `commit` moves it into place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._owned = OwnedFolder(root)  # removes stale temporaries next to it first
        self.tmp = self._owned.path
        self._open: list = []  # ArrayFiles and spills, closed on commit or on any error

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._close()
        finally:
            self._owned.release()  # the folder if not committed, then its lock

    def _close(self) -> None:
        for item in self._open:
            item.close()
        self._open.clear()

    def track(self, item: object) -> None:
        """Close `item` (anything with `close()`) when the writer commits or fails."""
        self._open.append(item)

    def array(self, split: str, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> ArrayFile:
        """A new .npy array of the split, filled by the caller."""
        (self.tmp / split).mkdir(exist_ok=True)
        arr = ArrayFile(self.tmp / split / f"{name}.npy", dtype, shape)
        self._open.append(arr)
        return arr

    def commit(self, meta: dict) -> Path:
        """Close the arrays, write the metadata last and rename the folder into place."""
        self._close()
        created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        meta = {"format_version": FORMAT_VERSION, "created": created, **meta}
        (self.tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        if self.root.exists():
            if read_meta(self.root, meta["fingerprint"]) is not None:
                return self.root  # a concurrent preparation finished first
            shutil.rmtree(self.root)
        try:
            os.replace(self.tmp, self.root)
        except OSError:
            if read_meta(self.root, meta["fingerprint"]) is None:
                raise
        return self.root


def load_array(path: Path) -> np.memmap:
    """A cached array, memory-mapped read-only."""
    return np.load(path, mmap_mode="r")
