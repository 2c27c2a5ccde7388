"""Files written whole or not at all, and a failed write named by its file."""

from __future__ import annotations

import errno
import os

import pytest

from recloss.atomic import append_line, write_atomic
from recloss.rundir import write_json


def test_a_failed_write_names_the_file_and_the_space_left_and_leaves_the_old_one(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"auc": 0.5})

    def disk_full(tmp):
        tmp.write_text('{"au')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what write() raises, no name

    with pytest.raises(OSError) as err:
        write_atomic(path, disk_full)
    assert str(err.value).startswith(f"{path}: could not be written, with ")
    assert str(err.value).endswith("MB free on its disk (No space left on device)")
    assert os.listdir(tmp_path) == ["metrics.json"] and path.read_text() == '{\n  "auc": 0.5\n}'


def test_a_missing_folder_is_named_without_the_space_left(tmp_path):
    path = tmp_path / "gone" / "metrics.json"
    with pytest.raises(OSError, match=r"gone/metrics.json: could not be written \(No such file"):
        write_json(path, {})


def test_a_write_refused_for_another_reason_than_space_does_not_blame_the_disk(tmp_path):
    def refused(tmp):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    with pytest.raises(OSError, match=r"m\.json: could not be written \(Permission denied\)$"):
        write_atomic(tmp_path / "m.json", refused)


def test_an_interrupted_write_leaves_no_temporary_and_stays_an_interrupt(tmp_path):
    def interrupted(tmp):
        tmp.write_text("{")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "metrics.json", interrupted)
    assert os.listdir(tmp_path) == []


def test_a_line_that_cannot_be_appended_names_the_log(tmp_path, monkeypatch):
    from pathlib import Path

    log = tmp_path / "train.log"

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "open", disk_full)
    with pytest.raises(OSError, match=rf"^{log}: could not be written, with .*\(No space left"):
        append_line(log, "epoch 1/3")


def test_the_next_write_replaces_what_a_killed_one_left(tmp_path):
    path = tmp_path / "checkpoint.pt"
    (tmp_path / "checkpoint.pt.tmp").write_bytes(b"PK")  # a write killed midway (SIGKILL)
    write_atomic(path, lambda tmp: tmp.write_bytes(b"whole"))
    assert os.listdir(tmp_path) == ["checkpoint.pt"] and path.read_bytes() == b"whole"
