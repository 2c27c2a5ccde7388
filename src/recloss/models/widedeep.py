"""Wide & Deep (Cheng et al., DLRS 2016)."""

from __future__ import annotations

import torch

from recloss.data.schema import Batch, Schema
from recloss.models.base import MODELS, Dims, Rate, RecModel
from recloss.models.layers import MLP, FeaturesEmbedding, FeaturesLinear


@MODELS.register("widedeep")
class WideAndDeep(RecModel):
    """Wide & Deep: a linear model over raw features plus a DNN over field embeddings.

    The wide part sees the raw feature values only (no hand-made cross features). Defaults follow
    the DeepFM paper's comparison setup: DNN 400-400-400, ReLU, dropout 0.5.
    """

    label = "Wide&Deep"

    def __init__(
        self,
        schema: Schema,
        embed_dim: int = 16,
        sparse: bool = True,
        hidden_dims: Dims = (400, 400, 400),
        dropout: Rate = 0.5,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(schema)
        self.embedding = FeaturesEmbedding(schema, embed_dim, sparse)
        self.linear = FeaturesLinear(schema, sparse)
        in_dim = schema.n_fields * embed_dim
        self.dnn = MLP(in_dim, hidden_dims, dropout, batch_norm, out_dim=schema.n_outputs)

    def forward(self, batch: Batch) -> torch.Tensor:
        emb = self.embedding(batch.x_cat, batch.x_num, batch.lookup)
        wide = self.linear(batch.x_cat, batch.x_num, batch.lookup)
        return self.output(wide + self.dnn(emb.flatten(1)))
