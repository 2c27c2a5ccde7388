"""The run folder: every file name in it, atomic writes, and its typed record (`metrics.json`).

A run folder holds `config.yaml` (the run's configuration), `metrics.json` (a `RunRecord`,
written once, when the run has finished), `best.pt` and `checkpoint.pt` (model weights and the
full training state), `data.json` (which prepared data set it trained on), `search.json` (a
two-stage method's finished search), a `search/` run
folder of that stage, the loss strategy's artifact (e.g. `controller.safetensors`),
`tensorboard/`, `train.log` (a line per epoch), and `error.txt` when a bench cell failed.
Nothing else spells these names.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from recloss.atomic import file_in_the_way, write_atomic
from recloss.calibration import Calibration
from recloss.config import RunConfig, load_config
from recloss.errors import CompatibilityError, ConfigError

RECORD_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EpochRecord(_Record):
    """One epoch of training: where the loop was, its validation metrics, the strategy's figures."""

    epoch: int  # 1 for the first epoch
    step: int  # optimiser steps taken so far
    seconds: float  # wall-clock seconds of training and validation so far
    train_loss: float
    samples_per_second: float
    valid: dict[str, float]
    strategy: dict[str, Any] = Field(default_factory=dict)  # `LossStrategy.on_epoch_end()`


class SearchRecord(_Record):
    """What a two-stage method's search found: one weight per candidate, its cost, details."""

    method: str
    weights: dict[str, float]
    seconds: float
    details: dict[str, Any] = Field(default_factory=dict)


class DatasetInfo(_Record):
    name: str
    rows: dict[str, int] | None = None  # rows per split
    task: str | None = None  # binary or multiclass (multi-class AUC is macro one-vs-rest)


class TrainedOn(_Record):
    """The prepared data set a run trained on (`data.json`): its cache's data set and fingerprint,
    which name its vocabularies and splits."""

    dataset: str
    fingerprint: str
    sources: list[str] = Field(default_factory=list)  # for messages


class RunRecord(_Record):
    """The outcome of a finished run, as `metrics.json` holds it."""

    version: int = RECORD_VERSION
    test: dict[str, float]
    best_valid: dict[str, float]
    best_epoch: int  # 1-based, like `EpochRecord.epoch`
    epochs: int  # epochs trained
    steps: int
    history: list[EpochRecord]
    train_seconds: float  # seconds inside training steps
    wall_seconds: float  # seconds of training and validation
    samples_per_second: float
    weights: dict[str, float] = Field(default_factory=dict)  # learned weight per candidate
    dataset: DatasetInfo
    device: str  # rank 0's device
    world_size: int = 1  # data-parallel processes that trained it (resumed: its last part)
    backend: str | None = None  # their torch.distributed backend (gloo, nccl); None alone
    search: SearchRecord | None = None  # two-stage methods
    retrain_seconds: float | None = None  # two-stage methods: `wall_seconds` of the retrain
    calibration: Calibration | None = None  # `train.calibration`'s map, fitted on validation
    test_uncalibrated: dict[str, float] | None = None  # `test` without it (when calibrated)
    # `train.label_noise`'s estimate: overall flip rate, whether corrected, spread by field
    label_noise: dict[str, Any] | None = None
    _run_dir: Path | None = PrivateAttr(None)

    @property
    def run_dir(self) -> Path | None:
        """The folder the record was written to or read from."""
        return self._run_dir

    @property
    def search_seconds(self) -> float:
        """Seconds of a two-stage method's search stage (0 for one-stage methods)."""
        return self.search.seconds if self.search is not None else 0.0

    @property
    def time_to_best(self) -> float:
        """Seconds until the best epoch ended: search stage plus epochs up to the best."""
        best = next((e for e in self.history if e.epoch == self.best_epoch), None)
        return math.nan if best is None else self.search_seconds + best.seconds


def write_json(path: Path, obj: Any) -> None:
    """Write JSON whole or not at all."""
    text = json.dumps(obj, indent=2, allow_nan=True)
    write_atomic(path, lambda tmp: tmp.write_text(text), per_process=True)


def write_text(path: Path, text: str) -> None:
    """Write text whole or not at all."""
    write_atomic(path, lambda tmp: tmp.write_text(text), per_process=True)


def _read(path: Path, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError) as err:
        first = str(err).splitlines()[0]
        raise CompatibilityError(f"{path}: not a readable {model.__name__} ({first})") from None


class RunDir:
    """A run folder: the paths of its files and typed reads and writes of them."""

    CONFIG = "config.yaml"
    RECORD = "metrics.json"
    CHECKPOINT = "checkpoint.pt"
    BEST = "best.pt"
    SEARCH = "search.json"
    DATA = "data.json"
    SEARCH_STAGE = "search"
    ERROR = "error.txt"
    TENSORBOARD = "tensorboard"
    LOG = "train.log"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    @classmethod
    def new(cls, cfg: RunConfig) -> RunDir:
        """A fresh, uniquely named folder under `cfg.out`, created (claimed) atomically."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path(cfg.out) / f"{cfg.data.dataset}-{cfg.model.name}-{cfg.loss.name}-{stamp}"
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise _file_in_the_way(cfg.out) from None
        for n in itertools.count():  # mkdir fails if another run took the name first
            path = base.with_name(f"{base.name}-{n}") if n else base
            with contextlib.suppress(FileExistsError):
                path.mkdir()
                return cls(path)
        raise AssertionError  # itertools.count() never ends

    @staticmethod
    def check_out(out: str | Path) -> None:
        """ConfigError where a file stands at `out` or above it: found before data is prepared."""
        if file_in_the_way(Path(out)) is not None:
            raise _file_in_the_way(out)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    def file(self, name: str) -> Path:
        """The path of a file in the folder (an artifact a strategy names)."""
        return self.path / name

    @property
    def checkpoint(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def best(self) -> Path:
        return self.path / self.BEST

    @property
    def tensorboard(self) -> Path:
        return self.path / self.TENSORBOARD

    @property
    def log(self) -> Path:
        return self.path / self.LOG

    def search_stage(self) -> RunDir:
        """The run folder of a two-stage method's search stage."""
        return RunDir(self.path / self.SEARCH_STAGE)

    # -- configuration -----------------------------------------------------------------------------
    def is_run(self) -> bool:
        return (self.path / self.CONFIG).is_file()

    def write_config(self, cfg: RunConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_text(self.path / self.CONFIG, cfg.to_yaml())

    def read_config(self) -> RunConfig:
        self._check_is_run()
        return load_config(self.path / self.CONFIG)

    def _check_is_run(self) -> None:
        if not self.is_run():
            raise ConfigError(f"{self.path}: not a run directory (no {self.CONFIG})")

    def write_trained_on(self, trained_on: TrainedOn) -> None:
        write_json(self.path / self.DATA, trained_on.model_dump())

    def read_trained_on(self) -> TrainedOn | None:
        """The data set the run trained on; None for a run from before it was recorded."""
        path = self.path / self.DATA
        return _read(path, TrainedOn) if path.is_file() else None

    # -- the record --------------------------------------------------------------------------------
    def is_finished(self) -> bool:
        return (self.path / self.RECORD).is_file()

    def write_record(self, record: RunRecord) -> None:
        write_json(self.path / self.RECORD, record.model_dump())
        record._run_dir = self.path

    def read_record(self) -> RunRecord:
        path = self.path / self.RECORD
        if not path.is_file():
            self._check_is_run()
            raise ConfigError(f"{self.path}: no {self.RECORD}; is it a finished run directory?")
        record = _read(path, RunRecord)
        record._run_dir = self.path
        return record

    # -- a two-stage method's search ---------------------------------------------------------------
    def write_search(self, search: SearchRecord) -> None:
        write_json(self.path / self.SEARCH, search.model_dump())

    def read_search(self) -> SearchRecord | None:
        """The finished search of this run, or None when it has none yet."""
        path = self.path / self.SEARCH
        return _read(path, SearchRecord) if path.is_file() else None

    def has_progress(self) -> bool:
        """Whether there is something to resume: a checkpoint here or in a stage, or a search."""
        return self.is_run() and (
            any(self.path.rglob(self.CHECKPOINT)) or (self.path / self.SEARCH).is_file()
        )

    # -- a failed bench cell -----------------------------------------------------------------------
    def has_error(self) -> bool:
        return (self.path / self.ERROR).is_file()

    def write_error(self, text: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_text(self.path / self.ERROR, text)

    def clear_error(self) -> None:
        (self.path / self.ERROR).unlink(missing_ok=True)


def _file_in_the_way(out: str | Path) -> ConfigError:
    return ConfigError(f"out: {out}: a file stands where its folder would be", "out")


__all__ = [
    "DatasetInfo",
    "EpochRecord",
    "RunDir",
    "RunRecord",
    "SearchRecord",
    "TrainedOn",
    "write_json",
    "write_text",
]
