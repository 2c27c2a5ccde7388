"""Vocabularies and numeric transforms: from raw tokens to per-field indices and features.

Vocabularies are counted over all rows of the source, before splitting (as FuxiCTR and the
AutoLoss-era papers do), so the test split sees no values the training split could not have.
Per field: index 0 is a missing value (null or empty), 1 a value rarer than `min_count` (or
unseen when encoding another file), known values from 2 ordered by count (descending), then value.

Numeric fields, `bucket` (Criteo's convention): v > 2 becomes the bucket floor(ln(v)^2), any
other value its own category floor(v); buckets and raw values get distinct keys (raw values are
at most 2, bucket b has key 3 + b), and the keys are then counted and encoded like
tokens. `continuous`: log1p of the value clipped at 0, standardised with the mean and standard
deviation over all rows; missing values become 0 (the mean).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from recloss.data.formats import Chunk, Layout
from recloss.data.schema import FIRST_VALUE_INDEX, MISSING_INDEX, OOV_INDEX
from recloss.data.text import is_missing

Numeric = Literal["bucket", "continuous"]
BUCKET_KEY_OFFSET = 3
MERGE_AT = 1 << 18  # partial counts held per field before they are merged
VOCAB_FILE = "vocab.arrow"


def bucket_keys(values: pa.Array) -> pa.Array:
    """Criteo's log-square buckets of numeric values as int64 keys (null stays null)."""
    v = pc.fill_null(values, 0).to_numpy(zero_copy_only=False)
    keys = np.floor(np.clip(v, -(2.0**62), 2.0)).astype(np.int64)
    large = v > 2
    keys[large] = np.floor(np.log(v[large]) ** 2).astype(np.int64) + BUCKET_KEY_OFFSET
    return pa.array(
        keys, mask=values.is_null().to_numpy(zero_copy_only=False) if values.null_count else None
    )


def log_values(values: pa.Array) -> np.ndarray:
    """log1p of values clipped at 0, NaN where missing."""
    v = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)  # NaN where null
    return np.log1p(np.maximum(v, 0.0))


class ValueCounter:
    """Occurrences of each value of one field over many arrays, merged as they accumulate."""

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []
        self._pending = 0
        self._merged = 0

    def add(self, values: pa.Array) -> None:
        counts = pc.value_counts(values)
        table = pa.table({"value": counts.field(0), "count": counts.field(1)})
        table = table.filter(pc.invert(pa.array(is_missing(table["value"].combine_chunks()))))
        self._parts.append(table)
        self._pending += table.num_rows
        if self._pending > max(MERGE_AT, self._merged):
            self._merge()

    def _merge(self) -> None:
        merged = pa.concat_tables(self._parts).group_by("value").aggregate([("count", "sum")])
        self._parts = [merged.rename_columns({"count_sum": "count"}).select(["value", "count"])]
        self._merged = self._parts[0].num_rows
        self._pending = 0

    def vocabulary(self, min_count: int, kind: pa.DataType) -> Vocabulary:
        """Values seen at least `min_count` times, most frequent first, ties by value."""
        if not self._parts:
            return Vocabulary(pa.array([], kind), np.zeros(0, np.int64))
        self._merge()
        table = self._parts[0]
        table = table.filter(pc.greater_equal(table["count"], min_count))
        table = table.sort_by([("count", "descending"), ("value", "ascending")])
        return Vocabulary(
            table["value"].combine_chunks().cast(kind), table["count"].to_numpy().astype(np.int64)
        )


@dataclass
class Vocabulary:
    """Known values of one field; value i has index i + 2."""

    values: pa.Array
    counts: np.ndarray

    @property
    def cardinality(self) -> int:
        """Number of indices, the reserved ones included."""
        return len(self.values) + FIRST_VALUE_INDEX

    def encode(self, tokens: pa.Array) -> np.ndarray:
        """Indices (int32) of tokens: 0 missing, 1 out of vocabulary, known values from 2."""
        if tokens.null_count == len(tokens):
            return np.full(len(tokens), MISSING_INDEX, dtype=np.int32)
        # Look each distinct token of the chunk up once rather than every row.
        encoded = tokens.dictionary_encode()
        found = pc.fill_null(pc.index_in(encoded.dictionary, value_set=self.values), -1)
        found = found.to_numpy(zero_copy_only=False)
        lookup = np.empty(len(found) + 1, dtype=np.int32)
        lookup[0] = MISSING_INDEX  # position 0 stands for a null token
        lookup[1:] = np.where(found >= 0, found + FIRST_VALUE_INDEX, OOV_INDEX)
        lookup[1:][is_missing(encoded.dictionary)] = MISSING_INDEX
        positions = pc.fill_null(pc.add(encoded.indices, 1), 0).to_numpy(zero_copy_only=False)
        return lookup[positions]


@dataclass
class Encoding:
    """Everything needed to encode rows of a source: field names, vocabularies, numeric stats."""

    cat_fields: tuple[str, ...]
    num_fields: tuple[str, ...]
    numeric: Numeric
    vocabs: list[Vocabulary]
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.ones(0))

    @property
    def cardinalities(self) -> tuple[int, ...]:
        return tuple(v.cardinality for v in self.vocabs)

    def encode(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray | None]:
        """Categorical indices [n, F] int32 and continuous features [n, N] float32 (or None)."""
        tokens = cat_tokens(chunk, self.numeric)
        x_cat = np.empty((len(chunk), len(tokens)), dtype=np.int32)
        for j, (vocab, values) in enumerate(zip(self.vocabs, tokens, strict=True)):
            x_cat[:, j] = vocab.encode(values)
        if self.numeric == "bucket" or not chunk.num:
            return x_cat, None
        logs = np.stack([log_values(v) for v in chunk.num], axis=1)
        x_num = np.nan_to_num((logs - self.mean) / self.std, nan=0.0)
        return x_cat, x_num.astype(np.float32)

    def save(self, folder: Path) -> None:
        """Write the vocabularies as one Arrow file (numeric keys and tokens in own columns)."""
        columns: dict[str, list[pa.Array]] = {"field": [], "token": [], "key": [], "count": []}
        for j, vocab in enumerate(self.vocabs):
            n = len(vocab.values)
            is_key = pa.types.is_integer(vocab.values.type)
            columns["field"].append(pa.array(np.full(n, j, np.int32)))
            columns["token"].append(pa.nulls(n, pa.string()) if is_key else vocab.values)
            columns["key"].append(vocab.values if is_key else pa.nulls(n, pa.int64()))
            columns["count"].append(pa.array(vocab.counts, pa.int64()))
        table = pa.table(
            {k: pa.chunked_array(v, type=_COLUMN_TYPES[k]) for k, v in columns.items()}
        )
        feather.write_feather(table, folder / VOCAB_FILE, compression="uncompressed")

    @classmethod
    def load(cls, folder: Path, meta: dict) -> Encoding:
        """Read what `save` wrote, with the field layout and stats kept in the metadata."""
        table = feather.read_table(folder / VOCAB_FILE, memory_map=True)
        cat_fields = tuple(meta["schema"]["cat_fields"])
        kinds = meta["encoding"]["key_fields"]
        bounds = np.searchsorted(table["field"].to_numpy(), np.arange(len(cat_fields) + 1))
        vocabs = []
        for j, name in enumerate(cat_fields):
            part = table.slice(bounds[j], bounds[j + 1] - bounds[j])
            values = part["key" if name in kinds else "token"].combine_chunks()
            vocabs.append(Vocabulary(values, part["count"].to_numpy()))
        enc = meta["encoding"]
        return cls(
            cat_fields=cat_fields,
            num_fields=tuple(meta["schema"]["num_fields"]),
            numeric=enc["numeric"],
            vocabs=vocabs,
            mean=np.asarray(enc["mean"], dtype=np.float64),
            std=np.asarray(enc["std"], dtype=np.float64),
        )

    def describe(self) -> dict:
        """The JSON-friendly part of the encoding, for the cache metadata."""
        keyed = [
            f
            for f, v in zip(self.cat_fields, self.vocabs, strict=True)
            if pa.types.is_integer(v.values.type)
        ]
        return {
            "numeric": self.numeric,
            "key_fields": keyed,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "vocab_sizes": dict(zip(self.cat_fields, self.cardinalities, strict=True)),
        }


_COLUMN_TYPES = {"field": pa.int32(), "token": pa.string(), "key": pa.int64(), "count": pa.int64()}


def cat_fields(layout: Layout, numeric: Numeric) -> tuple[str, ...]:
    """Categorical fields after the numeric transform: bucketed numeric fields come last."""
    return layout.cat + (layout.num if numeric == "bucket" else ())


def cat_tokens(chunk: Chunk, numeric: Numeric) -> list[pa.Array]:
    """Token arrays of every categorical field of a chunk, bucketed numeric fields included."""
    if numeric == "bucket":
        return [*chunk.cat, *(bucket_keys(v) for v in chunk.num)]
    return list(chunk.cat)


class Counter:
    """The counting pass: value counts per categorical field, moments of continuous fields."""

    def __init__(self, layout: Layout, numeric: Numeric) -> None:
        self.layout = layout
        self.numeric = numeric
        self.fields = cat_fields(layout, numeric)
        self.counters = [ValueCounter() for _ in self.fields]
        self.kinds: list[pa.DataType] = [pa.string()] * len(layout.cat) + [pa.int64()] * (
            len(self.fields) - len(layout.cat)
        )
        n = 0 if numeric == "bucket" else len(layout.num)
        self._n, self._sum, self._sumsq = np.zeros(n), np.zeros(n), np.zeros(n)

    def add(self, chunk: Chunk) -> None:
        for counter, values in zip(self.counters, cat_tokens(chunk, self.numeric), strict=True):
            counter.add(values)
        if self.numeric == "continuous" and chunk.num:
            logs = np.stack([log_values(v) for v in chunk.num], axis=1)
            seen = ~np.isnan(logs)
            self._n += seen.sum(axis=0)
            self._sum += np.where(seen, logs, 0).sum(axis=0)
            self._sumsq += np.where(seen, logs**2, 0).sum(axis=0)

    def encoding(self, min_count: int) -> Encoding:
        """The vocabularies (values seen at least `min_count` times) and numeric stats."""
        vocabs = [
            c.vocabulary(min_count, kind) for c, kind in zip(self.counters, self.kinds, strict=True)
        ]
        n = np.maximum(self._n, 1)
        mean = self._sum / n
        std = np.sqrt(np.maximum(self._sumsq / n - mean**2, 0.0))
        num = () if self.numeric == "bucket" else self.layout.num
        return Encoding(self.fields, num, self.numeric, vocabs, mean, np.where(std > 0, std, 1.0))
