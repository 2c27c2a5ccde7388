"""Delimited text files streamed in blocks by PyArrow, every row tied to its line in the file."""

from __future__ import annotations

import bisect
import codecs
import csv
import io
import re
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recloss.data.badlines import BadLines, Found, RowChecks
from recloss.data.display import human_bytes
from recloss.data.partitions import data_files
from recloss.data.prefetch import prefetch
from recloss.errors import DataError

MIN_BLOCK_BYTES = 1 << 12
MAX_BLOCK_BYTES = 1 << 23  # larger blocks are no faster; Arrow holds dozens of them read ahead
SAMPLE_BYTES = 1 << 16
MAX_HEADER_BYTES = 1 << 26  # a first line longer than this is no table's header
PARQUET_MAGIC = b"PAR1"  # the first (and last) four bytes of every Parquet file


@dataclass(frozen=True)
class Compressed:
    magic: re.Pattern[bytes]  # matches the first bytes of such a file
    kind: str
    suffix: str | None  # the name's ending that reads it decompressed (None: not read so)


STREAM_SUFFIXES = (".gz", ".bz2", ".zst", ".lz4")  # what `open_stream` decompresses

COMPRESSED = (
    Compressed(re.compile(rb"\x1f\x8b"), "gzip-compressed", ".gz"),
    Compressed(re.compile(rb"BZh[1-9]1AY&SY"), "bzip2-compressed", ".bz2"),
    Compressed(re.compile(rb"\x28\xb5\x2f\xfd"), "zstd-compressed", ".zst"),
    Compressed(re.compile(rb"\x04\x22\x4d\x18"), "lz4-compressed", ".lz4"),
    Compressed(re.compile(rb"PK\x03\x04"), "a zip archive", None),
)


@dataclass(frozen=True)
class TextFormat:
    """How a delimited text file is laid out."""

    delimiter: str
    header: bool = False  # first line holds column names
    columns: tuple[str, ...] | None = None  # names for header-less files; None: "0", "1", ...
    encoding: str = "utf8"
    quoted: bool = False  # fields may be enclosed in double quotes


def arrow_encoding(name: str) -> str:
    """Arrow's name for a text encoding: `utf8` (read natively) for any spelling of UTF-8."""
    return "utf8" if codecs.lookup(name).name == "utf-8" else name


def _not_text_in(path: Path, encoding: str, why: str) -> DataError:
    return DataError(
        f"{path}: not {codecs.lookup(encoding).name} text ({why}); for a CSV file in another "
        "encoding, set data.table.encoding (latin-1, cp1252, ...)"
    )


def open_stream(path: Path) -> pa.NativeFile:
    """Open a file for reading, decompressing .gz/.bz2/.zst/.lz4 transparently."""
    try:
        return pa.input_stream(str(path), compression="detect")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{path}: cannot open ({err})") from None


def sample(path: Path, size: int = SAMPLE_BYTES) -> bytes:
    """The first `size` bytes of the (decompressed) file."""
    with open_stream(path) as stream:
        try:
            return stream.read(size)
        except (OSError, pa.ArrowException) as err:
            raise DataError(f"{path}: cannot read ({err})") from None


def is_parquet(path: Path) -> bool:
    """Whether `path` (or a folder's first data file, at any depth) starts as a Parquet file
    does."""
    if path.is_dir():
        path = next(iter(data_files(path)), path)
    try:
        with open(path, "rb") as f:
            return f.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC
    except OSError:  # missing or unreadable: the reader says so
        return False


def compression_of(path: Path) -> Compressed | None:
    """The compression or archive the first bytes of the file at `path` show, whatever its name."""
    with open(path, "rb") as f:
        return _compression(f.read(16))


def _compression(head: bytes) -> Compressed | None:
    return next((c for c in COMPRESSED if c.magic.match(head)), None)


def text_head(path: Path) -> bytes:
    """The first bytes of a delimited text file; DataError if it is empty or binary."""
    head = sample(path)
    if not head.strip():
        raise DataError(f"{path}: file is empty")
    packed = _compression(head)
    if packed is not None:  # compressed, but not named so: decompression goes by the suffix
        fix = f"name it {path.name}{packed.suffix}" if packed.suffix else "extract it first"
        raise DataError(f"{path}: {packed.kind}, where delimited text is expected; {fix}")
    if b"\0" in head:  # no delimited text has NUL bytes: a Parquet or other binary file
        kind = "a Parquet file" if head.startswith(PARQUET_MAGIC) else "not a text file"
        raise DataError(f"{path}: {kind}, where delimited text is expected")
    return head


def first_line(path: Path) -> bytes:
    """The file's first line without its end, however long (a wide table's header)."""
    head = text_head(path)
    if b"\n" in head or len(head) < SAMPLE_BYTES:
        return head.split(b"\n", 1)[0]
    parts = []
    with open_stream(path) as stream:
        while block := stream.read(SAMPLE_BYTES):
            parts.append(block.split(b"\n", 1)[0])
            if b"\n" in block:
                break
            if len(parts) * SAMPLE_BYTES >= MAX_HEADER_BYTES:
                raise DataError(
                    f"{path}: no line break in its first {human_bytes(MAX_HEADER_BYTES)}"
                )
    return b"".join(parts)


def column_names(path: Path, fmt: TextFormat) -> tuple[str, ...]:
    """Column names from the header line, the format, or positions for header-less files."""
    if fmt.columns is not None and not fmt.header:
        text_head(path)  # an empty or binary file is refused all the same
        return fmt.columns
    first = first_line(path).removeprefix(codecs.BOM_UTF8).rstrip(b"\r")
    try:
        first = first.decode(fmt.encoding)
    except UnicodeDecodeError as err:
        raise _not_text_in(path, fmt.encoding, f"line 1: {err.reason}") from None
    quoting = csv.QUOTE_MINIMAL if fmt.quoted else csv.QUOTE_NONE
    try:
        fields = next(csv.reader(io.StringIO(first), delimiter=fmt.delimiter, quoting=quoting))
    except csv.Error as err:
        raise DataError(f"{path}:1: {err}") from None
    if fmt.header:
        return tuple(f.strip() for f in fields)
    return tuple(str(i) for i in range(len(fields)))


def block_bytes(path: Path, chunk_rows: int) -> int:
    """Arrow block size that holds about `chunk_rows` lines, within cache-friendly bounds."""
    lines = sample(path).split(b"\n")[:-1] or [b"x" * 1024]
    mean = sum(len(line) + 1 for line in lines) / len(lines)
    longest = max(len(line) + 1 for line in lines)
    low = max(MIN_BLOCK_BYTES, 4 * longest)
    return int(min(max(chunk_rows * mean, low), max(MAX_BLOCK_BYTES, low)))


class _Lines:
    """Maps parsed rows back to file lines around the rows Arrow rejected for their field count."""

    def __init__(self, first_data_line: int) -> None:
        self.first = first_data_line
        self.invalid: list[int] = []  # line numbers, ascending (Arrow parses serially)
        self.problems: list[str] = []
        self.resolved = 0  # rejected rows already handed to the bad-line policy

    def reject(self, row: pacsv.InvalidRow) -> str:
        self.invalid.append(row.number)
        self.problems.append(f"expected {row.expected_columns} fields, found {row.actual_columns}")
        return "skip"

    def line_of(self, parsed_row: int) -> int:
        """Line of the parsed row with this index (0-based over the file's accepted rows)."""
        skipped = 0
        while True:
            line = self.first + parsed_row + skipped
            now = bisect.bisect_right(self.invalid, line)
            if now == skipped:
                return line
            skipped = now

    def pending(self, path: Path, upto_line: int | None) -> list[Found]:
        """Rejected rows up to a line (all if None) not yet handed to the policy."""
        end = (
            len(self.invalid) if upto_line is None else bisect.bisect_right(self.invalid, upto_line)
        )
        found = [
            (self.invalid[i], f"{path}:{self.invalid[i]}", self.problems[i])
            for i in range(self.resolved, end)
        ]
        self.resolved = max(self.resolved, end)
        return found


def _line_at(lines: _Lines, first_row: int, row: int) -> int:
    return lines.line_of(first_row + row)


class TextBatch:
    """A block of rows (all columns as strings) with the checks that decide which rows to keep."""

    def __init__(self, path: Path, data: pa.RecordBatch, first_row: int, lines: _Lines) -> None:
        self.path = path
        self.data = data
        self._first_row = first_row
        self._lines = lines
        # A bound method here would make a reference cycle that keeps every batch alive until
        # the garbage collector runs.
        self.checks = RowChecks(data.num_rows, str(path), partial(_line_at, lines, first_row))
        self.checks.drop(_blank_rows(data))

    def __len__(self) -> int:
        return self.data.num_rows

    def column(self, name: str) -> pa.Array:
        return self.data.column(name)

    def line_of(self, row: int) -> int:
        """1-based line in the file of a row of this batch."""
        return _line_at(self._lines, self._first_row, row)

    def resolve(self, policy: BadLines) -> np.ndarray:
        """Apply the bad-line policy to this batch; return the mask of rows to keep."""
        upto = self.line_of(len(self) - 1) if len(self) else self._lines.first - 1
        return self.checks.resolve(policy, self._lines.pending(self.path, upto))


def is_missing(column: pa.Array) -> np.ndarray:
    """Entries that are null or empty strings."""
    empty = pc.equal(column, "") if pa.types.is_string(column.type) else None
    missing = column.is_null() if empty is None else pc.or_kleene(empty, column.is_null())
    return missing.to_numpy(zero_copy_only=False)


def _blank_rows(data: pa.RecordBatch) -> np.ndarray:
    """Rows whose fields are all empty: Arrow's reading of blank lines."""
    blank = is_missing(data.column(0))
    for column in data.columns[1:]:
        if not blank.any():
            break
        blank &= is_missing(column)
    return blank


def read_text(
    path: Path,
    fmt: TextFormat,
    policy: BadLines,
    chunk_rows: int,
) -> Iterator[TextBatch]:
    """Stream a delimited file as string batches; the caller resolves each batch before the next.

    Empty fields read as empty strings (cheaper to parse than nulls; every consumer treats both
    as missing). Rows with the wrong number of fields and blank lines never reach the caller:
    the former are bad lines, the latter are dropped. All columns are read, since only a row
    empty in every column is a blank line.
    """
    names = column_names(path, fmt)
    lines = _Lines(first_data_line=2 if fmt.header else 1)
    read = pacsv.ReadOptions(
        use_threads=False,  # serial parsing keeps Arrow's line numbers of rejected rows
        block_size=block_bytes(path, chunk_rows),
        column_names=list(names),
        skip_rows=1 if fmt.header else 0,
        encoding=fmt.encoding,
    )
    parse = pacsv.ParseOptions(
        delimiter=fmt.delimiter,
        quote_char='"' if fmt.quoted else False,
        ignore_empty_lines=False,  # keeps Arrow's row numbers equal to file lines
        invalid_row_handler=lines.reject,
    )
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        strings_can_be_null=False,
    )

    def batches() -> Iterator[pa.RecordBatch]:
        # Runs in the prefetch thread, which closes it however reading ends: the Arrow reader
        # and the file are released there, before the thread is joined.
        with open_stream(path) as stream:
            try:
                reader = pacsv.open_csv(stream, read, parse, convert)
                try:
                    yield from reader
                finally:
                    reader.close()
            except pa.ArrowInvalid as err:
                if "Empty CSV file" in str(err):
                    raise DataError(f"{path}: file is empty") from None
                if "invalid UTF8" in str(err):
                    raise _not_text_in(path, "utf8", str(err)) from None
                raise DataError(f"{path}: {err}") from None

    first_row = 0
    with closing(prefetch(batches())) as blocks:  # closing this generator stops the thread
        for data in blocks:
            yield TextBatch(path, data, first_row, lines)
            first_row += data.num_rows
    policy.reject(pending := lines.pending(path, None), len(pending))
