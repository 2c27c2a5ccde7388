"""Columns of a scored source kept as they are, row for row with its encoded rows (ids beside
their predictions)."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from recloss.data.badlines import BadLines
from recloss.data.chunks import Reader


def read_kept_columns(
    reader: Reader, names: Sequence[str], on_bad_line: str, chunk_rows: int
) -> pa.Table:
    """`names` of the reader's source, one row per row its chunks keep: a pass of its own, whose
    bad lines, skipped alike, were reported by the pass that encoded the rows."""
    reader.keep_columns(names)
    quiet = BadLines(on_bad_line, logged=0)
    pieces = [pa.table(chunk.kept_columns) for chunk in reader.chunks(quiet, chunk_rows)]
    if not pieces:
        return pa.table({name: pa.array([], pa.string()) for name in reader.keep})
    return pa.concat_tables(pieces, promote_options="permissive")
