"""Temporaries of killed preparations are removed; those of live ones never are; caches listed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datafiles import data_config, write_criteo

from recloss.data import prepare_dataset
from recloss.data import tempfolders as tf
from recloss.data.cache import CacheWriter
from recloss.data.inventory import (
    DAMAGED,
    LIVE,
    OLD,
    READY,
    STALE,
    clean_caches,
    format_cleaned,
    format_listing,
    list_caches,
)

KEY = "0123456789abcdef"


class Child:
    """A forked process that starts building a cache, writes into its temporary, and then either
    dies by SIGKILL (as the OOM killer would) or waits until `finish()`."""

    def __init__(self, root: Path, mode: str) -> None:
        ready_r, ready_w = os.pipe()
        self._go_r, self._go_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns into pytest
            try:
                writer = CacheWriter(root)
                (writer.tmp / "x_cat.npy").write_bytes(b"0" * 200_000)
                os.write(ready_w, str(writer.tmp).encode() + b"\n")
                if mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                os.read(self._go_r, 1)
            finally:
                os._exit(0)
        os.close(ready_w)
        with os.fdopen(ready_r) as ready:
            line = ready.readline().strip()
        assert line, "the child did not start its cache"
        self.tmp = Path(line)

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    def finish(self) -> int:
        os.write(self._go_w, b"x")
        return self.wait()


def child(root: Path, mode: str) -> tuple[Child, Path]:
    proc = Child(root, mode)
    return proc, proc.tmp


def test_a_killed_preparations_temporary_is_removed_by_the_next(tmp_path):
    cfg = data_config(tmp_path, "criteo", write_criteo(tmp_path / "train.txt", rows=50))
    cache = Path(cfg.cache_dir)
    proc, tmp = child(cache / f"avazu-{KEY}", "kill")
    assert proc.wait() == -signal.SIGKILL
    assert tmp.is_dir() and tf.lock_of(tmp).exists()  # what a killed run leaves today
    assert [e.state for e in list_caches(cache)] == [STALE]
    prepare_dataset(cfg, progress=False)  # another data set, in the same cache root
    assert not tmp.exists() and not tf.lock_of(tmp).exists()
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []


def test_a_live_preparations_temporary_is_never_touched(tmp_path):
    cfg = data_config(tmp_path, "criteo", write_criteo(tmp_path / "train.txt", rows=50))
    cache = Path(cfg.cache_dir)
    proc, tmp = child(cache / f"avazu-{KEY}", "wait")
    try:
        prepare_dataset(cfg, progress=False)
        entries = list_caches(cache)
        assert {e.dataset: e.state for e in entries} == {"avazu": LIVE, "criteo": READY}
        done = clean_caches(entries)
        assert [e.dataset for e in done.kept] == ["avazu"] and tmp.is_dir()
        assert [e.dataset for e, _ in done.removed] == ["criteo"]
        assert "a running preparation writes it" in format_cleaned(cache, done)
    finally:
        proc.finish()
    assert [e.state for e in list_caches(cache)] == [STALE]  # its owner is gone now


def test_a_temporary_of_this_process_is_live(tmp_path):
    with CacheWriter(tmp_path / f"criteo-{KEY}") as writer:
        assert tf.remove_stale(tmp_path) == [] and writer.tmp.is_dir()
        assert [t.live for t in tf.temporaries(tmp_path)] == [True]
    assert sorted(tmp_path.iterdir()) == []  # folder and lock gone after a failed or done build


def test_the_creator_starts_over_if_a_sweep_took_its_new_lock(tmp_path, monkeypatch):
    real = tf.fcntl.flock
    calls = []

    def sweep_first(fd, flags):  # a sweep removes the lock file before its creator locks it
        if not calls:
            os.unlink(os.readlink(f"/proc/self/fd/{fd}"))
        calls.append(flags)
        return real(fd, flags)

    monkeypatch.setattr(tf.fcntl, "flock", sweep_first)
    owned = tf.OwnedFolder(tmp_path / f"criteo-{KEY}")
    try:
        assert len(calls) == 2 and owned.lock.exists() and owned.path.is_dir()
        assert [t.live for t in tf.temporaries(tmp_path)] == [True]
    finally:
        owned.release()


def test_lockless_temporaries_of_older_versions_go_by_process_id(tmp_path):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = tmp_path / f".criteo-{KEY}.tmp-{int(gone.stdout)}-00000000"
    mine = tmp_path / f".avazu-{KEY}.tmp-{os.getpid()}-00000000"
    dead.mkdir()
    mine.mkdir()
    removed = tf.remove_stale(tmp_path)
    assert [t.path for t, _ in removed] == [dead] and mine.is_dir()


def fake_cache(root: Path, name: str, **meta) -> Path:
    folder = root / f"{name}-{KEY}"
    (folder / "train").mkdir(parents=True)
    np.save(folder / "train" / "y.npy", np.zeros(50_000, np.int8))
    record = {"format_version": 1, "fingerprint": KEY, "dataset": name, "total_rows": 1234}
    (folder / "meta.json").write_text(json.dumps(record | meta))
    return folder


def test_listing_and_cleaning_touch_only_recloss_caches(tmp_path):
    root = tmp_path / "cache"
    fake_cache(root, "criteo", sources=[{"path": "/data/train.txt"}])
    fake_cache(root, "avazu", format_version=0)
    os.truncate(fake_cache(root, "adult") / "train" / "y.npy", 1000)  # an interrupted copy
    (root / "notes").mkdir()  # the user's own things under a shared root
    (root / "notes" / "a.txt").write_text("mine")
    (root / "other-0123456789abcdef").mkdir()  # a cache-like name without meta.json
    entries = list_caches(root)
    assert [(e.dataset, e.state, e.rows) for e in entries] == [
        ("adult", DAMAGED, 1234),
        ("avazu", OLD, 1234),
        ("criteo", READY, 1234),
    ]
    text = format_listing(root, entries)
    lines = text.splitlines()
    assert lines[0] == f"cache root: {root}"
    assert lines[1].split() == [
        "DATA",
        "SET",
        "FOLDER",
        "STATE",
        "ROWS",
        "SIZE",
        "CREATED",
        "SOURCES",
    ]
    assert "adult" in lines[2] and "damaged" in lines[2]
    assert f"criteo-{KEY}" in lines[4] and "1,234" in lines[4] and "/data/train.txt" in lines[4]
    assert lines[-1].startswith("3 caches: ")
    done = clean_caches(list_caches(root, "criteo"))
    assert [e.dataset for e, _ in done.removed] == ["criteo"] and done.freed >= 50_000
    assert (root / f"avazu-{KEY}").is_dir() and not (root / f"criteo-{KEY}").exists()
    done = clean_caches(list_caches(root))
    assert [e.dataset for e, _ in done.removed] == ["adult", "avazu"]
    assert sorted(p.name for p in root.iterdir()) == ["notes", "other-0123456789abcdef"]
    assert format_listing(root, list_caches(root)) == f"no caches in {root}"


def test_stale_only_keeps_the_caches(tmp_path):
    root = tmp_path / "cache"
    fake_cache(root, "criteo")
    proc, tmp = child(root / f"avazu-{KEY}", "kill")
    proc.wait()
    done = clean_caches(list_caches(root), stale_only=True)
    assert [(e.state, e.dataset) for e, _ in done.removed] == [(STALE, "avazu")]
    assert done.freed >= 200_000 and not tmp.exists() and (root / f"criteo-{KEY}").is_dir()
    assert "stale temporary" in format_cleaned(root, done)


@pytest.mark.parametrize("dataset", ["criteo"])
def test_an_encoded_files_temporary_is_listed_under_its_cache(tmp_path, dataset):
    cfg = data_config(tmp_path, dataset, write_criteo(tmp_path / "train.txt", rows=50))
    ds = prepare_dataset(cfg, progress=False)
    proc, tmp = child(ds.root / "encoded" / KEY, "kill")
    proc.wait()
    entries = list_caches(Path(cfg.cache_dir))
    assert [(e.dataset, e.state) for e in entries] == [(dataset, READY), (dataset, STALE)]
    ds.encode_file(write_criteo(tmp_path / "more.txt", rows=20, seed=1))  # sweeps encoded/
    assert not tmp.exists()
