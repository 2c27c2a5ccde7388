"""Runs: the only code that builds Trainers and writes run folders.

`single` is the public run API (train, resume), `scoring` uses a finished run (evaluate,
predict), `online` one training run of an online strategy, `twostage` search-then-retrain,
`bohb` its Optuna search, `race` a race of the candidates, `trials` what the searches share,
`methods` what a method name stands for.
"""

from recloss.runs.methods import (
    SEARCHES,
    check_method,
    is_fixed,
    method_artifact,
    method_label,
    transferable_methods,
)
from recloss.runs.scoring import evaluate, predict, predict_to_file, save_predictions
from recloss.runs.single import check_names, prepare_data, resolve_config, resume, train

__all__ = [
    "SEARCHES",
    "check_method",
    "check_names",
    "evaluate",
    "is_fixed",
    "method_artifact",
    "method_label",
    "predict",
    "predict_to_file",
    "prepare_data",
    "resolve_config",
    "resume",
    "save_predictions",
    "train",
    "transferable_methods",
]
