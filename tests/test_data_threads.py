"""No background thread of the data layer outlives an error (or the interpreter's exit)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from datafiles import AVAZU_HEADER, data_config, write_avazu

from recloss.data import BatchLoader, SplitArrays, prepare_dataset
from recloss.data.prefetch import prefetch
from recloss.errors import DataError


def new_threads(before: set[threading.Thread]) -> list[str]:
    return [t.name for t in threading.enumerate() if t not in before and t.is_alive()]


def test_header_only_avazu_file_leaves_no_thread(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(AVAZU_HEADER + "\n")
    before = set(threading.enumerate())
    with pytest.raises(DataError, match=r"train\.csv: no data rows") as raised:
        prepare_dataset(data_config(tmp_path, "avazu", path), progress=True)
    assert raised.value.__traceback__ is not None  # the error (and its frames) still held
    assert new_threads(before) == []


def test_bad_line_mid_file_stops_the_reader_thread(tmp_path):
    path = write_avazu(tmp_path / "train.csv", rows=3000)
    lines = path.read_text().splitlines()
    lines[2000] += ",extra"  # line 2001 has 25 fields
    path.write_text("\n".join(lines) + "\n")
    cfg = data_config(tmp_path, "avazu", path, chunk_rows=100)  # blocks queued ahead
    before = set(threading.enumerate())
    with pytest.raises(DataError, match=r"train\.csv:2001: expected 24 fields, found 25"):
        prepare_dataset(cfg, progress=True)
    assert new_threads(before) == []
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # temporary and lock gone


def test_an_error_in_the_producer_ends_its_thread_before_it_reaches_the_consumer():
    def items():
        yield 1
        raise ValueError("broken source")

    before = set(threading.enumerate())
    batches = prefetch(items())
    assert next(batches) == 1
    with pytest.raises(ValueError, match="broken source"):
        next(batches)
    assert new_threads(before) == []


def test_closing_a_batch_iterator_joins_its_thread():
    split = SplitArrays(x_cat=np.zeros((500, 2), np.int32), x_num=None, y=np.zeros(500, np.int8))
    before = set(threading.enumerate())
    with BatchLoader(split, batch_size=10, shuffle=True).__iter__() as batches:
        next(batches)
        assert new_threads(before) == ["recloss-prefetch"]
    assert new_threads(before) == []


EXITS_HOLDING_A_PREFETCH = textwrap.dedent(
    """
    import itertools, time
    from recloss.data.prefetch import prefetch

    def endless():
        try:
            for i in itertools.count():
                time.sleep(0.001)
                yield i
        finally:
            print("source closed", flush=True)

    held = prefetch(endless())
    next(held)
    cycle = [held]
    cycle.append(cycle)  # kept alive until the end, as a stored traceback would keep it
    """
)


def test_an_iterator_still_held_at_exit_is_stopped_first():
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", EXITS_HOLDING_A_PREFETCH],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "source closed\n"  # closed by the atexit hook, in a live interpreter
    assert time.perf_counter() - started < 30
