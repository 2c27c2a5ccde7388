"""What every reader yields and is: chunks of one source part's rows, and the reader interface.

A reader knows a file format and nothing of vocabularies or caches. Every chunk holds, per
categorical field, an Arrow array of string tokens (null or empty = missing); per numeric field,
int64 or float64 values (null = missing); and the labels as class indices. Bad rows never reach
a chunk: the bad-line policy stops at them or counts them.

A reader built with `labeled=False` (or `None`, finding no label column) reads rows without
labels, a file to predict on: its chunks carry placeholder class indices that nothing scores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recloss.data.badlines import BadLines
from recloss.data.cache import file_identity
from recloss.errors import ConfigError
from recloss.names import also_closest

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
    y: np.ndarray  # int64 class indices (placeholder zeros when the reader is unlabeled)
    part: int = 0  # index into Reader.parts
    kept_columns: dict[str, pa.Array] = field(default_factory=dict)  # `Reader.keep`'s, as read

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def kept(
        cls,
        cat: list[pa.Array],
        num: list[pa.Array],
        y: np.ndarray,
        keep: np.ndarray,
        part: int,
        kept_columns: dict[str, pa.Array] | None = None,
    ) -> Chunk:
        """A chunk of the rows where `keep` is true."""
        kept_columns = kept_columns or {}
        if not keep.all():
            mask = pa.array(keep)
            cat = [pc.filter(a, mask) for a in cat]
            num = [pc.filter(a, mask) for a in num]
            kept_columns = {k: pc.filter(a, mask) for k, a in kept_columns.items()}
            y = y[keep]
        return cls(cat, num, y, part, kept_columns)


class Reader(ABC):
    """A source of rows: its files, field layout, parts (own splits) and number of classes."""

    layout: Layout
    files: tuple[Path, ...]
    parts: tuple[str, ...] = ALL
    num_classes: int | None = 2  # None: max label + 1, known after a pass
    labeled: bool = True  # False: the rows are read without a label column
    keep: tuple[str, ...] = ()  # source columns carried through as they are (`Chunk.kept_columns`)

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

    def keep_columns(self, names: Sequence[str]) -> None:
        """Carry these columns of the source through `chunks`, beside its rows (a scored
        file's ids); ConfigError naming a column it lacks. A source of unnamed columns has none."""
        raise ConfigError(f"--keep: {self.source} has no named columns to keep")


def column_list(have: Sequence[str], most: int = 20) -> str:
    """A file's columns in a message: the first `most`, then `...`."""
    return ", ".join(have[:most]) + (" ..." if len(have) > most else "")


def kept_names(
    names: Sequence[str], headers: Sequence[Sequence[str]], files: Sequence[Path | str]
) -> tuple[str, ...]:
    """`names` as given, once each, if every file has each (else ConfigError naming it)."""
    for have, path in zip(headers, files, strict=True):
        for name in names:
            if name not in have:
                shown = column_list(have)
                raise ConfigError(
                    f"--keep {name}: no such column in {path} (columns: {shown})"
                    + also_closest(name, have)
                )
    return tuple(dict.fromkeys(names))


def split_parts(
    files: dict[str, Path] | Sequence[Path],
) -> tuple[tuple[Path, ...], tuple[int, ...]]:
    """Files and their part indices, from own-split files (a dict) or one part (a list)."""
    if isinstance(files, dict):
        return tuple(files.values()), tuple(OWN_SPLITS.index(k) for k in files)
    return tuple(files), (0,) * len(files)


def with_label(labeled: bool | None, names: Sequence[str], label: str) -> bool:
    """Whether rows are read with their label: as asked, or (None) if its column is in `names`."""
    return label in names if labeled is None else labeled


def no_labels(rows: int) -> np.ndarray:
    """Placeholder class indices of rows read without a label column."""
    return np.zeros(rows, dtype=np.int64)
