"""Values of new rows the model never saw: counted per field, and a warning where nearly all are.

A file whose values are written otherwise than the training data's (`u17` for `17`, another
case, a column of another data set) encodes without error, every value out of vocabulary, and
the model's predictions quietly lose that field. Counting makes it visible.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from recloss.data.encode import Encoding
from recloss.data.schema import MISSING_INDEX, OOV_INDEX

log = logging.getLogger("recloss.data")

CHUNK_ROWS = 1 << 20
SUSPICIOUS_SHARE = 0.95  # of a field's values unknown, in at least
SUSPICIOUS_VALUES = 100  # values, warns
EXAMPLES = 3


def unknown_counts(x_cat: np.ndarray) -> dict[str, list[int]]:
    """Per field position: `[unknown, present]` values (missing ones are neither), by chunks."""
    unknown = np.zeros(x_cat.shape[1], np.int64)
    present = np.zeros(x_cat.shape[1], np.int64)
    for first in range(0, len(x_cat), CHUNK_ROWS):
        codes = np.asarray(x_cat[first : first + CHUNK_ROWS])
        unknown += (codes == OOV_INDEX).sum(axis=0)
        present += (codes != MISSING_INDEX).sum(axis=0)
    return {"unknown": unknown.tolist(), "present": present.tolist()}


def warn_of_unknown_values(where: str, counts: dict[str, list[int]], encoding: Encoding) -> None:
    """Log each field where nearly all of the values are unknown to the model, with known ones."""
    for name, vocab, unknown, present in zip(
        encoding.cat_fields, encoding.vocabs, counts["unknown"], counts["present"], strict=True
    ):
        suspicious = present >= SUSPICIOUS_VALUES and unknown >= SUSPICIOUS_SHARE * present
        if not suspicious or len(vocab.values) == 0:  # a field with no known value warned before
            continue
        known = ""
        if pa.types.is_string(vocab.values.type):  # not a numeric field's bucket keys
            examples = ", ".join(repr(v) for v in vocab.values[:EXAMPLES].to_pylist())
            known = f", which knows values such as {examples}"
        log.warning(
            "%s: field %s: %d of its %d values (%.0f%%) are unknown to the model%s; if they are "
            "written otherwise than in the training data, convert them",
            where, name, unknown, present, 100 * unknown / present, known,
        )  # fmt: skip
