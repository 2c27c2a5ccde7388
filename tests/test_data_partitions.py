"""Partitioned Parquet folders (Spark, Hive, PyArrow): their files, and the folders' columns."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq
import pytest
from datafiles import data_config, decode

from recloss.config import TableSchema
from recloss.data import prepare_dataset
from recloss.data.display import sources_text
from recloss.data.partitions import data_files, partition_of
from recloss.data.text import is_parquet
from recloss.errors import ConfigError

ROWS = pa.table({"clicked": [1, 0, 0, 1, 0, 0], "user": list("abcabc"), "day": list("xxyyzz")})


def spark_folder(folder: Path) -> Path:
    """Rows in part files beside the writer's bookkeeping, as Spark leaves them."""
    (folder / "_temporary" / "0").mkdir(parents=True)
    for k in range(2):
        pq.write_table(ROWS.slice(3 * k, 3), folder / f"part-0000{k}-c0ffee.snappy.parquet")
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / ".part-00000-c0ffee.snappy.parquet.crc").write_bytes(b"crc")
    pq.write_table(ROWS, folder / "_temporary" / "0" / "part-00000.parquet")  # not committed
    return folder


def test_a_spark_folder_is_its_part_files_without_the_bookkeeping(tmp_path):
    folder = spark_folder(tmp_path / "clicks")
    assert [p.name for p in data_files(folder, (".parquet",))] == [
        "part-00000-c0ffee.snappy.parquet",
        "part-00001-c0ffee.snappy.parquet",
    ]
    assert is_parquet(folder)  # its first file is `_SUCCESS`, empty: not the one to look at
    table = TableSchema(label="clicked", categorical=["user", "day"])
    ds = prepare_dataset(data_config(tmp_path, "parquet", folder, table=table), progress=False)
    assert ds.split("train").y.tolist() == [1, 0, 0, 1, 0, 0]


def test_a_partition_is_the_key_value_folders_right_above_a_file():
    folders = "country=FR/day=2024-01-01%2000%3A00/hour=__HIVE_DEFAULT_PARTITION__"
    path = Path(f"/data/run=3/clicks/{folders}/part-0.parquet")  # run=3: not below clicks
    assert partition_of(path) == {"country": "FR", "day": "2024-01-01 00:00", "hour": None}
    assert partition_of(Path("clicks/part-0.parquet")) == {}


def test_the_folders_of_a_hive_partitioned_folder_are_columns_of_its_rows(tmp_path):
    folder = tmp_path / "clicks"
    pa_ds.write_dataset(ROWS, folder, format="parquet", partitioning=["day"],
                        partitioning_flavor="hive")  # fmt: skip
    assert sorted(p.parent.name for p in folder.rglob("*.parquet")) == ["day=x", "day=y", "day=z"]
    table = TableSchema(label="clicked", categorical=["user", "day"])
    ds = prepare_dataset(data_config(tmp_path, "parquet", folder, table=table), progress=False)
    assert decode(ds, "day") == list("xxyyzz") and decode(ds, "user") == list("abcabc")
    assert ds.split("train").y.tolist() == [1, 0, 0, 1, 0, 0]
    assert sources_text(ds.meta["sources"]).count("day=") == 3  # few files: each named
    many = [{"path": f"{folder}/day={d}/part-0.parquet"} for d in range(30)]
    assert sources_text(many) == f"30 files under {folder}"
    missing = TableSchema(label="clicked", categorical=["user", "hour"])
    with pytest.raises(ConfigError, match=r"column 'hour' is not in .*day=x.*\(columns: .*day\)"):
        prepare_dataset(data_config(tmp_path, "parquet", folder, table=missing))


def test_a_file_that_holds_a_partition_column_itself_keeps_its_own_values(tmp_path):
    (tmp_path / "day=q").mkdir()
    pq.write_table(ROWS, tmp_path / "day=q" / "part-0.parquet")
    table = TableSchema(label="clicked", categorical=["day"])
    cfg = data_config(tmp_path, "parquet", tmp_path / "day=q", table=table)
    assert decode(prepare_dataset(cfg, progress=False), "day") == list("xxyyzz")
