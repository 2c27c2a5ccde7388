"""Readers: stream a source's rows as chunks of raw tokens, numbers and class labels.

A reader knows a file format and nothing of vocabularies or caches. Every chunk holds, per
categorical field, an Arrow array of string tokens (null or empty = missing); per numeric field,
int64 or float64 values (null = missing); and the labels as class indices. Bad rows never reach
a chunk: the bad-line policy stops at them or counts them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recloss.config import TableSchema
from recloss.data.badlines import BadLines, RowChecks
from recloss.data.cache import file_identity, table_identity
from recloss.data.convert import binary_label, class_label, signed_label, to_float, to_int
from recloss.data.schema import Task
from recloss.data.text import TextBatch, TextFormat, column_names, read_text, sample
from recloss.errors import ConfigError, DataError

ALL = ("all",)  # the single part of a source without its own splits
OWN_SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Layout:
    """Field names of a source, in column order of the encoded arrays."""

    cat: tuple[str, ...]
    num: tuple[str, ...] = ()


@dataclass
class Chunk:
    """Rows of one source part."""

    cat: list[pa.Array]
    num: list[pa.Array]
    y: np.ndarray  # int64 class indices
    part: int = 0  # index into Reader.parts

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def kept(
        cls, cat: list[pa.Array], num: list[pa.Array], y: np.ndarray, keep: np.ndarray, part: int
    ) -> Chunk:
        """A chunk of the rows where `keep` is true."""
        if not keep.all():
            mask = pa.array(keep)
            cat = [pc.filter(a, mask) for a in cat]
            num = [pc.filter(a, mask) for a in num]
            y = y[keep]
        return cls(cat, num, y, part)


class Reader(ABC):
    """A source of rows: its files, field layout, parts (own splits) and number of classes."""

    layout: Layout
    files: tuple[Path, ...]
    parts: tuple[str, ...] = ALL
    num_classes: int | None = 2  # None: max label + 1, known after a pass

    @property
    def source(self) -> str:
        """The source's name in messages: its first file."""
        return str(self.files[0])

    def identities(self) -> list[dict]:
        """What identifies the source's content, for the cache fingerprint."""
        return [file_identity(p) for p in self.files]

    @abstractmethod
    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        """Stream the rows in file order."""


def split_parts(
    files: dict[str, Path] | Sequence[Path],
) -> tuple[tuple[Path, ...], tuple[int, ...]]:
    """Files and their part indices, from own-split files (a dict) or one part (a list)."""
    if isinstance(files, dict):
        return tuple(files.values()), tuple(OWN_SPLITS.index(k) for k in files)
    return tuple(files), (0,) * len(files)


# --- Criteo -------------------------------------------------------------------------------------

CRITEO_INTS = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATS = tuple(f"C{i}" for i in range(1, 27))
CRITEO_FORMAT = TextFormat(delimiter="\t", columns=("label", *CRITEO_INTS, *CRITEO_CATS))


class CriteoReader(Reader):
    """Criteo Kaggle/DAC `train.txt` or 1TB `day_N`: label, I1..I13 integers, C1..C26 hex tokens."""

    layout = Layout(cat=CRITEO_CATS, num=CRITEO_INTS)

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = tuple(files)

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        for path in self.files:
            with closing(read_text(path, CRITEO_FORMAT, policy, chunk_rows)) as batches:
                for batch in batches:
                    y = binary_label(batch.column("label"), batch.checks)
                    ints = [to_int(batch.column(n), batch.checks, n) for n in CRITEO_INTS]
                    keep = batch.resolve(policy)
                    cats = [batch.column(n) for n in CRITEO_CATS]
                    yield Chunk.kept(cats, ints, y, keep, 0)


# --- Avazu --------------------------------------------------------------------------------------

AVAZU_CATS = (
    "C1",
    "banner_pos",
    "site_id",
    "site_domain",
    "site_category",
    "app_id",
    "app_domain",
    "app_category",
    "device_id",
    "device_ip",
    "device_model",
    "device_type",
    "device_conn_type",
    "C14",
    "C15",
    "C16",
    "C17",
    "C18",
    "C19",
    "C20",
    "C21",
)
AVAZU_FORMAT = TextFormat(delimiter=",", header=True)


class AvazuReader(Reader):
    """Avazu `train.csv`: `id` dropped, `hour` (YYMMDDHH) split into hour of day and weekday."""

    layout = Layout(cat=("hour", "weekday", *AVAZU_CATS))

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = tuple(files)
        for path in self.files:
            have = column_names(path, AVAZU_FORMAT)
            missing = [c for c in ("click", "hour", *AVAZU_CATS) if c not in have]
            if missing:
                raise DataError(f"{path}:1: Avazu header lacks column(s) {', '.join(missing)}")

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        for path in self.files:
            with closing(read_text(path, AVAZU_FORMAT, policy, chunk_rows)) as batches:
                for batch in batches:
                    y = binary_label(batch.column("click"), batch.checks, "click")
                    hour, weekday = _hour_fields(batch)
                    keep = batch.resolve(policy)
                    cats = [hour, weekday, *(batch.column(n) for n in AVAZU_CATS)]
                    yield Chunk.kept(cats, [], y, keep, 0)


def _hour_fields(batch: TextBatch) -> tuple[pa.Array, pa.Array]:
    """Hour of day (0-23) and weekday (0 = Monday) of Avazu's YYMMDDHH `hour` as tokens."""
    raw = batch.column("hour")
    when = pc.strptime(raw, format="%y%m%d%H", unit="s", error_is_null=True)
    bad = when.is_null().to_numpy(zero_copy_only=False)
    batch.checks.add(bad, lambda r: f"hour {raw[r].as_py()!r} is not a YYMMDDHH time")
    return pc.cast(pc.hour(when), pa.string()), pc.cast(pc.day_of_week(when), pa.string())


# --- libFM / libSVM -----------------------------------------------------------------------------

LINE_FORMAT = TextFormat(delimiter="\x1f", columns=("line",))  # one column: the whole line


def split_fields(batch: TextBatch, tokens: pa.ListArray, count: int, what: str) -> list[pa.Array]:
    """The first `count` tokens of each row's list; rows with another count are bad rows."""
    lengths = pc.list_value_length(tokens).to_numpy(zero_copy_only=False)
    batch.checks.add(lengths != count, lambda r: f"expected {count} {what}, found {lengths[r]}")
    return [
        pc.list_slice(tokens, i, i + 1, return_fixed_size_list=True).flatten() for i in range(count)
    ]


def whitespace_tokens(batch: TextBatch) -> pa.ListArray:
    line = pc.fill_null(batch.column("line"), "")
    return pc.utf8_split_whitespace(pc.utf8_trim_whitespace(line))


class LibFMReader(Reader):
    """libFM/libSVM lines `label idx:val ...` with one feature per field, in field order."""

    def __init__(self, files: dict[str, Path] | Sequence[Path]) -> None:
        self.files, self._parts = split_parts(files)
        self.parts = OWN_SPLITS if isinstance(files, dict) else ALL
        width = _first_line_width(self.files[0])
        self.layout = Layout(cat=tuple(f"f{i}" for i in range(1, width)))

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        width = len(self.layout.cat) + 1
        for path, part in zip(self.files, self._parts, strict=True):
            with closing(read_text(path, LINE_FORMAT, policy, chunk_rows)) as batches:
                for batch in batches:
                    tokens = whitespace_tokens(batch)
                    label, *features = split_fields(batch, tokens, width, "tokens")
                    y = signed_label(label, batch.checks)
                    cats = [_feature_index(batch, f, i) for i, f in enumerate(features, 1)]
                    keep = batch.resolve(policy)
                    yield Chunk.kept(cats, [], y, keep, part)


def _first_line_width(path: Path) -> int:
    lines = [line for line in sample(path).split(b"\n") if line.strip()]
    if not lines:
        raise DataError(f"{path}: file is empty")
    width = len(lines[0].split())
    if width < 2:
        raise DataError(f"{path}:1: a libFM line needs a label and at least one idx:value")
    return width


def _feature_index(batch: TextBatch, token: pa.Array, field: int) -> pa.Array:
    index = pc.struct_field(pc.extract_regex(token, r"^(?P<idx>[0-9]+):[^:]+$"), [0])
    bad = (index.is_null().to_numpy(zero_copy_only=False)) & token.is_valid().to_numpy(
        zero_copy_only=False
    )
    batch.checks.add(bad, lambda r: f"feature {field} {token[r].as_py()!r} is not idx:value")
    return index


# --- CSV and Parquet with a table schema --------------------------------------------------------


def check_columns(path: Path | str, have: Sequence[str], table: TableSchema) -> None:
    """Every column the table config names must exist in the file (or in-memory table)."""
    for key in ("label", "categorical", "numeric"):
        names = getattr(table, key)
        for name in [names] if isinstance(names, str) else names:
            if name not in have:
                shown = ", ".join(have[:20]) + (" ..." if len(have) > 20 else "")
                raise ConfigError(
                    f"data.table.{key}: column {name!r} is not in {path} (columns: {shown})"
                )


def table_label(column: pa.Array, checks: RowChecks, task: Task, name: str) -> np.ndarray:
    what = f"label {name}"
    if task == "binary":
        return binary_label(column, checks, what)
    return class_label(column, checks, what)


class TableReader(Reader):
    """Shared by CSV and Parquet: columns named by `DataConfig.table`."""

    def __init__(
        self, files: dict[str, Path] | Sequence[Path], table: TableSchema, task: Task
    ) -> None:
        self.files, self._parts = split_parts(files)
        self.parts = OWN_SPLITS if isinstance(files, dict) else ALL
        self.table = table
        self.task = task
        self.num_classes = 2 if task == "binary" else None
        self.layout = Layout(cat=tuple(table.categorical), num=tuple(table.numeric))
        if not table.categorical and not table.numeric:
            raise ConfigError("data.table: name at least one categorical or numeric column")
        self.wanted = (table.label, *table.categorical, *table.numeric)


class CSVReader(TableReader):
    """Delimited text; without a header, columns are named by position: "0", "1", ..."""

    def __init__(
        self, files: dict[str, Path] | Sequence[Path], table: TableSchema, task: Task
    ) -> None:
        super().__init__(files, table, task)
        self.format = TextFormat(delimiter=table.separator, header=table.header, quoted=True)
        for path in self.files:
            check_columns(path, column_names(path, self.format), table)

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        t = self.table
        for path, part in zip(self.files, self._parts, strict=True):
            with closing(read_text(path, self.format, policy, chunk_rows)) as batches:
                for batch in batches:
                    y = table_label(batch.column(t.label), batch.checks, self.task, t.label)
                    num = [to_float(batch.column(n), batch.checks, n) for n in t.numeric]
                    keep = batch.resolve(policy)
                    cats = [batch.column(c) for c in t.categorical]
                    yield Chunk.kept(cats, num, y, keep, part)


class ParquetReader(TableReader):
    """Parquet files read in record batches; errors name the 1-based row."""

    def __init__(
        self, files: dict[str, Path] | Sequence[Path], table: TableSchema, task: Task
    ) -> None:
        super().__init__(files, table, task)
        for path in self.files:
            check_columns(path, _parquet_file(path).schema_arrow.names, table)

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        for path, part in zip(self.files, self._parts, strict=True):
            first = 1
            with (
                closing(_parquet_file(path)) as file,
                closing(file.iter_batches(batch_size=chunk_rows, columns=self.wanted)) as batches,
            ):
                for data in batches:
                    yield arrow_chunk(self, data, str(path), first, policy, part)
                    first += data.num_rows


class ArrowReader(TableReader):
    """An in-memory Arrow table, read exactly like a Parquet file holding the same rows."""

    def __init__(self, data: pa.Table, table: TableSchema, task: Task, name: str) -> None:
        super().__init__([], table, task)
        self.name = name
        check_columns(name, data.column_names, table)
        self.data = data.select(list(dict.fromkeys(self.wanted)))

    @property
    def source(self) -> str:
        return self.name

    def identities(self) -> list[dict]:
        return [table_identity(self.data)]

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        # Slices of chunk_rows rows, as Parquet's iter_batches gives them (same float sums).
        for first in range(0, self.data.num_rows, chunk_rows):
            (data,) = self.data.slice(first, chunk_rows).combine_chunks().to_batches()
            yield arrow_chunk(self, data, self.name, first + 1, policy, 0)


def arrow_chunk(
    reader: TableReader, data: pa.RecordBatch, where: str, first: int, policy: BadLines, part: int
) -> Chunk:
    """A chunk of typed Arrow columns (Parquet or in-memory); `first`: row number of row 0."""
    t = reader.table
    checks = RowChecks(data.num_rows, where, lambda r: first + r, unit="row ")
    label = pc.cast(data.column(t.label), pa.string())
    y = table_label(label, checks, reader.task, t.label)
    num = [_parquet_numeric(data.column(n), checks, n) for n in t.numeric]
    cat = [_parquet_tokens(data.column(c)) for c in t.categorical]
    return Chunk.kept(cat, num, y, checks.resolve(policy), part)


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{path}: not a readable Parquet file ({err})") from None


def _parquet_tokens(column: pa.Array) -> pa.Array:
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


def _parquet_numeric(column: pa.Array, checks: RowChecks, name: str) -> pa.Array:
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = pc.cast(column, pa.float64())
        return pc.if_else(pc.is_finite(values), values, pa.scalar(None, pa.float64()))
    return to_float(pc.cast(column, pa.string()), checks, name)
