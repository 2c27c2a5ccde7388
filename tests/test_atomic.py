"""Files written whole or not at all, and a failed write named by its file."""

from __future__ import annotations

import errno
import os

import pytest

from recloss.atomic import write_atomic
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


def test_an_interrupted_write_leaves_no_temporary_and_stays_an_interrupt(tmp_path):
    def interrupted(tmp):
        tmp.write_text("{")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "metrics.json", interrupted)
    assert os.listdir(tmp_path) == []
