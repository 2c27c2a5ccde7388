"""A grid's schema, and the config sections of one cell it implies."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, field_validator

from recloss.runs import method_artifact
from recloss.search import Artifact

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # safe as a folder name


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MethodSpec(_Spec):
    """One column of the results table: a candidate loss or a loss strategy."""

    name: str | None = None  # default: the method's key
    candidates: list[str] | None = None  # default: base.loss.candidates
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None  # column heading; default: the paper's name of the method


Named = dict[str, dict[str, Any]]  # name -> config keys (DataConfig or ModelConfig)


def _named(value: Any) -> Any:
    """A list of names means each with default settings."""
    if isinstance(value, list):
        return {str(name): {} for name in value}
    if isinstance(value, dict):
        return {k: ({} if v is None else v) for k, v in value.items()}
    return value


class ModelTransfer(_Spec):
    """DeepFM -> NFM, AutoInt: targets trained with the source model's loss network."""

    source: str  # a key of `models`
    targets: Named  # models not in `models`, in the same forms
    datasets: list[str] | None = None  # keys of `datasets`; default: all

    _targets = field_validator("targets", mode="before")(lambda cls, v: _named(v))


class DatasetTransfer(_Spec):
    """Criteo -> Avazu: target data sets of the same task trained with the source's loss network."""

    source: str  # a key of `datasets`
    targets: Named  # data sets not in `datasets`, in the same forms
    models: list[str] | None = None  # keys of `models`; default: all

    _targets = field_validator("targets", mode="before")(lambda cls, v: _named(v))


class TransferSpec(_Spec):
    methods: list[str]  # keys of `methods`: fixed losses, or strategies with a transferable network
    models: ModelTransfer | None = None
    datasets: DatasetTransfer | None = None


class Grid(_Spec):
    """A benchmark: every data set x model x method x seed, plus optional transfer cells."""

    name: str
    seeds: list[NonNegativeInt] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)
    base: dict[str, Any] = Field(default_factory=dict)  # RunConfig keys shared by every cell
    datasets: Named = Field(min_length=1)  # name -> DataConfig keys
    models: Named = Field(min_length=1)  # name -> ModelConfig keys (name defaults to the key)
    methods: dict[str, MethodSpec] = Field(min_length=1)
    compare: str | None = None  # the method tested against the best baseline; default: autoloss
    efficiency: list[str] | None = None  # methods of the AUC-over-time plot
    transfer: TransferSpec | None = None

    _names = field_validator("datasets", "models", "methods", mode="before")(
        lambda cls, v: _named(v)
    )

    def method(self, key: str) -> str:
        """The loss or strategy name a method key stands for."""
        return (self.methods[key].name or key).lower()

    def artifact(self, key: str) -> Artifact | None:
        """The learned loss network a method's cells hand on to transfer cells, if any."""
        return method_artifact(self.method(key))

    def plotted(self) -> list[str]:
        """Methods of the AUC-over-time plot (`efficiency`, else CE, SLF and AutoLoss)."""
        if self.efficiency is not None:
            return self.efficiency
        return [k for k in self.methods if self.method(k) in ("ce", "slf", "autoloss")]

    def compared(self) -> str | None:
        """The method marked against the best baseline (`compare`, else the AutoLoss method)."""
        if self.compare is not None:
            return self.compare
        return next((k for k in self.methods if self.method(k) == "autoloss"), None)


def model_keys(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The `model` section of a model key and its settings."""
    return {"name": name, **spec}


def loss_keys(grid: Grid, key: str) -> dict[str, Any]:
    """The `loss` section of a method key."""
    m = grid.methods[key]
    keys: dict[str, Any] = {"name": grid.method(key), "params": dict(m.params)}
    if m.candidates is not None:
        keys["candidates"] = m.candidates
    return keys
