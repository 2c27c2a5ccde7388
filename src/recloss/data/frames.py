"""In-memory data: a pandas DataFrame, an Arrow table or a mapping of columns, prepared like a file.

The rows take the Parquet reader's path (`ArrowReader`), so a frame prepares exactly as the same
rows written to a Parquet file with `data.dataset: parquet`: the same vocabularies, split and
schema. The cache is keyed by a hash of the table's content (the columns `data.table` names) and
the settings.
"""

from __future__ import annotations

from typing import Any

from recloss.config import DataConfig
from recloss.data.datasets import DATASETS
from recloss.data.prepare import (
    PreparedDataset,
    cache_settings,
    limit_arrow_threads,
    prepare_source,
    resolve_task,
)
from recloss.data.rows import FRAME, frame_reader


def prepare_frame(
    data: Any, cfg: DataConfig, progress: bool = False, expect: str | None = None
) -> PreparedDataset:
    """The prepared data set of in-memory rows: from the cache if seen before, else built now.

    `data` is a pandas DataFrame, a `pyarrow.Table` (or RecordBatch), or a mapping of column
    name to a 1-D NumPy array or list. `cfg.table` names the label, categorical and numeric
    columns as for a CSV/Parquet file; `cfg.dataset` and `cfg.path` are not used (`encode_file`
    later reads a Parquet or CSV file, told apart by its content). `expect`: as for
    `prepare_dataset`.
    """
    spec = DATASETS.get("parquet")
    task = resolve_task(spec, cfg)
    cfg = cfg.model_copy(update={"dataset": "parquet", "path": None})
    limit_arrow_threads()
    reader = frame_reader(data, cfg, task)
    settings = cache_settings(spec, cfg, task) | {"dataset": FRAME}
    return prepare_source(FRAME, reader, cfg, settings, progress, expect)
