"""Training: the Trainer loop, its callbacks, evaluation, optimisers and checkpoints."""

from recloss.training.callbacks import (
    BestCheckpoint,
    Callback,
    EarlyStopping,
    EpochLog,
    Progress,
    ResumeCheckpoint,
    TensorBoard,
)
from recloss.training.devices import distributed_rank, resolve_device
from recloss.training.evaluate import calibrate_on_split, evaluate_split, predict_split
from recloss.training.optim import LazyAdam, make_optimizers
from recloss.training.precondition import AdamPreconditioner
from recloss.training.schedule import LRSchedule
from recloss.training.state import TrainerState
from recloss.training.trainer import TrainData, Trainer

__all__ = [
    "AdamPreconditioner",
    "BestCheckpoint",
    "Callback",
    "EarlyStopping",
    "EpochLog",
    "LRSchedule",
    "LazyAdam",
    "Progress",
    "ResumeCheckpoint",
    "TensorBoard",
    "TrainData",
    "Trainer",
    "TrainerState",
    "calibrate_on_split",
    "distributed_rank",
    "evaluate_split",
    "make_optimizers",
    "predict_split",
    "resolve_device",
]
