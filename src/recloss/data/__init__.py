"""Data: read raw files in chunks, encode them into a memory-mapped cache, serve batches."""

from recloss.data.batches import BatchLoader, SplitArrays
from recloss.data.datasets import DATASETS, DatasetSpec
from recloss.data.frames import prepare_frame
from recloss.data.prepare import PreparedDataset, SourceChanged, prepare_dataset, prepared_cache
from recloss.data.schema import Batch, Schema
from recloss.data.synthetic import write_criteo_tsv

__all__ = [
    "DATASETS",
    "Batch",
    "BatchLoader",
    "DatasetSpec",
    "PreparedDataset",
    "Schema",
    "SourceChanged",
    "SplitArrays",
    "prepare_dataset",
    "prepare_frame",
    "prepared_cache",
    "write_criteo_tsv",
]
