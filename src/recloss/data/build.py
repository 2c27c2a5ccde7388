"""The two passes that fill a cache: count (rows, labels, values), then encode and write."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recloss.config import DataConfig
from recloss.data.badlines import BadLines
from recloss.data.cache import CacheWriter
from recloss.data.encode import Coded, Counter, Encoding, Numeric, code_chunk, token_types
from recloss.data.formats import ALL, Reader
from recloss.data.schema import FIRST_VALUE_INDEX, Schema, Task
from recloss.data.spill import Spill
from recloss.data.splits import SPLITS, assign_splits, split_sizes
from recloss.data.synthetic import generate
from recloss.errors import DataError
from recloss.progress import ProgressBar

CHANGED = "the source changed while it was being prepared; run again"
TRAIN = SPLITS.index("train")  # the split (and part) index of training rows
SplitOf = Callable[[Coded], "np.ndarray | int"]


def progress_bar(show: bool, desc: str, total: int | None = None) -> ProgressBar:
    return ProgressBar(total=total, desc=desc, unit="row", unit_scale=True, show=show, leave=False)


@dataclass
class Scan:
    """What the counting pass learns: rows per part, rows per label, bad lines skipped."""

    part_rows: list[int]
    label_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bad_lines: int = 0

    @property
    def rows(self) -> int:
        return sum(self.part_rows)


def scan(
    reader: Reader,
    cfg: DataConfig,
    counter: Counter | None,
    spill: Spill,
    show: bool,
    counted_part: int | None = None,
) -> Scan:
    """First pass: dictionary-encode every chunk into the spill; count rows, labels, values.

    Values are counted in every chunk, or only in those of part `counted_part`.
    """
    policy = BadLines(cfg.on_bad_line)
    found = Scan([0] * len(reader.parts))
    # closing(): a bad line raised mid-file stops the reader's prefetch thread at once
    with (
        progress_bar(show, "counting") as bar,
        closing(reader.chunks(policy, cfg.chunk_rows)) as chunks,
    ):
        for chunk in chunks:
            coded = code_chunk(chunk, cfg.numeric)
            if counter is not None and counted_part in (None, chunk.part):
                counter.add(coded)
            spill.append(coded)
            found.part_rows[chunk.part] += len(chunk)
            counts = np.bincount(chunk.y, minlength=len(found.label_counts))
            counts[: len(found.label_counts)] += found.label_counts
            found.label_counts = counts
            bar.update(len(chunk))
    found.bad_lines = policy.count
    return found


class SplitWriter:
    """Scatters rows, in source order, into the arrays of their splits."""

    def __init__(
        self, cache: CacheWriter, sizes: dict[str, int], columns: dict[str, tuple]
    ) -> None:
        self.sizes = sizes
        self.arrays = {
            split: {
                name: cache.array(split, name, np.dtype(dtype), (n, *shape))
                for name, (dtype, shape) in columns.items()
            }
            for split, n in sizes.items()
        }
        self.filled = dict.fromkeys(sizes, 0)

    def write(self, split_of: np.ndarray | int, arrays: dict[str, np.ndarray]) -> None:
        """Append rows to their splits; `split_of` is a split index per row, or one for all."""
        n = len(arrays["y"])
        if isinstance(split_of, np.ndarray):
            # One stable gather groups the rows by split, keeping their order within each.
            order = np.argsort(split_of, kind="stable")
            arrays = {name: values[order] for name, values in arrays.items()}
            counts = np.bincount(split_of, minlength=len(self.sizes))
        else:
            counts = np.zeros(len(self.sizes), dtype=np.int64)
            counts[split_of] = n
        bounds = np.concatenate([[0], np.cumsum(counts)])
        for k, split in enumerate(self.sizes):
            if counts[k] == 0:
                continue
            start, stop = self.filled[split], self.filled[split] + int(counts[k])
            if stop > self.sizes[split]:
                raise DataError(CHANGED)
            for name, values in arrays.items():
                self.arrays[split][name].write(start, values[bounds[k] : bounds[k + 1]])
            self.filled[split] = stop

    def check_full(self) -> None:
        if self.filled != self.sizes:
            raise DataError(CHANGED)


class RowSplits:
    """A per-row split assignment handed out chunk by chunk."""

    def __init__(self, assignment: np.ndarray) -> None:
        self.assignment = assignment
        self.offset = 0

    def take(self, rows: int) -> np.ndarray:
        start, self.offset = self.offset, self.offset + rows
        if self.offset > len(self.assignment):
            raise DataError(CHANGED)
        return self.assignment[start : self.offset]


def columns_of(encoding: Encoding, num_classes: int) -> dict[str, tuple]:
    """Cached arrays per split: name -> (dtype, shape of one row)."""
    y = np.int8 if num_classes <= 127 else np.int16
    columns = {"x_cat": (np.int32, (len(encoding.cat_fields),)), "y": (y, ())}
    if encoding.num_fields:
        columns["x_num"] = (np.float32, (len(encoding.num_fields),))
    return columns


def encode_pass(
    spill: Spill,
    encoding: Encoding,
    cfg: DataConfig,
    writer: SplitWriter,
    split_of: SplitOf,
    show: bool,
) -> None:
    """Second pass: look the spilled chunks up in the vocabularies; write rows to their splits."""
    total = sum(writer.sizes.values())
    with (
        progress_bar(show, "encoding", total) as bar,
        closing(spill.groups(cfg.chunk_rows)) as groups,
    ):
        for group in groups:
            for coded, (x_cat, x_num) in zip(group, encoding.encode(group), strict=True):
                arrays = {"x_cat": x_cat, "y": coded.y}
                if x_num is not None:
                    arrays["x_num"] = x_num
                writer.write(split_of(coded), arrays)
                bar.update(len(coded))
    writer.check_full()


def count_train_rows(
    spill: Spill, counter: Counter, assignment: np.ndarray, cfg: DataConfig, show: bool
) -> None:
    """Count the values of the rows `assignment` puts in the training split, from the spill."""
    rows = RowSplits(assignment)
    with (
        progress_bar(show, "counting train", len(assignment)) as bar,
        closing(spill.groups(cfg.chunk_rows)) as groups,
    ):
        for group in groups:
            for coded in group:
                counter.add(coded, rows.take(len(coded)) == TRAIN)
                bar.update(len(coded))


def check_labels(found: Scan, num_classes: int, source: Path | str) -> None:
    """Every label must be a class of the task."""
    if len(found.label_counts) > num_classes:
        raise DataError(
            f"{source}: label {len(found.label_counts) - 1} is outside the task's "
            f"{num_classes} classes"
        )


def open_spill(cache: CacheWriter, reader: Reader, numeric: Numeric) -> Spill:
    """A spill for the reader's chunks inside the cache's temporary folder."""
    num = len(reader.layout.num) if numeric == "continuous" else 0
    spill = Spill(cache.tmp / ".spill", token_types(reader.layout, numeric), num)
    cache.track(spill)  # its files are closed however the preparation ends
    return spill


def _num_classes(reader: Reader, found: Scan) -> int:
    if reader.num_classes is not None:
        return reader.num_classes
    counts = found.label_counts
    if len(counts) < 2:
        raise DataError(f"{reader.source}: a multiclass label needs at least 2 classes")
    if counts[0] == 0:  # ratings 1..5, say: a class 0 no row has, and a model output for it
        lowest = int(np.flatnonzero(counts)[0])
        found = ", ".join(map(str, np.flatnonzero(counts)))
        raise DataError(
            f"{reader.source}: multi-class labels are class indices from 0, and the lowest "
            f"label here is {lowest}; number the classes from 0 (label - {lowest}), or name "
            f"them in data.table.classes: [{found}]"
        )
    return len(counts)


def build_from_reader(
    reader: Reader, cfg: DataConfig, min_count: int, task: Task, cache: CacheWriter, show: bool
) -> dict:
    """Count, encode and write a source read from files; return its metadata."""
    counter = Counter(reader.layout, cfg.numeric)
    spill = open_spill(cache, reader, cfg.numeric)
    random = reader.parts == ALL
    train_only = cfg.vocab_from == "train"
    # A random split is drawn once the rows are counted, so its training rows are counted
    # afterwards, from the spill (unless every row trains); given split files are counted
    # while they are read.
    during = None if random and train_only and cfg.split[0] < 1 else counter
    found = scan(reader, cfg, during, spill, show, TRAIN if train_only else None)
    if found.rows == 0:
        raise DataError(f"{reader.source}: no data rows")
    num_classes = _num_classes(reader, found)
    check_labels(found, num_classes, reader.source)
    if random:
        sizes = dict(zip(SPLITS, split_sizes(found.rows, cfg.split), strict=True))
        assignment = assign_splits(found.rows, cfg.split, cfg.split_seed)
        rows = RowSplits(assignment)

        def split_of(coded: Coded) -> np.ndarray | int:
            return rows.take(len(coded))
    else:
        sizes = dict(zip(SPLITS, found.part_rows, strict=True))

        def split_of(coded: Coded) -> np.ndarray | int:
            return coded.part

    if sizes["train"] == 0:
        raise DataError(f"{reader.source}: the training split is empty")
    if during is None:
        count_train_rows(spill, counter, assignment, cfg, show)
    encoding = counter.encoding(min_count)
    writer = SplitWriter(cache, sizes, columns_of(encoding, num_classes))
    encode_pass(spill, encoding, cfg, writer, split_of, show)
    spill.remove()
    encoding.save(cache.tmp)
    schema = Schema(
        task, num_classes, encoding.cat_fields, encoding.cardinalities, encoding.num_fields
    )
    return {
        "schema": schema.to_dict(),
        "rows": sizes,
        "total_rows": found.rows,
        "bad_lines": found.bad_lines,
        "label_counts": found.label_counts.tolist(),
        "splits_from": "random" if random else "files",
        "vocab_from": cfg.vocab_from,
        "encoding": encoding.describe(),
        "extra": [],
    }


def build_synthetic(cfg: DataConfig, cache: CacheWriter, show: bool) -> dict:
    """Generate the synthetic data set straight into the cache; return its metadata.

    Value v of a field has index v + 2 (no missing or rare values); `min_count` does not apply.
    """
    syn = cfg.synthetic
    sizes = dict(zip(SPLITS, split_sizes(syn.rows, cfg.split), strict=True))
    columns = {
        "x_cat": (np.int32, (syn.fields,)),
        "y": (np.int8, ()),
        "extra.p_true": (np.float32, ()),
    }
    writer = SplitWriter(cache, sizes, columns)
    rows = RowSplits(assign_splits(syn.rows, cfg.split, cfg.split_seed))
    labels = np.zeros(2, np.int64)
    with progress_bar(show, "generating", syn.rows) as bar:
        for codes, y, p in generate(syn):
            arrays = {"x_cat": codes + FIRST_VALUE_INDEX, "y": y, "extra.p_true": p}
            writer.write(rows.take(len(y)), arrays)
            labels += np.bincount(y, minlength=2)
            bar.update(len(y))
    writer.check_full()
    fields = tuple(f"f{i}" for i in range(1, syn.fields + 1))
    cards = (syn.cardinality + FIRST_VALUE_INDEX,) * syn.fields
    return {
        "schema": Schema("binary", 2, fields, cards).to_dict(),
        "rows": sizes,
        "total_rows": syn.rows,
        "bad_lines": 0,
        "label_counts": labels.tolist(),
        "splits_from": "random",
        "encoding": {"numeric": cfg.numeric, "vocab_sizes": dict(zip(fields, cards, strict=True))},
        "extra": ["p_true"],
    }
