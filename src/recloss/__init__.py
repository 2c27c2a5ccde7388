"""recloss: deep recommender models trained with automatically searched loss functions.

The run API: `train`, `resume`, `evaluate`, `predict` (a config becomes a finished run folder,
whose typed record is a `RunRecord`). Building blocks for a loop of one's own: `prepare_dataset`,
`prepare_frame`, `build_model`, `build_strategy`, `AutoLoss`, `Trainer` and its callbacks.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names, imported on first use so that `import recloss` stays light.
_EXPORTS = {
    "train": "recloss.runs",
    "resume": "recloss.runs",
    "evaluate": "recloss.runs",
    "predict": "recloss.runs",
    "RunConfig": "recloss.config",
    "load_config": "recloss.config",
    "RunRecord": "recloss.rundir",
    "RunDir": "recloss.rundir",
    "prepare_dataset": "recloss.data",
    "prepare_frame": "recloss.data",
    "Batch": "recloss.data.schema",
    "Schema": "recloss.data.schema",
    "build_model": "recloss.models",
    "register_loss": "recloss.losses",
    "AutoLoss": "recloss.search",
    "LossStrategy": "recloss.search",
    "build_strategy": "recloss.search",
    "Trainer": "recloss.training",
    "TrainData": "recloss.training",
    "Callback": "recloss.training",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'recloss' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
