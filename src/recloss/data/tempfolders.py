"""Temporary folders owned by a live process, and the sweeping of those whose owner is gone.

A cache (or a fetched data set) is built in `.<final>.tmp-<pid>-<tag>` next to its final place
and renamed into place once complete. A process killed midway (SIGKILL, out of memory, a lost
node) leaves that folder behind: up to the size of the cache, spill files included.

Ownership is an exclusive `fcntl.flock` on a sibling lock file `.<final>.tmp-<pid>-<tag>.lock`,
held from before the folder exists until after it is gone. The kernel releases a flock when its
holder dies however it dies, so "the lock can be taken" means exactly "no live process owns this
temporary". A sweep takes each temporary's lock without waiting and removes only those it got:
a concurrent preparation of any data set (in this process, another one, or, on a file system
with working locks such as NFS, another machine) holds its lock and is never touched. Process
ids alone would not do: a recycled pid looks alive, and a pid from another machine or container
sharing the cache looks dead. The pid in the name only says who made it, and decides for
lock-less temporaries left by older versions (or where `fcntl` is missing).

Races: the lock file is created and locked before the folder is made, so a folder never exists
without its lock. A sweep may take a just-created lock before its creator does; it then removes
the lock file, and the creator, who checks after locking that its lock file is still the one at
that path, starts over under a new name.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # not POSIX: ownership falls back on process ids
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("recloss.data")

TEMP_NAME = re.compile(r"^\.(?P<final>.+)\.tmp-(?P<pid>\d+)-(?P<tag>[0-9a-f]{8})$")
LOCK_SUFFIX = ".lock"


def lock_of(temp: Path) -> Path:
    return temp.with_name(temp.name + LOCK_SUFFIX)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def pid_running(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid > 0  # someone else's process
    return True


class OwnedFolder:
    """A new temporary folder next to `final`, owned (locked) by this process until released.

    Stale temporaries in the same folder (their owner gone) are removed first.
    """

    def __init__(self, final: Path) -> None:
        parent = final.parent
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale(parent)
        self._fd = -1
        while True:
            name = f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            self.path = parent / name
            self.lock = lock_of(self.path)
            if fcntl is None:
                break
            fd = os.open(self.lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a sweep looks at it
                if _same_file(fd, self.lock):
                    self._fd = fd
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # a sweep took and removed the new lock file: try another name
        try:
            self.path.mkdir()
        except BaseException:
            self.release()
            raise

    def __enter__(self) -> Path:
        return self.path

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def release(self) -> None:
        """Remove the folder if it is still there (not renamed into place), then the lock."""
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
        if self._fd >= 0:
            try:
                self.lock.unlink(missing_ok=True)
            finally:
                os.close(self._fd)
                self._fd = -1


@contextmanager
def _claim(temp: Path, pid: int) -> Iterator[bool]:
    """Whether no live process owns `temp`; while true, this process holds its lock."""
    lock = lock_of(temp)
    try:
        fd = os.open(lock, os.O_RDWR) if fcntl is not None else -1
    except FileNotFoundError:
        fd = -1
    if fd < 0:  # no lock file: an older version's temporary, or no flock here
        yield not pid_running(pid)
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Temporary:
    """A temporary folder: what it becomes, who made it, and whether its owner is alive."""

    path: Path
    final: str
    pid: int
    live: bool


def temporaries(folder: Path) -> list[Temporary]:
    """The temporary folders directly under `folder`, sorted by name."""
    found = []
    for path in _entries(folder):
        match = TEMP_NAME.match(path.name)
        if match and path.is_dir():
            pid = int(match["pid"])
            with _claim(path, pid) as stale:
                found.append(Temporary(path, match["final"], pid, live=not stale))
    return found


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def remove_temporary(temp: Temporary) -> int | None:
    """Remove a temporary if its owner is gone (checked again, under its lock): bytes freed."""
    with _claim(temp.path, temp.pid) as stale:
        if not stale:
            return None
        size = disk_usage(temp.path)
        shutil.rmtree(temp.path, ignore_errors=True)
        lock_of(temp.path).unlink(missing_ok=True)
    log.info("removed %s (%d bytes), left by process %d", temp.path, size, temp.pid)
    return size


def remove_stale(folder: Path) -> list[tuple[Temporary, int]]:
    """Remove the temporaries under `folder` that no live process owns, and orphaned locks."""
    removed = []
    for temp in temporaries(folder):
        size = None if temp.live else remove_temporary(temp)
        if size is not None:
            removed.append((temp, size))
    for path in _entries(folder):  # a lock whose owner died between removing folder and lock
        match = TEMP_NAME.match(path.name.removesuffix(LOCK_SUFFIX))
        temp = path.with_name(path.name.removesuffix(LOCK_SUFFIX))
        if path.name.endswith(LOCK_SUFFIX) and match and not temp.exists():
            with _claim(temp, int(match["pid"])) as stale:
                if stale:
                    path.unlink(missing_ok=True)
    return removed


def disk_usage(path: Path) -> int:
    """Bytes a file or folder takes on disk (allocated blocks, like `du`; links not followed)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0
    total = st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size
    if path.is_dir() and not path.is_symlink():
        for entry in _entries(path):
            total += disk_usage(entry)
    return total
