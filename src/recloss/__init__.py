"""recloss: deep recommender models trained with automatically searched loss functions."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Public names, imported on first use so that `import recloss` stays light.
_EXPORTS = {
    "AutoLoss": "recloss.search.autoloss",
    "Batch": "recloss.data.schema",
    "Schema": "recloss.data.schema",
    "RunConfig": "recloss.config",
    "load_config": "recloss.config",
    "prepare_dataset": "recloss.data",
    "build_model": "recloss.models",
    "register_loss": "recloss.losses",
    "train": "recloss.train",
    "resume": "recloss.train",
    "evaluate_run": "recloss.train",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'recloss' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
