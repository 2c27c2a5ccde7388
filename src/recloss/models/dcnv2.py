"""Deep & Cross Network v2, DCN-v2 (Wang et al., WWW 2021)."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from recloss.data.schema import Batch, Schema
from recloss.models.base import MODELS, Dims, Rate, RecModel
from recloss.models.layers import MLP, CrossNetwork, FeaturesEmbedding


@MODELS.register("dcnv2")
class DCNv2(RecModel):
    """DCN-v2 (parallel): full-rank cross layers and a DNN side by side, outputs concatenated.

    Defaults: 3 cross layers and a 400-400 ReLU DNN, no dropout.
    """

    label = "DCN-v2"

    def __init__(
        self,
        schema: Schema,
        embed_dim: int = 16,
        sparse: bool = True,
        cross_layers: Annotated[int, Field(ge=0)] = 3,
        hidden_dims: Dims = (400, 400),
        dropout: Rate = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(schema)
        self.embedding = FeaturesEmbedding(schema, embed_dim, sparse)
        in_dim = schema.n_fields * embed_dim
        self.cross = CrossNetwork(in_dim, cross_layers)
        self.dnn = MLP(in_dim, hidden_dims, dropout, batch_norm)
        self.head = nn.Linear(in_dim + self.dnn.out_dim, schema.n_outputs)

    def forward(self, batch: Batch) -> torch.Tensor:
        x0 = self.embedding(batch.x_cat, batch.x_num, batch.lookup).flatten(1)
        return self.output(self.head(torch.cat([self.cross(x0), self.dnn(x0)], dim=1)))
