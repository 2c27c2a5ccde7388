"""Factorization machine (Rendle, ICDM 2010)."""

from __future__ import annotations

import torch

from recloss.data.schema import Batch, Schema
from recloss.models.base import MODELS, RecModel
from recloss.models.layers import FactorizationMachine, FeaturesEmbedding, FeaturesLinear


@MODELS.register("fm")
class FM(RecModel):
    """Factorization machine: bias + linear term + inner products of all field-embedding pairs."""

    label = "FM"

    def __init__(self, schema: Schema, embed_dim: int = 16, sparse: bool = True) -> None:
        super().__init__(schema)
        self.embedding = FeaturesEmbedding(schema, embed_dim, sparse)
        self.linear = FeaturesLinear(schema, sparse)
        self.fm = FactorizationMachine(embed_dim, schema.n_outputs)

    def forward(self, batch: Batch) -> torch.Tensor:
        emb = self.embedding(batch.x_cat, batch.x_num, batch.lookup)
        return self.output(self.linear(batch.x_cat, batch.x_num, batch.lookup) + self.fm(emb))
