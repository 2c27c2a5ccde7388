"""Results of a bench: a row per cell, mean +- std over seeds, Welch t-tests, Markdown/HTML reports.

The overall table is laid out like the AutoLoss paper's (methods as columns, AUC and logloss rows
per data set and model): the best mean is bold, and the compared method (AutoLoss) gets `*` where
Welch's t-test against the best baseline gives p < 0.05 in its favour (`†` where against it).
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recloss.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ALPHA = 0.05
BETTER, WORSE = "*", "\u2020"
METRICS = (("test_auc", "AUC \u2191", True), ("test_logloss", "Logloss \u2193", False))
COLUMNS = (
    "dataset", "model", "method", "source", "seed", "status", "test_auc", "test_logloss",
    "test_accuracy", "best_valid_auc", "best_epoch", "epochs", "train_seconds", "wall_seconds",
    "time_to_best_seconds", "search_seconds", "retrain_seconds", "run_dir",
)  # fmt: skip
Key = tuple[str, str, str, str]  # dataset, model, method, source ("" unless a transfer cell)


# -- one row per run ---------------------------------------------------------------------------
def search_seconds(metrics: dict[str, Any]) -> float:
    """Seconds of a two-stage method's search stage (0 for one-stage methods)."""
    return float((metrics.get("search") or {}).get("seconds", 0.0))


def time_to_best(metrics: dict[str, Any]) -> float:
    """Wall-clock seconds until the best validation AUC: search stage plus epochs up to the best."""
    history = [e for e in metrics["history"] if math.isfinite(e["valid"]["auc"])]
    if not history:
        return math.nan
    best = max(history, key=lambda e: e["valid"]["auc"])  # the first of equal bests, as training
    return search_seconds(metrics) + float(best["seconds"])


def run_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """The results-table figures of one finished run's `metrics.json`."""
    test = metrics["test"]
    return {
        "test_auc": test["auc"],
        "test_logloss": test["logloss"],
        "test_accuracy": test.get("accuracy"),
        "best_valid_auc": metrics["best_valid"]["auc"],
        "best_epoch": metrics["best_epoch"],
        "epochs": metrics["epochs"],
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": metrics.get("wall_seconds"),
        "time_to_best_seconds": time_to_best(metrics),
        "search_seconds": (metrics.get("search") or {}).get("seconds"),
        "retrain_seconds": metrics.get("retrain_seconds"),
    }


def summary_line(row: dict[str, Any]) -> str:
    """One line per finished cell for the bench's log."""
    acc = f" acc {row['test_accuracy']:.4f}" if row.get("test_accuracy") is not None else ""
    return (
        f"test auc {row['test_auc']:.4f} logloss {row['test_logloss']:.4f}{acc} | best valid "
        f"auc {row['best_valid_auc']:.4f} after {row['time_to_best_seconds']:.1f}s | "
        f"{row['train_seconds']:.1f}s training"
    )


def write_results(rows: list[dict[str, Any]], root: Path) -> tuple[Path, Path]:
    """results.csv and results.json in `root`, each written whole or not at all."""
    csv_path, json_path = root / "results.csv", root / "results.json"
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, csv_path)
    tmp = json_path.with_name(json_path.name + ".tmp")
    tmp.write_text(json.dumps(rows, indent=1, allow_nan=True))
    os.replace(tmp, json_path)
    return csv_path, json_path


# -- aggregation and significance --------------------------------------------------------------
@dataclass(frozen=True)
class Stat:
    """One metric of one cell group over its seeds."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return math.fsum(self.values) / self.n if self.n else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); 0 for a single seed."""
        if self.n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(math.fsum((v - m) ** 2 for v in self.values) / (self.n - 1))


def index_rows(rows: Iterable[dict[str, Any]]) -> dict[Key, list[dict[str, Any]]]:
    """Finished rows grouped by (dataset, model, method, source)."""
    index: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("status", "done") == "done":
            key = (row["dataset"], row["model"], row["method"], row.get("source") or "")
            index[key].append(row)
    return index


def stat(index: dict[Key, list[dict[str, Any]]], key: Key, metric: str) -> Stat:
    values = (r.get(metric) for r in index.get(key, []))
    return Stat(tuple(float(v) for v in values if v is not None and math.isfinite(float(v))))


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances); NaN when undefined."""
    try:
        from scipy.stats import ttest_ind
    except ImportError:
        raise ConfigError("significance tests need SciPy: pip install scipy") from None
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return float(ttest_ind(a, b, equal_var=False).pvalue)


@dataclass(frozen=True)
class Entry:
    """A formatted table cell with its emphasis."""

    text: str
    bold: bool = False
    mark: str = ""


def marked(
    stats: dict[str, Stat], higher: bool, compare: str | None = None, digits: int = 4
) -> dict[str, Entry]:
    """Format competing methods: the best mean bold, `compare` tested against the best rival."""
    means = {k: s.mean for k, s in stats.items() if s.n}
    best = (max if higher else min)(means.values()) if means else None
    marks = {compare: _significance(stats, compare, higher)} if compare in means else {}
    return {
        k: Entry(fmt(s, digits), bold=means.get(k) == best and s.n > 0, mark=marks.get(k, ""))
        for k, s in stats.items()
    }


def _significance(stats: dict[str, Stat], compare: str, higher: bool) -> str:
    """`*` (better) or `†` (worse) where `compare` differs from the best rival at p < ALPHA."""
    rivals = {k: s for k, s in stats.items() if k != compare and s.n >= 2}
    if not rivals or stats[compare].n < 2:
        return ""
    sign = 1 if higher else -1
    rival = max(rivals.values(), key=lambda s: sign * s.mean)
    if not welch_p(stats[compare].values, rival.values) < ALPHA:
        return ""
    return BETTER if sign * (stats[compare].mean - rival.mean) > 0 else WORSE


def fmt(s: Stat, digits: int = 4) -> str:
    if s.n == 0:
        return "\u2013"
    if s.n == 1:
        return f"{s.mean:.{digits}f}"
    return f"{s.mean:.{digits}f} \u00b1 {s.std:.{digits}f}"


# -- tables --------------------------------------------------------------------------------------
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


def overall_table(index: dict[Key, list[dict[str, Any]]], layout: Layout) -> Table:
    """The paper's overall-performance table: methods as columns, AUC and logloss rows."""
    rows: list[list[Entry | str]] = []
    for dataset, dataset_label in layout.datasets.items():
        for model, model_label in layout.models.items():
            for i, (metric, name, higher) in enumerate(METRICS):
                stats = {m: stat(index, (dataset, model, m, ""), metric) for m in layout.methods}
                entries = marked(stats, higher, layout.compare)
                head = [dataset_label, model_label] if i == 0 else ["", ""]
                rows.append([*head, name, *(entries[m] for m in layout.methods)])
    return Table(["Dataset", "Model", "Metric", *layout.methods.values()], rows)


def transfer_table(
    index: dict[Key, list[dict[str, Any]]], block: TransferBlock, compare: str | None
) -> Table:
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


def efficiency_table(index: dict[Key, list[dict[str, Any]]], layout: Layout) -> Table:
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


# -- plots ---------------------------------------------------------------------------------------
def efficiency_figure(index: dict[Key, list[dict[str, Any]]], layout: Layout) -> Figure:
    """Mean seconds to the best validation AUC per method, one panel per data set and model."""
    figure, axes = _panels(layout)
    labels = list(layout.methods.values())
    for ax, (dataset, model, title) in zip(axes, _pairs(layout), strict=True):
        stats = [
            stat(index, (dataset, model, m, ""), "time_to_best_seconds") for m in layout.methods
        ]
        colors = ["tab:orange" if m == layout.compare else "tab:blue" for m in layout.methods]
        means = [s.mean if s.n else 0 for s in stats]
        spread = [
            [min(s.std, m) for s, m in zip(stats, means, strict=True)],
            [s.std for s in stats],
        ]
        ax.barh(labels, means, xerr=spread, color=colors, alpha=0.8)
        ax.invert_yaxis()
        ax.set(title=title, xlabel="seconds to the best validation AUC")
    return figure


def auc_time_figure(index: dict[Key, list[dict[str, Any]]], layout: Layout, root: Path) -> Figure:
    """Validation AUC against wall-clock seconds, one line per seed, one colour per method."""
    figure, axes = _panels(layout)
    for ax, (dataset, model, title) in zip(axes, _pairs(layout), strict=True):
        for i, method in enumerate(layout.efficiency):
            for j, row in enumerate(index.get((dataset, model, method, ""), [])):
                seconds, auc = auc_curve(
                    json.loads((root / row["run_dir"] / "metrics.json").read_text())
                )
                ax.plot(
                    seconds,
                    auc,
                    color=f"C{i}",
                    alpha=0.7,
                    marker=".",
                    label=layout.methods[method] if j == 0 else None,
                )
        ax.set(title=title, xlabel="wall-clock seconds", ylabel="validation AUC")
        ax.legend()
    return figure


def auc_curve(metrics: dict[str, Any]) -> tuple[list[float], list[float]]:
    """(seconds, validation AUC) per epoch, the search stage's seconds included."""
    offset = search_seconds(metrics)
    history = metrics["history"]
    return [offset + e["seconds"] for e in history], [e["valid"]["auc"] for e in history]


def _pairs(layout: Layout) -> list[tuple[str, str, str]]:
    return [
        (d, m, f"{dl}, {ml}")
        for d, dl in layout.datasets.items()
        for m, ml in layout.models.items()
    ]


def _panels(layout: Layout) -> tuple[Figure, list[Any]]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plots need Matplotlib: pip install 'recloss[plot]'") from None
    rows, cols = len(layout.datasets), len(layout.models)
    figure = Figure(figsize=(5 * cols, 3.6 * rows), layout="constrained")
    return figure, list(figure.subplots(rows, cols, squeeze=False).ravel())


# -- the report ------------------------------------------------------------------------------------
Block = tuple[str, Any]  # ("h1" | "h2" | "p" | "code", text), ("table", Table), ("img", file)


def report_blocks(
    rows: list[dict[str, Any]], layout: Layout, images: dict[str, str]
) -> list[Block]:
    """The report's content, independent of its output format."""
    index = index_rows(rows)
    compare = layout.methods.get(layout.compare or "", "")
    sig = (
        f"{BETTER}: {compare} is better than the best other method, {WORSE}: worse "
        f"(Welch's t-test, p < {ALPHA})."
        if compare
        else ""
    )
    blocks: list[Block] = [
        ("h1", f"Benchmark {layout.title}"),
        ("p", _status(rows)),
        ("h2", "Overall performance"),
        (
            "p",
            f"Test split, mean \u00b1 standard deviation over {layout.seeds} seeds. "
            f"Bold: the best mean. {sig}",
        ),
        ("table", overall_table(index, layout)),
    ]
    if layout.transfers:
        blocks += [
            ("h2", "Transferability"),
            (
                "p",
                "Fixed losses (CE*) are trained on the target as they are; the other rows "
                "start from the loss network learned by the source cell of the same seed, "
                f"frozen. {layout.transfer_note} {sig}".replace("  ", " "),
            ),
        ]
        for block in layout.transfers:
            blocks += [("h3", block.title), ("table", transfer_table(index, block, layout.compare))]
    blocks += [
        ("h2", "Efficiency"),
        (
            "p",
            "Wall-clock seconds to the best validation AUC (two-stage methods: search plus "
            "retraining), mean \u00b1 standard deviation. Bold: the fastest.",
        ),
        ("table", efficiency_table(index, layout)),
    ]
    blocks += [("img", name) for name in images.values()]
    return blocks


def _status(rows: list[dict[str, Any]]) -> str:
    counts = defaultdict(int)
    for row in rows:
        counts[row.get("status", "done")] += 1
    failed = [row["run_dir"] for row in rows if row.get("status") == "failed"]
    text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return f"Cells: {text}." + (f" Failed: {', '.join(failed)}." if failed else "")


def to_markdown(blocks: list[Block]) -> str:
    out = []
    for kind, value in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(kind[1])} {value}")
        elif kind == "p":
            out.append(_md_escape(value))
        elif kind == "table":
            out.append(_md_table(value))
        elif kind == "img":
            out.append(f"![{Path(value).stem}]({value})")
    return "\n\n".join(out) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("*", "\\*").replace("|", "\\|").replace("_", "\\_")


def _md_entry(entry: Entry | str) -> str:
    if isinstance(entry, str):
        return _md_escape(entry)
    text = f"**{entry.text}**" if entry.bold else entry.text
    return text + _md_escape(entry.mark)


def _md_table(table: Table) -> str:
    lines = [
        "| " + " | ".join(_md_escape(h) for h in table.header) + " |",
        "|" + "|".join(["---"] * len(table.header)) + "|",
    ]
    lines += ["| " + " | ".join(_md_entry(e) for e in row) + " |" for row in table.rows]
    return "\n".join(lines)


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:75em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em}
td{text-align:right;font-variant-numeric:tabular-nums}td:first-child{text-align:left}
img{max-width:100%}"""


def to_html(blocks: list[Block]) -> str:
    title = next((v for k, v in blocks if k == "h1"), "recloss benchmark")
    body = []
    for kind, value in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            body.append(f"<{kind}>{html.escape(value)}</{kind}>")
        elif kind == "table":
            body.append(_html_table(value))
        elif kind == "img":
            body.append(f'<img src="{html.escape(value)}" alt="{html.escape(Path(value).stem)}">')
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _html_entry(entry: Entry | str) -> str:
    if isinstance(entry, str):
        return html.escape(entry)
    text = html.escape(entry.text)
    return (f"<b>{text}</b>" if entry.bold else text) + html.escape(entry.mark)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_html_entry(e)}</td>" for e in row) + "</tr>" for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(rows: list[dict[str, Any]], layout: Layout, root: Path, out: Path) -> list[Path]:
    """report.md, report.html and their PNG plots in `out`; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    index = index_rows(rows)
    figures = {"efficiency.png": efficiency_figure(index, layout)}
    if layout.efficiency:
        figures["valid_auc_time.png"] = auc_time_figure(index, layout, root)
    written = []
    for name, figure in figures.items():
        figure.savefig(out / name, dpi=110)
        written.append(out / name)
    blocks = report_blocks(rows, layout, {n: n for n in figures})
    for name, text in (("report.md", to_markdown(blocks)), ("report.html", to_html(blocks))):
        (out / name).write_text(text)
        written.append(out / name)
    return written


__all__ = [
    "Entry",
    "Layout",
    "Stat",
    "Table",
    "TransferBlock",
    "auc_curve",
    "efficiency_table",
    "index_rows",
    "marked",
    "overall_table",
    "run_row",
    "time_to_best",
    "to_html",
    "to_markdown",
    "transfer_table",
    "welch_p",
    "write_report",
    "write_results",
]
