"""AutoInt (Song et al., CIKM 2019)."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from recloss.data.schema import Batch, Schema
from recloss.models.base import MODELS, RecModel
from recloss.models.layers import FeaturesEmbedding, InteractingLayer

Count = Annotated[int, Field(ge=1)]


@MODELS.register("autoint")
class AutoInt(RecModel):
    """AutoInt: stacked multi-head self-attention over field embeddings, then a linear output.

    Defaults follow the paper: 3 interacting layers, 2 heads of d' = 32 units each, residual
    connections, unscaled attention scores; no DNN (that is AutoInt+).
    """

    label = "AutoInt"

    def __init__(
        self,
        schema: Schema,
        embed_dim: int = 16,
        sparse: bool = True,
        num_layers: Count = 3,
        heads: Count = 2,
        head_dim: Count = 32,
        residual: bool = True,
    ) -> None:
        super().__init__(schema)
        self.embedding = FeaturesEmbedding(schema, embed_dim, sparse)
        layers, dim = [], embed_dim
        for _ in range(num_layers):
            layers.append(InteractingLayer(dim, head_dim, heads, residual))
            dim = heads * head_dim
        self.attention = nn.Sequential(*layers)
        self.head = nn.Linear(schema.n_fields * dim, schema.n_outputs)

    def forward(self, batch: Batch) -> torch.Tensor:
        emb = self.embedding(batch.x_cat, batch.x_num, batch.lookup)
        return self.output(self.head(self.attention(emb).flatten(1)))
