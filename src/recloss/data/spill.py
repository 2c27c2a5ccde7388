"""The counting pass's dictionary-encoded chunks, kept on disk for the encoding pass.

Reading a source once and replaying its codes is much cheaper than parsing and hashing every
row again: the encoding pass only looks up each chunk's distinct values in the vocabularies.
The spill takes about as much temporary disk space as the prepared arrays.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from recloss.data.encode import Coded

_ARRAYS = ("idx", "logs", "y")


@dataclass(frozen=True)
class _Entry:
    rows: int
    part: int


class Spill:
    """Append `Coded` chunks in order, then read them back in groups of consecutive chunks."""

    def __init__(self, folder: Path, kinds: list[pa.DataType], num_fields: int) -> None:
        folder.mkdir(parents=True)
        self.folder = folder
        self.kinds = kinds
        self.num_fields = num_fields
        self._entries: list[_Entry] = []
        self._arrays = {name: (folder / f"{name}.bin").open("wb") for name in _ARRAYS}
        self._dicts = [
            pa.ipc.new_stream(str(folder / f"dict{j}.arrow"), pa.schema([("v", kind)]))
            for j, kind in enumerate(kinds)
        ]

    def append(self, coded: Coded) -> None:
        self._entries.append(_Entry(len(coded), coded.part))
        self._arrays["idx"].write(memoryview(np.ascontiguousarray(coded.indices, np.int32)))
        self._arrays["y"].write(memoryview(np.ascontiguousarray(coded.y, np.int64)))
        if coded.logs is not None:
            self._arrays["logs"].write(memoryview(np.ascontiguousarray(coded.logs, np.float32)))
        for writer, dictionary, kind in zip(
            self._dicts, coded.dictionaries, self.kinds, strict=True
        ):
            writer.write_batch(pa.record_batch([dictionary.cast(kind)], names=["v"]))

    def close(self) -> None:
        """Finish writing (idempotent)."""
        for f in self._arrays.values():
            f.close()
        for writer in self._dicts:
            writer.close()
        self._dicts = []

    def remove(self) -> None:
        """Delete the spilled files."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def groups(self, rows: int) -> Iterator[list[Coded]]:
        """The chunks in order, in runs of about `rows` rows that share a part."""
        self.close()
        files = {name: (self.folder / f"{name}.bin").open("rb") for name in _ARRAYS}
        readers = [
            pa.ipc.open_stream(str(self.folder / f"dict{j}.arrow")) for j in range(len(self.kinds))
        ]
        try:
            group: list[Coded] = []
            size = 0
            for entry in self._entries:
                if group and (group[-1].part != entry.part or size >= rows):
                    yield group
                    group, size = [], 0
                group.append(self._read(entry, files, readers))
                size += entry.rows
            if group:
                yield group
        finally:
            for f in files.values():
                f.close()

    def _read(self, entry: _Entry, files: dict, readers: list) -> Coded:
        n, width = entry.rows, len(self.kinds)
        indices = np.fromfile(files["idx"], np.int32, n * width).reshape(width, n)
        y = np.fromfile(files["y"], np.int64, n)
        logs = None
        if self.num_fields:
            logs = np.fromfile(files["logs"], np.float32, n * self.num_fields)
            logs = logs.reshape(n, self.num_fields)
        dictionaries = [reader.read_next_batch().column(0) for reader in readers]
        return Coded(dictionaries, indices, logs, y, entry.part)
