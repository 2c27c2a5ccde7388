"""The Open Bandit Dataset sample: ZOZOTOWN's logged recommendations, with item features.

A campaign folder (`random/all`, say) holds the log `<campaign>.csv` and `item_context.csv`.
Per logged impression: label `click`; categorical item_id, position, user_feature_0..3 and the
shown item's item_feature_1..3 (joined from item_context.csv on item_id); numeric the item's
item_feature_0 (its standardised price) and user-item_affinity_0..K-1 (the user's affinity to
each of the campaign's K items). Left out: the unnamed row index, timestamp and the logging
policy's propensity_score (constant 1/K under the random policy; no feature of the user).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recloss.data.badlines import BadLines
from recloss.data.chunks import Chunk, Layout, Reader, no_labels, with_label
from recloss.data.convert import binary_label, to_float
from recloss.data.text import TextFormat, column_names, read_text
from recloss.errors import DataError

CONTEXT_FILE = "item_context.csv"
LABEL = "click"
USER_FIELDS = tuple(f"user_feature_{i}" for i in range(4))
LOG_FIELDS = ("item_id", "position", *USER_FIELDS)
ITEM_FIELDS = ("item_feature_1", "item_feature_2", "item_feature_3")
ITEM_NUMERIC = "item_feature_0"
AFFINITY = "user-item_affinity_"
FORMAT = TextFormat(delimiter=",", header=True)
DEFAULT_CAMPAIGN = ("random", "all")


def campaign_folder(path: Path) -> Path:
    """The campaign folder a path names: itself, its log's folder, or the default `random/all`."""
    folder = path.parent if path.is_file() else path
    for candidate in (folder, folder / "all", folder.joinpath(*DEFAULT_CAMPAIGN)):
        if (candidate / CONTEXT_FILE).is_file():
            return candidate
    raise DataError(
        f"obd: {path} holds no {CONTEXT_FILE}; expected an Open Bandit Dataset folder "
        "(obd/, obd/random or a campaign folder such as obd/random/all)"
    )


def campaign_log(folder: Path) -> Path:
    """The campaign's log file: `<campaign>.csv` (all.csv in obd/random/all)."""
    log = folder / f"{folder.name}.csv"
    if log.is_file():
        return log
    others = sorted(p for p in folder.glob("*.csv") if p.name != CONTEXT_FILE)
    if len(others) != 1:
        raise DataError(f"obd: {folder} should hold one log .csv beside {CONTEXT_FILE}")
    return others[0]


class ObdReader(Reader):
    """A campaign's log joined with its item features on item_id."""

    def __init__(self, folder: Path, labeled: bool | None = True) -> None:
        log, context = campaign_log(folder), folder / CONTEXT_FILE
        self.files = (log, context)
        names = column_names(log, FORMAT)
        self.labeled = with_label(labeled, names, LABEL)
        lacking = [c for c in (LABEL,) * self.labeled + LOG_FIELDS if c not in names]
        if lacking:
            raise DataError(f"{log}:1: the header lacks column(s) {', '.join(lacking)}")
        self.affinities = tuple(n for n in names if n.startswith(AFFINITY))
        self.items = _item_table(context)
        self.layout = Layout(cat=(*LOG_FIELDS, *ITEM_FIELDS), num=(ITEM_NUMERIC, *self.affinities))

    def chunks(self, policy: BadLines, chunk_rows: int) -> Iterator[Chunk]:
        log = self.files[0]
        with closing(read_text(log, FORMAT, policy, chunk_rows)) as batches:
            for batch in batches:
                checks = batch.checks
                y = (
                    binary_label(batch.column(LABEL), checks, LABEL)
                    if self.labeled
                    else no_labels(len(batch))
                )
                at = pc.index_in(batch.column("item_id"), value_set=self.items["item_id"])
                items = [pc.take(self.items[f], at) for f in (*ITEM_FIELDS, ITEM_NUMERIC)]
                num = [items[-1]] + [to_float(batch.column(n), checks, n) for n in self.affinities]
                keep = batch.resolve(policy)
                cats = [batch.column(f) for f in LOG_FIELDS] + items[:-1]
                yield Chunk.kept(cats, num, y, keep, 0)


def _item_table(path: Path) -> dict[str, pa.Array]:
    """item_context.csv: item_id and the categorical features as strings, the price a float."""
    wanted = ("item_id", ITEM_NUMERIC, *ITEM_FIELDS)
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in wanted}, include_columns=list(wanted)
            ),
        )
        columns = {name: table[name].combine_chunks() for name in wanted}
        text = columns[ITEM_NUMERIC]
        blank = pc.equal(text, "")
        columns[ITEM_NUMERIC] = pc.cast(
            pc.if_else(blank, pa.scalar(None, pa.string()), text), pa.float64()
        )
    except (pa.ArrowInvalid, KeyError) as err:
        raise DataError(f"{path}: not an item_context.csv ({err})") from None
    return columns
