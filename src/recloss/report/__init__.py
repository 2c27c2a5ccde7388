"""Reports from typed run records: a bench's results table, Markdown/HTML report and figures
(`rows`, `stats`, `tables`, `figures`, `render`), and the plots of one run (`run_plots`).

The names below are loaded on first use: `run_plots` needs PyTorch, the bench tables do not.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "COLUMNS": "rows",
    "run_row": "rows",
    "summary_line": "rows",
    "write_results": "rows",
    "Entry": "stats",
    "Stat": "stats",
    "index_rows": "stats",
    "marked": "stats",
    "welch_p": "stats",
    "Layout": "tables",
    "Table": "tables",
    "TransferBlock": "tables",
    "efficiency_table": "tables",
    "overall_table": "tables",
    "transfer_table": "tables",
    "auc_curve": "figures",
    "to_html": "render",
    "to_markdown": "render",
    "write_report": "render",
    "auc_figure": "run_plots",
    "controller_curves": "run_plots",
    "controller_figure": "run_plots",
    "selection_figure": "run_plots",
    "selection_trace": "run_plots",
    "write_run_report": "run_plots",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'recloss.report' has no attribute {name!r}")
    return getattr(importlib.import_module(f"recloss.report.{_EXPORTS[name]}"), name)
