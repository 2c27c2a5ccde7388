"""The bench's tables, laid out like the AutoLoss paper's: overall, transferability, efficiency.

The overall table has methods as columns and an AUC and a logloss row per data set and model, and
a gAUC row where its runs grouped the rows by a field (`train.gauc_by`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recloss.report.stats import Entry, Index, marked, stat

METRICS = (("test_auc", "AUC \u2191", True), ("test_logloss", "Logloss \u2193", False))
GAUC = ("test_gauc", "gAUC \u2191", True)


@dataclass(frozen=True)
class TransferBlock:
    """One transferability table: rows are methods, columns the target (data set, model) cells."""

    title: str
    columns: list[tuple[str, str, str]]  # (dataset, model, heading)
    rows: list[tuple[str, str, str]]  # (heading, method, source; "" for a fixed loss)


@dataclass(frozen=True)
class Layout:
    """What a report shows, in order, with headings: data set/model/method key -> heading."""

    title: str
    seeds: int
    datasets: dict[str, str]
    models: dict[str, str]
    methods: dict[str, str]
    compare: str | None = None
    efficiency: list[str] = field(default_factory=list)
    transfers: list[TransferBlock] = field(default_factory=list)
    transfer_note: str = ""  # e.g. why a method has no transferred row


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[Entry | str]]


def overall_table(index: Index, layout: Layout) -> Table:
    """The paper's overall-performance table: methods as columns, AUC and logloss rows (and
    gAUC rows for the data sets and models whose runs have it)."""
    rows: list[list[Entry | str]] = []
    for dataset, dataset_label in layout.datasets.items():
        for model, model_label in layout.models.items():
            grouped = any(
                row.get("test_gauc") is not None
                for m in layout.methods
                for row in index.get((dataset, model, m, ""), [])
            )
            for i, (metric, name, higher) in enumerate(METRICS + (GAUC,) * grouped):
                stats = {m: stat(index, (dataset, model, m, ""), metric) for m in layout.methods}
                entries = marked(stats, higher, layout.compare)
                head = [dataset_label, model_label] if i == 0 else ["", ""]
                rows.append([*head, name, *(entries[m] for m in layout.methods)])
    return Table(["Dataset", "Model", "Metric", *layout.methods.values()], rows)


def transfer_table(index: Index, block: TransferBlock, compare: str | None) -> Table:
    """Rows CE*, SLF*, AL*; an AUC and a logloss column per target."""
    header = ["Method"]
    columns: list[dict[str, Entry]] = []
    for dataset, model, heading in block.columns:
        for metric, name, higher in METRICS:
            stats = {
                f"{m}/{s}": stat(index, (dataset, model, m, s), metric) for _, m, s in block.rows
            }
            target = next((f"{m}/{s}" for _, m, s in block.rows if m == compare), None)
            columns.append(marked(stats, higher, target))
            header.append(f"{heading} {name}")
    rows = [[heading, *(col[f"{m}/{s}"] for col in columns)] for heading, m, s in block.rows]
    return Table(header, rows)


def efficiency_table(index: Index, layout: Layout) -> Table:
    """Seconds to the best validation AUC (search + retraining for two-stage methods)."""
    rows: list[list[Entry | str]] = []
    for dataset, dataset_label in layout.datasets.items():
        for model, model_label in layout.models.items():
            stats = {
                m: stat(index, (dataset, model, m, ""), "time_to_best_seconds")
                for m in layout.methods
            }
            entries = marked(stats, higher=False, digits=1)
            rows.append([dataset_label, model_label, *(entries[m] for m in layout.methods)])
    return Table(["Dataset", "Model", *layout.methods.values()], rows)


__all__ = [
    "METRICS",
    "Layout",
    "Table",
    "TransferBlock",
    "efficiency_table",
    "overall_table",
    "transfer_table",
]
