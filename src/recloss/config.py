"""Typed run configuration: YAML in and out, validation with errors that name the key."""

from __future__ import annotations

import codecs
import copy
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from recloss.classes import ClassValue, class_key
from recloss.dataset_defaults import dataset_defaults
from recloss.errors import ConfigError
from recloss.keys import problem_text
from recloss.yamlfile import read_yaml_mapping

Monitor = Literal["auc", "logloss", "gauc"]  # the validation metric that picks the best epoch

# a path as a config file may write it: `~/data/train.txt` is in the home folder, as in a shell
UserPath = Annotated[str, AfterValidator(os.path.expanduser)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _column_name(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class TableSchema(_Section):
    """Columns of a user-given CSV/Parquet file."""

    label: str
    categorical: list[str] = Field(default_factory=list)
    numeric: list[str] = Field(default_factory=list)
    separator: str = ","
    header: bool = True
    encoding: str = "utf-8"  # of a CSV file's text
    classes: list[ClassValue] | None = None  # the label values in class order (binary: -, +)

    @field_validator("label", "categorical", "numeric", mode="before")
    @classmethod
    def _positions_as_names(cls, value: Any) -> Any:
        """A header-less file's columns are named by position: `2` is the column `"2"`."""
        return [_column_name(v) for v in value] if isinstance(value, list) else _column_name(value)

    @field_validator("separator")
    @classmethod
    def _one_character(cls, separator: str) -> str:
        """One character, no quote or line break; `\\t`, a tab as typed in a shell, is a tab."""
        separator = "\t" if separator == "\\t" else separator
        if len(separator) != 1 or separator in '"\r\n':
            raise ValueError(
                f"{separator!r} is not one character (other than a quote or a line break); "
                "a tab is \\t"
            )
        return separator

    @field_validator("classes")
    @classmethod
    def _distinct_classes(cls, classes: list[ClassValue] | None) -> list[ClassValue] | None:
        """At least two, none of them twice (as labels compare: `1` and `1.0` are one)."""
        if classes is None:
            return None
        if len(classes) < 2:
            raise ValueError("name at least two label values, in class order")
        seen: dict[tuple[str, Any], ClassValue] = {}
        for value in classes:
            key = class_key(value)
            if key in seen:
                raise ValueError(f"{value!r} is the same label as {seen[key]!r}")
            seen[key] = value
        return classes

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, name: str) -> str:
        """A codec Python knows that writes a line break as the one byte 0x0A (UTF-16 does not)."""
        try:
            codec = codecs.lookup(name)
        except LookupError:
            raise ValueError(f"unknown text encoding {name!r}") from None
        if codec.encode("\n")[0] != b"\n":
            raise ValueError(f"{name}: lines must end in the byte \\n; convert the file to UTF-8")
        return name

    @model_validator(mode="after")
    def _each_column_once(self) -> TableSchema:
        """A feature is one column once; the label among them would leak into the inputs."""
        for key in ("categorical", "numeric"):
            names = getattr(self, key)
            for name in names:
                if name == self.label:
                    raise ValueError(f"{key}: {name!r} is the label column")
                if names.count(name) > 1:
                    raise ValueError(f"{key}: {name!r} is listed twice")
        both = sorted(set(self.categorical) & set(self.numeric))
        if both:
            raise ValueError(f"{both[0]!r} is both categorical and numeric")
        return self


class SyntheticConfig(_Section):
    """Criteo-shaped generated data with planted field interactions."""

    rows: int = Field(200_000, gt=0)
    fields: int = Field(39, gt=1)
    cardinality: int = Field(1_000, gt=1)  # values per field
    zipf_exponent: float = Field(1.1, gt=0)  # power-law frequency of values
    positive_rate: float = Field(0.25, gt=0, lt=1)
    interactions: int = Field(20, ge=0)  # planted pairwise field interactions
    signal: float = Field(1.0, ge=0)  # scale of the planted logit
    seed: int = Field(0, ge=0)


class DataConfig(_Section):
    dataset: str = "movielens-100k"
    path: UserPath | None = None  # file or folder for data sets that are not fetched
    task: Literal["binary", "multiclass"] | None = None  # None: the data set's default
    min_count: int | None = Field(None, ge=1)  # None: the data set's default
    numeric: Literal["bucket", "continuous"] = "bucket"
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = Field(2021, ge=0)
    # given split files {train: F, valid: F, test: F}; relative to `path` when that is a folder
    splits: dict[Literal["train", "valid", "test"], UserPath] | None = None
    vocab_from: Literal["train", "all"] = "train"  # rows the vocabularies and statistics see
    on_bad_line: Literal["error", "skip"] = "error"
    chunk_rows: int = Field(500_000, gt=0)
    cache_dir: UserPath | None = None  # default: $RECLOSS_HOME/cache
    table: TableSchema | None = None  # for dataset csv / parquet
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)

    @field_validator("split", mode="before")
    @classmethod
    def _three(cls, split: Any) -> Any:
        if isinstance(split, (list, tuple)) and len(split) != 3:
            raise ValueError(f"{list(split)} must be 3 fractions (train, valid, test)")
        return split

    @field_validator("split")
    @classmethod
    def _fractions(cls, split: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f < 0 for f in split) or abs(sum(split) - 1) > 1e-6:
            raise ValueError(f"{split} must be 3 fractions >= 0 summing to 1")
        return split

    @field_validator("splits")
    @classmethod
    def _all_three_splits(cls, splits: dict[str, str] | None) -> dict[str, str] | None:
        lacking = [s for s in ("train", "valid", "test") if splits is not None and s not in splits]
        if lacking:
            raise ValueError(f"name a file for every split; {', '.join(lacking)} missing")
        return splits

    @model_validator(mode="after")
    def _a_categorical_field(self) -> DataConfig:
        """The models embed categorical fields; continuous numeric columns only join them."""
        table = self.table
        if self.numeric == "continuous" and table and table.numeric and not table.categorical:
            raise ValueError(
                "table: no categorical column, and continuous numeric columns are no fields of "
                "their own: name a categorical column, or use numeric: bucket"
            )
        return self


class ModelConfig(_Section):
    name: str = "deepfm"
    embed_dim: int = Field(16, gt=0)
    params: dict[str, Any] = Field(
        default_factory=dict
    )  # model-specific, see `recloss list models`


class LossConfig(_Section):
    name: str = (
        "autoloss"  # a candidate loss (ce, focal, ...) or a strategy (weighted, autoloss, ...)
    )
    candidates: list[str] = Field(default_factory=lambda: ["focal", "kl", "hinge", "ce"])
    params: dict[str, Any] = Field(default_factory=dict)  # strategy-specific


class LRScheduleConfig(_Section):
    """How the model's learning rate changes over the epochs (`train.lr_schedule`)."""

    # plateau: x factor after `patience` epochs without a better validation AUC (FuxiCTR's
    # reduce-on-plateau); cosine: annealed to min_lr over train.epochs; step: x factor every
    # `every` epochs; none: constant
    name: Literal["none", "plateau", "cosine", "step"] = "none"
    factor: float = Field(0.1, gt=0, lt=1)
    patience: int = Field(1, ge=1)  # plateau: bad epochs in a row before the rate drops
    min_lr: float = Field(1e-6, ge=0)
    restore_best: bool = True  # plateau: continue from the best epoch's weights when it drops
    every: int = Field(1, ge=1)  # step: epochs between drops


class TrainConfig(_Section):
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(2048, gt=0)
    eval_batch_size: int = Field(16384, gt=0)
    lr: float = Field(1e-3, gt=0)
    embedding_lr: float | None = Field(None, gt=0)  # default: lr
    weight_decay: float = Field(0.0, ge=0)  # dense parameters
    # FuxiCTR's embedding_regularizer: lambda / 2 * ||W||^2 of every embedding table (first-order
    # weights too) at every step, applied lazily to sparse tables
    embedding_regularizer: float = Field(0.0, ge=0)
    lookup_l2: float = Field(0.0, ge=0)  # lambda * sum of the looked-up rows^2 / batch size

    @model_validator(mode="before")
    @classmethod
    def _renamed_embedding_l2(cls, values: Any) -> Any:
        if isinstance(values, dict) and "embedding_l2" in values:
            raise ValueError(
                "train.embedding_l2 was renamed: train.lookup_l2 (its meaning: the rows a batch "
                "looks up) or train.embedding_regularizer (FuxiCTR's L2 of the whole tables)"
            )
        return values

    sparse_embeddings: bool = True  # lazy row updates of the embedding tables (LazyAdam)
    patience: int = Field(2, ge=0)  # epochs without a better validation score before stopping
    # a categorical field (user_id) whose values group the rows: the validation and test metrics
    # add gAUC, each value's AUC averaged weighted by its rows (binary tasks)
    gauc_by: str | None = None
    # what picks the best epoch, stops early and drives `plateau`: the validation AUC, logloss or
    # gAUC (after `gauc_by`, so that its check sees it)
    monitor: Monitor = "auc"

    @field_validator("monitor")
    @classmethod
    def _gauc_grouped(cls, monitor: str, info: ValidationInfo) -> str:
        if monitor == "gauc" and info.data.get("gauc_by") is None:
            raise ValueError("gauc needs train.gauc_by, the field that groups the rows")
        return monitor

    max_steps_per_epoch: int | None = Field(None, gt=0)
    # a checkpoint inside an epoch too: every N steps and/or M minutes (None: at epoch ends only)
    checkpoint_every_steps: int | None = Field(None, gt=0)
    checkpoint_every_minutes: float | None = Field(30.0, gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, gt=0)  # intra-op threads; None: PyTorch's, one per core
    # bf16: the model's forward pass under bf16 autocast (losses, optimiser and evaluation in fp32);
    # auto: bf16 where the processor has bf16 arithmetic (AVX512-BF16 / AMX, or a bf16 GPU)
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    compile: bool = False  # torch.compile the models' dense blocks (MLP, cross, attention)
    # a map of the best model's logits fitted on the validation split after training, applied to
    # its test metrics and predictions: platt (binary: sigmoid(a z + b)) or temperature (z / T);
    # auto: platt for binary tasks, temperature for multi-class ones
    calibration: Literal["none", "platt", "temperature", "auto"] = "none"
    # channel: train through label flips estimated per categorical value against the validation
    # split, taken as clean (binary tasks; a single loss, weighted, autoloss, darts or meta:
    # their hypergradients take the channel; `recloss.training.label_noise`, `.flip_channel`)
    label_noise: Literal["none", "channel"] = "none"
    seed: int = Field(42, ge=0)  # NumPy's generators take no negative seed
    progress: bool = True
    lr_schedule: LRScheduleConfig = Field(default_factory=LRScheduleConfig)


class RunConfig(_Section):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    out: UserPath = "runs"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def format_validation_error(
    err: ValidationError,
    source: str = "config",
    origins: dict[str, str] | None = None,
    root: type[BaseModel] = RunConfig,
) -> str:
    """One line: `where: key.path: message` per problem, `where` the problem's origin.

    `origins` maps a dotted key to where its value came from (e.g. `--set train.lr=-1`); a
    problem inside that key is reported there, every other one at `source`. `root`: the model
    validated, whose keys an unknown key is matched against.
    """
    parts, last = [], None
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(root)"
        msg = problem_text(e, root)
        where = origin_of(key, origins or {}) or source
        parts.append(f"{where}: {key}: {msg}" if where != last else f"{key}: {msg}")
        last = where
    return "; ".join(parts)


def origin_of(key: str, origins: dict[str, str]) -> str | None:
    """Where the value at `key` came from: the origin of the longest key containing it, or of a
    key below it (`--set loss.data.task=...` gave the unknown key `loss.data`)."""
    found = [k for k in origins if key == k or key.startswith(k + ".") or k.startswith(key + ".")]
    return origins[max(found, key=len)] if found else None


def config_from_dict(
    d: dict[str, Any], source: str = "config", origins: dict[str, str] | None = None
) -> RunConfig:
    try:
        return RunConfig.model_validate(merge(dataset_defaults(d), d))
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, origins)) from None


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    origins: dict[str, str] | None = None,
) -> RunConfig:
    """Read a YAML config (or the defaults), then apply dotted overrides like `train.epochs`.

    `origins` names where each override came from, for error messages (e.g. the flag).
    """
    raw = read_yaml_mapping(path) if path is not None else {}
    for dotted, value in (overrides or {}).items():
        try:
            set_dotted(raw, dotted, value)
        except ConfigError as err:  # the file (or an earlier override) holds a value there
            where = path if path is not None else origin_of(dotted, origins or {})
            raise ConfigError(f"{where}: {err}" if where else str(err)) from None
    return config_from_dict(raw, str(path) if path is not None else "defaults", origins)


def set_dotted(d: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `d["a"]["b"] = value` for `dotted == "a.b"`, creating mappings on the way."""
    if "" in dotted.split("."):
        raise ConfigError(f"{dotted!r}: not a key; keys are dotted names, as in train.lr")
    *parents, leaf = dotted.split(".")
    for key in parents:
        d = d.setdefault(key, {})
        if not isinstance(d, dict):
            raise ConfigError(f"{dotted}: {key} is not a mapping")
    d[leaf] = value


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with `top` merged in, mapping by mapping."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
