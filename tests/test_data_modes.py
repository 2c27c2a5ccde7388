"""What recloss writes gets the modes of ordinary files and folders under the user's umask."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
from datafiles import data_config, grouplens_zip, write_criteo, write_ml100k_grouplens

from recloss.data import prepare_dataset
from recloss.data.fetch import GroupLensZip, fetch_ml100k
from recloss.search.controller import Controller, ControllerSpec, save_controller


@pytest.fixture(params=[0o022, 0o077])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_fetched_folder_and_files(tmp_path, umask):
    archive = grouplens_zip(tmp_path / "ml-100k.zip", write_ml100k_grouplens(tmp_path / "s", 50))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    folder = fetch_ml100k(tmp_path / "home", [GroupLensZip(str(archive), md5=md5, ratings=50)])
    assert mode(folder) == 0o777 & ~umask  # was 0700 from tempfile.mkdtemp
    assert {mode(p) for p in folder.iterdir()} == {0o666 & ~umask}


def test_cache_folders_and_files(tmp_path, umask):
    cfg = data_config(tmp_path, "criteo", write_criteo(tmp_path / "train.txt", rows=30))
    root = prepare_dataset(cfg, progress=False).root
    assert mode(root) == 0o777 & ~umask
    assert {mode(p) for p in root.rglob("*") if p.is_dir()} == {0o777 & ~umask}
    assert {mode(p) for p in root.rglob("*") if p.is_file()} == {0o666 & ~umask}


def test_controller_file(tmp_path, umask):
    path = save_controller(Controller(ControllerSpec("binary", 2, ("ce", "focal"))), tmp_path / "c")
    assert mode(path) == 0o666 & ~umask  # safetensors' own save_file writes 0600
