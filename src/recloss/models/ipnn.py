"""Inner-product neural network, IPNN (Qu et al., ICDM 2016)."""

from __future__ import annotations

import torch

from recloss.data.schema import Batch, Schema
from recloss.models.base import MODELS, Dims, Rate, RecModel
from recloss.models.layers import MLP, FeaturesEmbedding, InnerProduct


@MODELS.register("ipnn")
class IPNN(RecModel):
    """IPNN: a DNN over the field embeddings and the inner products of all field pairs.

    The product layer's linear part (l_z) and inner-product part (l_p) feed the first hidden
    layer; here that is one Linear over their concatenation, with full (not low-rank) weights on
    the F(F-1)/2 pairwise products. Defaults follow the PNN/AutoLoss setup: 400-400-400, ReLU,
    dropout 0.5.
    """

    label = "IPNN"

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
        self.product = InnerProduct(schema.n_fields)
        in_dim = schema.n_fields * embed_dim + self.product.num_pairs
        self.dnn = MLP(in_dim, hidden_dims, dropout, batch_norm, out_dim=schema.n_outputs)

    def forward(self, batch: Batch) -> torch.Tensor:
        emb = self.embedding(batch.x_cat, batch.x_num, batch.lookup)
        return self.output(self.dnn(torch.cat([emb.flatten(1), self.product(emb)], dim=1)))
