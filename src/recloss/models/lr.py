"""Logistic regression: the no-interaction reference."""

from __future__ import annotations

import torch

from recloss.data.schema import Batch, Schema
from recloss.models.base import MODELS, RecModel
from recloss.models.layers import FeaturesEmbedding, FeaturesLinear


@MODELS.register("lr")
class LogisticRegression(RecModel):
    """Logistic regression: a bias plus one weight per feature value, no interactions.

    Multi-class: softmax regression (C weights per value). `embed_dim` is unused; `embedding` is
    the weight table, so the trainer's `lookup_l2` penalises the looked-up weights.
    """

    label = "LR"

    def __init__(self, schema: Schema, embed_dim: int = 16, sparse: bool = True) -> None:
        super().__init__(schema)
        self.linear = FeaturesLinear(schema, sparse)

    @property
    def embedding(self) -> FeaturesEmbedding:  # type: ignore[override]
        return self.linear.weights

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.output(self.linear(batch.x_cat, batch.x_num, batch.lookup))
