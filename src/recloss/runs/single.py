"""The run API: a configuration becomes a finished run folder; an interrupted run is resumed.

`train(config, **overrides)` takes a `RunConfig`, a mapping of config keys or a YAML path;
overrides are dotted keys (`**{"train.lr": 0.01}`) or the same with `__` (`train__lr=0.01`).
`data=` trains on in-memory rows instead of files: a pandas DataFrame, a pyarrow Table or a
mapping of column name -> array, with `data.table` naming the label and feature columns.
"""

from __future__ import annotations

import copy
import logging
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recloss.config import (
    DataConfig,
    RunConfig,
    SyntheticConfig,
    config_from_dict,
    load_config,
    set_dotted,
)
from recloss.data import (
    DATASETS,
    PreparedDataset,
    SourceChanged,
    prepare_dataset,
    prepare_frame,
    prepared_cache,
)
from recloss.data.prepare import TABLE_SOURCES
from recloss.data.rows import FRAME
from recloss.errors import ConfigError, DataError, RunInterrupted
from recloss.models import check_model_params
from recloss.rundir import RunDir, RunRecord, TrainedOn
from recloss.runs.methods import SEARCHES, check_label_noise, check_method
from recloss.runs.online import run_online
from recloss.runs.twostage import run_two_stage
from recloss.training import Callback, distributed, resolve_device

log = logging.getLogger("recloss.runs")

ConfigLike = RunConfig | Mapping[str, Any] | str | Path | None
Rows = Any  # a pandas DataFrame, a pyarrow Table or a mapping of column name -> array


def resolve_config(config: ConfigLike = None, **overrides: Any) -> RunConfig:
    """A `RunConfig` from any accepted form, with dotted (or `__`-separated) overrides."""
    dotted = {key.replace("__", "."): value for key, value in overrides.items()}
    if config is None or isinstance(config, (str, Path)):
        return load_config(config, dotted)
    if not isinstance(config, (RunConfig, Mapping)):
        raise TypeError(
            "config must be a RunConfig, a mapping of config keys, a YAML path or None, "
            f"not {type(config).__name__}"
        )
    raw = config.model_dump() if isinstance(config, RunConfig) else copy.deepcopy(dict(config))
    for key, value in dotted.items():
        set_dotted(raw, key, value)
    return config_from_dict(raw, "config" if not isinstance(config, RunConfig) else "RunConfig")


def prepare_data(cfg: RunConfig, data: Rows | None, expect: str | None = None) -> PreparedDataset:
    """The data set; across ranks rank 0 prepares the cache, then the others open it. `expect`:
    the fingerprint it must have (SourceChanged, before any build, if it has another)."""
    if data is None and cfg.data.dataset == FRAME:
        raise ConfigError("data.dataset: the run was trained on in-memory rows; pass them as data=")
    with distributed.main_first():
        if data is not None:
            return prepare_frame(data, cfg.data, progress=cfg.train.progress, expect=expect)
        return prepare_dataset(cfg.data, progress=cfg.train.progress, expect=expect)


def trained_data(
    folder: RunDir, cfg: RunConfig, data: Rows | None, argument: str = "data"
) -> PreparedDataset:
    """The data set the run in `folder` trained on: its cache if still there, else its source
    prepared again, refused where that gives other vocabularies and splits than the model's.
    `argument`: the caller's parameter that takes the rows of an in-memory run."""
    trained_on = folder.read_trained_on()
    if trained_on is None:  # a run from before this was recorded
        return prepare_data(cfg, data)
    if data is None:  # given rows are checked against the record when prepared
        cached = prepared_cache(trained_on.dataset, trained_on.fingerprint, cfg.data.cache_dir)
        if cached is not None:
            return cached
    if data is None and cfg.data.dataset == FRAME:
        raise ConfigError(
            f"{folder.path} trained on rows in memory, whose cache is gone; pass them again "
            f"as {argument}="
        )
    try:
        return prepare_data(cfg, data, expect=trained_on.fingerprint)
    except SourceChanged:
        raise DataError(_not_what_it_trained_on(folder, trained_on, data is not None)) from None
    except DataError as err:
        if data is not None:
            raise
        raise DataError(
            f"{folder.path}: the cache it trained on is gone, and its data cannot be read again "
            f"({err}); put the data back, or set data.path in its {RunDir.CONFIG} to where it "
            "is now (a relative path is read from the current folder)"
        ) from None


def _not_what_it_trained_on(folder: RunDir, trained_on: TrainedOn, rows: bool) -> str:
    why = "the vocabularies and splits they give would differ from those its model learned"
    if rows:
        return f"data: these are not the rows {folder.path} trained on ({why}); pass those rows"
    sources = ", ".join(trained_on.sources) or trained_on.dataset
    return (
        f"{sources}: changed since {folder.path} trained on it (or an older recloss read it "
        f"otherwise), and the cache it trained on is gone ({why}); restore the data, or train "
        "again"
    )


def _new_folder(cfg: RunConfig, run_dir: str | Path | None, dataset: PreparedDataset) -> RunDir:
    """The run folder, named and written (its config, the data it trains on) by rank 0 only."""
    main = distributed.is_main()
    if run_dir is None:
        run_dir = distributed.broadcast_object(RunDir.new(cfg).path if main else None)
    folder = RunDir(run_dir)
    if main:
        folder.write_config(cfg)
        meta = dataset.meta
        trained_on = TrainedOn(
            dataset=meta["dataset"], fingerprint=meta["fingerprint"], sources=_sources(dataset)
        )
        folder.write_trained_on(trained_on)
    return folder


def check_names(cfg: RunConfig) -> None:
    """ConfigError naming the key (`err.key`) for an unknown data set, model or method, or a
    parameter of either: checked before any data is prepared, which on a large file takes
    minutes."""
    checks = {
        "data.dataset": lambda: cfg.data.dataset == FRAME or DATASETS.get(cfg.data.dataset),
        "data.path": lambda: _check_path_is_read(cfg.data),
        "data.table": lambda: _check_table_is_read(cfg.data),
        "data.synthetic": lambda: _check_synthetic_is_used(cfg.data),
        "model.name": lambda: check_model_params(cfg.model.name, cfg.model.params),
        "loss.name": lambda: check_method(cfg.loss),
    }
    for key, check in checks.items():
        try:
            check()
        except ConfigError as err:
            if err.key is not None:  # named in the message already
                raise
            raise ConfigError(f"{key}: {err}", key) from None


def _check_path_is_read(cfg: DataConfig) -> None:
    """ConfigError for a file given to generated data, which would go unread."""
    if cfg.path is not None and cfg.dataset != FRAME and DATASETS.get(cfg.dataset).open is None:
        raise ConfigError(
            f"{cfg.path}: the {cfg.dataset} data set is generated and reads no file; name the "
            "file's data set (--dataset csv, criteo, ...) or leave the path out"
        )


def _check_table_is_read(cfg: DataConfig) -> None:
    """ConfigError for columns named to a data set of fixed columns, which would go unread."""
    if cfg.table is not None and cfg.dataset not in TABLE_SOURCES:
        raise ConfigError(
            f"the {cfg.dataset} data set has columns of its own and reads no table; name the "
            "file's format (--dataset csv or parquet) or leave data.table out"
        )


def _check_synthetic_is_used(cfg: DataConfig) -> None:
    """ConfigError for settings of generated data given to another data set, which ignores them."""
    if cfg.dataset != "synthetic" and cfg.synthetic != SyntheticConfig():
        raise ConfigError(
            f"settings of generated data, which the {cfg.dataset} data set ignores; name "
            "--dataset synthetic or leave data.synthetic out"
        )


def _check_split_rows(cfg: RunConfig, dataset: PreparedDataset) -> None:
    """ConfigError unless every split has rows: a run trains on one, picks its best epoch (and
    trains any controller) on another and reports the third."""
    rows = {name: len(dataset.split(name)) for name in ("train", "valid", "test")}
    empty = [name for name, n in rows.items() if n == 0]
    if empty:
        key = "data.splits" if cfg.data.splits is not None else "data.split"
        counts = ", ".join(f"{n:,} {name}" for name, n in rows.items())
        splits = f"{' and '.join(empty)} split{'s' if len(empty) > 1 else ''}"
        raise ConfigError(f"{key}: no rows in the {splits} ({counts})")


def _sources(dataset: PreparedDataset) -> list[str]:
    """The files a prepared data set was read from (none for generated or in-memory rows)."""
    return [str(s["path"]) for s in dataset.meta.get("sources", []) if s.get("path")]


def _check_both_classes(dataset: PreparedDataset) -> None:
    """DataError where a binary data set has one class only: nothing to tell apart, no AUC."""
    present = [label for label, n in enumerate(dataset.meta["label_counts"]) if n]
    if dataset.schema.task == "binary" and len(present) == 1:
        where = ", ".join(_sources(dataset)) or dataset.meta["dataset"]
        raise DataError(
            f"{where}: every row's label is {present[0]}; a binary task needs rows of both classes"
        )


def _check_validation_classes(cfg: RunConfig, dataset: PreparedDataset) -> None:
    """ConfigError where a calibration would be fitted on a validation split of one class; a
    warning where the split's AUC, which picks the best epoch, is undefined for that reason."""
    labels = np.asarray(dataset.split("valid").y)
    present = np.flatnonzero(np.bincount(labels))
    if len(present) > 1:
        return
    rows = f"{len(labels):,} rows are all" if len(labels) > 1 else "1 row is"
    one_class = f"{rows} of class {present[0]}"
    if cfg.train.calibration != "none":
        raise ConfigError(
            f"train.calibration: {cfg.train.calibration} is fitted on the validation split, "
            f"whose {one_class}; give it rows of more classes, or set train.calibration: none",
            "train.calibration",
        )
    if distributed.is_main():
        log.warning(
            "the validation split's %s: its AUC is undefined, so the best epoch is the one of "
            "the lowest validation logloss", one_class,
        )  # fmt: skip


def _check(cfg: RunConfig, dataset: PreparedDataset) -> None:
    """ConfigError naming the key, before any training, for a run that cannot be built."""
    schema = dataset.schema
    _check_split_rows(cfg, dataset)
    _check_both_classes(dataset)
    _check_validation_classes(cfg, dataset)
    check_method(cfg.loss, schema)
    if cfg.train.label_noise == "channel":
        check_label_noise(cfg.loss.name, schema)
    if cfg.train.calibration == "platt" and schema.task != "binary":
        raise ConfigError(
            "train.calibration: platt is for binary tasks; use temperature for "
            f"{schema.n_outputs} classes"
        )


def _set_up(cfg: RunConfig, data: Rows | None, resumed: RunDir | None = None) -> PreparedDataset:
    """The process group, the device and the data set of a run (a resumed run's: the one it
    trained on), checked before it trains."""
    distributed.init_process_group(cfg.train.device)  # when torchrun started this process
    resolve_device(cfg.train.device)  # before the data and any folder: a failed setup costs none
    dataset = prepare_data(cfg, data) if resumed is None else trained_data(resumed, cfg, data)
    _check(cfg, dataset)
    return dataset


def _run(
    cfg: RunConfig,
    dataset: PreparedDataset,
    run_dir: RunDir,
    resume: bool,
    callbacks: Sequence[Callback],
) -> RunRecord:
    """Train the run in `run_dir`; an interrupt says which folder resumes it."""
    try:
        if cfg.loss.name in SEARCHES:
            search = SEARCHES.get(cfg.loss.name)
            return run_two_stage(search, cfg, dataset, run_dir, resume=resume, callbacks=callbacks)
        return run_online(cfg, dataset, run_dir, resume=resume, callbacks=callbacks)
    except KeyboardInterrupt as interrupt:
        signum = getattr(interrupt, "signum", signal.SIGINT)  # StopRequested's
        raise RunInterrupted(run_dir.path, signum) from interrupt


def train(
    config: ConfigLike = None,
    run_dir: str | Path | None = None,
    *,
    data: Rows | None = None,
    callbacks: Sequence[Callback] = (),
    **overrides: Any,
) -> RunRecord:
    """Prepare the data, train, test the best model; the record is also in the run folder.

    `run_dir` defaults to a new folder under `out`; a folder that holds a finished run, or one
    with a checkpoint, is refused (`resume` continues it). `callbacks` join the trainer's own.
    """
    cfg = resolve_config(config, **overrides)
    if data is not None:  # the run's config says where its rows came from
        _check_no_files(cfg.data)
        cfg.data = cfg.data.model_copy(update={"dataset": FRAME})
    check_names(cfg)
    if run_dir is not None:
        _check_unused(RunDir(run_dir))
    else:
        RunDir.check_out(cfg.out)
    dataset = _set_up(cfg, data)
    folder = _new_folder(cfg, run_dir, dataset)
    return _run(cfg, dataset, folder, resume=False, callbacks=callbacks)


def _check_no_files(cfg: DataConfig) -> None:
    """ConfigError where the config names files beside the rows given: they would go unread."""
    named = {"data.path": cfg.path, "data.splits": cfg.splits}
    for key, files in named.items():
        if files is not None:
            raise ConfigError(
                f"{key}: {files} names data, and rows are given as data= too; train on one "
                f"of them ({key.replace('.', '__')}=None leaves the files out)",
                key,
            )


def _check_unused(folder: RunDir) -> None:
    """ConfigError where training into `folder` would overwrite a run's results or progress."""
    if folder.is_finished() or folder.has_progress():
        held = "a finished run" if folder.is_finished() else "a run with a checkpoint"
        raise ConfigError(
            f"run_dir: {folder.path} holds {held}; resume it (recloss.resume), or train into "
            "another folder",
            "run_dir",
        )


def resume(
    run_dir: str | Path, *, data: Rows | None = None, callbacks: Sequence[Callback] = ()
) -> RunRecord:
    """Continue an interrupted run from its last checkpoint, with its saved configuration
    (a finished run: its record as it is).

    A run trained on in-memory rows needs the same rows again as `data`.
    """
    folder = RunDir(run_dir)
    if folder.is_finished():  # nothing left to train: the run as it ended
        return folder.read_record()
    cfg = folder.read_config()
    dataset = _set_up(cfg, data, resumed=folder)
    return _run(cfg, dataset, folder, resume=True, callbacks=callbacks)


__all__ = ["check_names", "prepare_data", "resolve_config", "resume", "train", "trained_data"]
