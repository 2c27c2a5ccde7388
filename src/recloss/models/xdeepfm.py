"""xDeepFM (Lian et al., KDD 2018)."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from recloss.data.schema import Batch, Schema
from recloss.models.base import MODELS, Dims, Rate, RecModel
from recloss.models.layers import MLP, CompressedInteraction, FeaturesEmbedding, FeaturesLinear


@MODELS.register("xdeepfm")
class XDeepFM(RecModel):
    """xDeepFM: a linear term, a CIN and a DNN on shared field embeddings, their logits summed.

    Defaults: CIN 16-16-16 feature maps (FuxiCTR's), DNN 400-400-400 with dropout 0.5 (DeepFM's).
    """

    label = "xDeepFM"

    def __init__(
        self,
        schema: Schema,
        embed_dim: int = 16,
        sparse: bool = True,
        cin_sizes: Annotated[Dims, Field(min_length=1)] = (16, 16, 16),
        hidden_dims: Dims = (400, 400, 400),
        dropout: Rate = 0.5,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(schema)
        self.embedding = FeaturesEmbedding(schema, embed_dim, sparse)
        self.linear = FeaturesLinear(schema, sparse)
        self.cin = CompressedInteraction(schema.n_fields, cin_sizes)
        self.cin_head = nn.Linear(self.cin.out_dim, schema.n_outputs)
        in_dim = schema.n_fields * embed_dim
        self.dnn = MLP(in_dim, hidden_dims, dropout, batch_norm, out_dim=schema.n_outputs)

    def forward(self, batch: Batch) -> torch.Tensor:
        emb = self.embedding(batch.x_cat, batch.x_num, batch.lookup)
        wide = self.linear(batch.x_cat, batch.x_num, batch.lookup)
        return self.output(wide + self.cin_head(self.cin(emb)) + self.dnn(emb.flatten(1)))
