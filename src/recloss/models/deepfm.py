"""DeepFM (Guo et al., IJCAI 2017)."""

from __future__ import annotations

import torch

from recloss.data.schema import Batch, Schema
from recloss.models.base import MODELS, Dims, Rate, RecModel
from recloss.models.layers import MLP, FactorizationMachine, FeaturesEmbedding, FeaturesLinear


@MODELS.register("deepfm")
class DeepFM(RecModel):
    """DeepFM: an FM and a DNN on shared field embeddings, their logits summed.

    Defaults follow the paper and the AutoLoss setup: DNN 400-400-400, ReLU, dropout 0.5.
    """

    label = "DeepFM"

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
        self.fm = FactorizationMachine(embed_dim, schema.n_outputs)
        in_dim = schema.n_fields * embed_dim
        self.dnn = MLP(in_dim, hidden_dims, dropout, batch_norm, out_dim=schema.n_outputs)

    def forward(self, batch: Batch) -> torch.Tensor:
        emb = self.embedding(batch.x_cat, batch.x_num, batch.lookup)
        flat = emb.flatten(1)
        # the FM on a view of the DNN's input, not the reverse: autograd then adds the FM's
        # gradient into the DNN's in place instead of allocating their [B, F, D] sum
        fm = self.fm(flat.view_as(emb))
        wide = self.linear(batch.x_cat, batch.x_num, batch.lookup) + fm
        return self.output(wide + self.dnn(flat))
