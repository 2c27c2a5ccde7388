"""Values of new rows the model never saw: counted per field, and a warning where nearly all are.

A file whose values are written otherwise than the training data's (`u17` for `17`, another
case, a column of another data set) encodes without error, every value out of vocabulary, and
the model's predictions quietly lose that field. Counting makes it visible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from recloss.data.encode import Encoding, Vocabulary
from recloss.data.schema import MISSING_INDEX, OOV_INDEX

log = logging.getLogger("recloss.data")

CHUNK_ROWS = 1 << 20  # rows of codes compared at once
# A field is warned of when at least SUSPICIOUS_SHARE of its SUSPICIOUS_VALUES or more values
# are unknown, while at most USUAL_SHARE of the data set's own validation values are.
SUSPICIOUS_SHARE = 0.95
SUSPICIOUS_VALUES = 100
USUAL_SHARE = 0.5
EXAMPLES = 3  # known values the warning shows


def unknown_counts(x_cat: np.ndarray) -> dict[str, list[int]]:
    """Per field position, the number of values `unknown` and `present` (not missing)."""
    unknown = np.zeros(x_cat.shape[1], np.int64)
    present = np.zeros(x_cat.shape[1], np.int64)
    for first in range(0, len(x_cat), CHUNK_ROWS):
        codes = np.asarray(x_cat[first : first + CHUNK_ROWS])
        unknown += (codes == OOV_INDEX).sum(axis=0)
        present += (codes != MISSING_INDEX).sum(axis=0)
    return {"unknown": unknown.tolist(), "present": present.tolist()}


def warn_of_unknown_values(
    where: str,
    counts: dict[str, list[int]],
    encoding: Encoding,
    usual: Callable[[], dict[str, list[int]]],
) -> None:
    """Log each field where nearly all of the values are unknown to the model, though `usual`
    (the counts of the data set's validation rows, called only if needed) are mostly known."""
    suspicious = [
        j for j in range(len(encoding.cat_fields)) if _share(counts, j) >= SUSPICIOUS_SHARE
    ]
    seen = usual() if suspicious else counts
    for j in suspicious:
        if _share(seen, j, at_least=1) > USUAL_SHARE:
            continue  # as unknown in the data set's own rows (rare values, ids seen once)
        unknown, present = counts["unknown"][j], counts["present"][j]
        log.warning(
            "%s: field %s: %d of its %d values (%.0f%%) are unknown to the model%s; if they are "
            "written otherwise than in the training data, convert them",
            where, encoding.cat_fields[j], unknown, present, 100 * unknown / present,
            _known_examples(encoding.vocabs[j]),
        )  # fmt: skip


def _share(counts: dict[str, list[int]], j: int, at_least: int = SUSPICIOUS_VALUES) -> float:
    """Field j's share of unknown values, 0 where it has fewer than `at_least` values."""
    present = counts["present"][j]
    return counts["unknown"][j] / present if present >= at_least else 0.0


def _known_examples(vocab: Vocabulary) -> str:
    if not pa.types.is_string(vocab.values.type):  # a numeric field's bucket keys
        return ""
    examples = ", ".join(repr(v) for v in vocab.values[:EXAMPLES].to_pylist())
    return f", which knows values such as {examples}"
