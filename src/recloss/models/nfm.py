"""Neural factorization machine, NFM (He & Chua, SIGIR 2017)."""

from __future__ import annotations

import torch
from torch import nn

from recloss.data.schema import Batch, Schema
from recloss.models.base import MODELS, Dims, Rate, RecModel
from recloss.models.layers import MLP, BiInteraction, Dropout, FeaturesEmbedding, FeaturesLinear


@MODELS.register("nfm")
class NFM(RecModel):
    """NFM: bias + linear term + a DNN over the bi-interaction pooling of the field embeddings.

    Defaults follow the paper's best setting (NFM-1): one hidden layer of 64 units, ReLU,
    dropout 0.5 on the bi-interaction vector and 0.2 after the hidden layer. The paper also
    batch-normalises the bi-interaction vector and hidden layer (`batch_norm=True`).
    """

    label = "NFM"

    def __init__(
        self,
        schema: Schema,
        embed_dim: int = 16,
        sparse: bool = True,
        hidden_dims: Dims = (64,),
        dropout: Rate = 0.2,
        bi_dropout: Rate = 0.5,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(schema)
        self.embedding = FeaturesEmbedding(schema, embed_dim, sparse)
        self.linear = FeaturesLinear(schema, sparse)
        pooling: list[nn.Module] = [BiInteraction()]
        if batch_norm:
            pooling.append(nn.BatchNorm1d(embed_dim))
        pooling.append(Dropout(bi_dropout))
        self.pooling = nn.Sequential(*pooling)
        self.dnn = MLP(embed_dim, hidden_dims, dropout, batch_norm, out_dim=schema.n_outputs)

    def forward(self, batch: Batch) -> torch.Tensor:
        emb = self.embedding(batch.x_cat, batch.x_num, batch.lookup)
        deep = self.dnn(self.pooling(emb))
        return self.output(self.linear(batch.x_cat, batch.x_num, batch.lookup) + deep)
