"""Benchmark grids: data sets x models x loss methods x seeds, run cell by cell and resumable.

A grid (YAML) names its data sets, models and methods once; every combination and seed is a
*cell*, a normal run directory under `<out>/<grid name>/cells/<data set>/<model>/<method>/seed<k>/`.
A cell whose run record exists is finished and never rerun; an interrupted cell resumes from its
checkpoint. Transfer cells train a model with the loss network a source cell learned (frozen), so
they run after their sources.

`grid` is the schema, `gridfile` reads grid files, `validate` checks a grid before any training,
`cells` expands it into cells, `runner` runs them and collects the results rows, `layout` turns
the grid into the report's layout and writes the report.
"""

from recloss.bench.cells import Cell, bench_dir, cell_dir, expand
from recloss.bench.grid import Grid, MethodSpec
from recloss.bench.gridfile import is_bench, load_bench, load_grid
from recloss.bench.layout import label, layout, write_report
from recloss.bench.runner import collect_rows, run_bench, run_cell, state
from recloss.bench.validate import grid_from_dict

__all__ = [
    "Cell",
    "Grid",
    "MethodSpec",
    "bench_dir",
    "cell_dir",
    "collect_rows",
    "expand",
    "grid_from_dict",
    "is_bench",
    "label",
    "layout",
    "load_bench",
    "load_grid",
    "run_bench",
    "run_cell",
    "state",
    "write_report",
]
