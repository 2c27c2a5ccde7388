"""The bench report: its content as blocks, written as Markdown and HTML beside its PNG figures."""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Any

from recloss.report.figures import auc_time_figure, efficiency_figure, save_png
from recloss.report.stats import ALPHA, BETTER, WORSE, Entry, index_rows
from recloss.report.tables import Layout, Table, efficiency_table, overall_table, transfer_table
from recloss.rundir import write_text

Block = tuple[str, Any]  # ("h1" | "h2" | "h3" | "p", text), ("table", Table), ("img", file)


def report_blocks(
    rows: list[dict[str, Any]], layout: Layout, images: dict[str, str]
) -> list[Block]:
    """The report's content, independent of its output format."""
    index = index_rows(rows)
    compare = layout.methods.get(layout.compare or "", "")
    sig = (
        f"{BETTER}: {compare} is better than the best other method, {WORSE}: worse "
        f"(paired t-test over the seeds, p < {ALPHA})."
        if compare
        else ""
    )
    blocks: list[Block] = [
        ("h1", f"Benchmark {layout.title}"),
        ("p", _status(rows)),
        ("h2", "Overall performance"),
        (
            "p",
            f"Test split, mean \u00b1 standard deviation over {layout.seeds} "
            f"seed{'s' if layout.seeds != 1 else ''}. "
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


# -- Markdown --------------------------------------------------------------------------------------
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


# -- HTML ------------------------------------------------------------------------------------------
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


# -- the files -------------------------------------------------------------------------------------
def write_report(rows: list[dict[str, Any]], layout: Layout, root: Path, out: Path) -> list[Path]:
    """report.md, report.html and their PNG plots in `out`; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    index = index_rows(rows)
    figures = {"efficiency.png": efficiency_figure(index, layout)}
    if layout.efficiency:
        figures["valid_auc_time.png"] = auc_time_figure(index, layout, root)
    written = []
    for name, figure in figures.items():
        written.append(save_png(figure, out / name, dpi=110))
    blocks = report_blocks(rows, layout, {n: n for n in figures})
    for name, text in (("report.md", to_markdown(blocks)), ("report.html", to_html(blocks))):
        write_text(out / name, text)
        written.append(out / name)
    return written


__all__ = ["Block", "report_blocks", "to_html", "to_markdown", "write_report"]
