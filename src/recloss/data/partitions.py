"""Partitioned Parquet folders, as Spark, Hive and PyArrow write them (Hive-style partitioning).

A folder `clicks/` of `day=2024-01-01/part-0.parquet` files keeps its rows in the files and its
partition columns in the folder names: each file's rows take the values of the `key=value`
folders above it, as text (`%`-escapes decoded; Hive's `__HIVE_DEFAULT_PARTITION__` is a missing
value). Names starting with `_` or `.` (`_SUCCESS`, `.crc` checksums, `_temporary/`) are the
writers' bookkeeping, not data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"

Partition = dict[str, str | None]  # a file's partition columns and their values


def data_files(folder: Path, suffixes: Sequence[str] = ("",)) -> list[Path]:
    """The files under `folder` at any depth whose names end in one of `suffixes` (by default
    all), in path order."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.name.endswith(tuple(suffixes))
        and not any(part.startswith(("_", ".")) for part in path.relative_to(folder).parts)
        and path.is_file()
    )


def partition_of(path: Path) -> Partition:
    """The `key=value` folders directly above the file at `path`, outermost first."""
    found = {}
    for folder in path.parents:
        key, equals, value = folder.name.partition("=")
        if not (equals and key):
            break
        found[unquote(key)] = None if value == NULL_PARTITION else unquote(value)
    return dict(reversed(found.items()))


def with_partition(data: pa.RecordBatch, partition: Partition) -> pa.RecordBatch:
    """`data` with a column of each partition value, after its own."""
    values = [pa.repeat(pa.scalar(v, pa.string()), data.num_rows) for v in partition.values()]
    names = [*data.schema.names, *partition]
    return pa.RecordBatch.from_arrays([*data.columns, *values], names=names)


__all__ = ["NULL_PARTITION", "Partition", "data_files", "partition_of", "with_partition"]
