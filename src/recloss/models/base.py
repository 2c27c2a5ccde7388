"""The model seam: the registry, the base class, and `build_model` with checked parameters."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import torch
from pydantic import Field, PositiveInt
from torch import nn

from recloss.data.schema import Batch, Schema
from recloss.errors import ConfigError
from recloss.models.layers import FeaturesEmbedding, FeaturesLinear
from recloss.params import accepted_params, check_params
from recloss.registry import Registry

# Parameter types of model constructors; `build_model` validates user values against them.
Dims = tuple[PositiveInt, ...]  # widths of hidden layers
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]  # a dropout probability

# Constructor arguments every model takes; they come from `build_model`, not `model.params`.
_COMMON = ("schema", "embed_dim", "sparse")


class RecModel(nn.Module):
    """Base of the zoo: maps a Batch to logits [B] (binary task) or [B, C] (multi-class)."""

    embedding: FeaturesEmbedding
    label: ClassVar[str] = ""  # the display name in tables

    def __init__(self, schema: Schema) -> None:
        super().__init__()
        self.schema = schema
        self.n_outputs = schema.n_outputs

    def output(self, z: torch.Tensor) -> torch.Tensor:
        """Drop the class axis of a binary model's [B, 1] logits."""
        return z.squeeze(-1) if self.n_outputs == 1 else z

    def forward(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def compile_dense(self) -> None:
        """`torch.compile` each dense block in place (dynamic shapes; parameter names unchanged).

        Not the embedding lookups, whose sparse gradients and batch `Lookup` break the graph
        (a whole DeepFM, compiled, broke into pieces and ran slower than eager), nor a lone
        `Linear`, which has nothing to fuse.
        """
        for child in self.children():
            if not isinstance(child, FeaturesEmbedding | FeaturesLinear | nn.Linear):
                child.compile(dynamic=True)


MODELS: Registry[type[RecModel]] = Registry("model")


def default_params(name: str) -> dict[str, Any]:
    """The model-specific parameters of a registered model and their defaults."""
    return accepted_params(MODELS.get(name), _COMMON)


def check_model_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """A model's `model.params` checked and converted; ConfigError naming the key otherwise."""
    return check_params(MODELS.get(name), name.lower(), params, "model.params", _COMMON)


def build_model(
    name: str, schema: Schema, embed_dim: int = 16, sparse: bool = True, **params: Any
) -> RecModel:
    """Build a registered model; unknown or ill-typed `params` raise ConfigError naming the key."""
    cls = MODELS.get(name)
    if embed_dim < 1:
        raise ConfigError(f"model.embed_dim: must be a positive integer (got {embed_dim})")
    return cls(schema, embed_dim=embed_dim, sparse=sparse, **check_model_params(name, params))
