"""Reports from typed run records: a bench's results table, Markdown/HTML report and figures
(`rows`, `stats`, `tables`, `figures`, `render`), and the plots of one run (`run_plots`).
"""

from recloss.report.figures import (
    auc_curve,
)
from recloss.report.render import (
    to_html,
    to_markdown,
    write_report,
)
from recloss.report.rows import (
    COLUMNS,
    run_row,
    summary_line,
    write_results,
)
from recloss.report.run_plots import (
    auc_figure,
    controller_curves,
    controller_figure,
    selection_figure,
    selection_trace,
    write_run_report,
)
from recloss.report.stats import (
    Entry,
    Stat,
    index_rows,
    marked,
    paired_p,
)
from recloss.report.tables import (
    Layout,
    Table,
    TransferBlock,
    efficiency_table,
    overall_table,
    transfer_table,
)

__all__ = [
    "COLUMNS",
    "Entry",
    "Layout",
    "Stat",
    "Table",
    "TransferBlock",
    "auc_curve",
    "auc_figure",
    "controller_curves",
    "controller_figure",
    "efficiency_table",
    "index_rows",
    "marked",
    "overall_table",
    "paired_p",
    "run_row",
    "selection_figure",
    "selection_trace",
    "summary_line",
    "to_html",
    "to_markdown",
    "transfer_table",
    "write_report",
    "write_results",
    "write_run_report",
]
