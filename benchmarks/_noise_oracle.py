"""A ceiling for the noisy-label benchmark: CE trained through the true label-noise channel.

Forward correction (Patrini et al., CVPR 2017): the model's clean probability `q` is mapped to
the probability of the noisy label, `a + b * q`, with the `(a, b)` of each row's actual flips
(`recloss.data.noise.FlipChannel`), and CE is taken on that; evaluation sees `q`. No method knows
which rows were flipped at what rate, so this bounds what any loss could win back from the noise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from recloss.data.noise import FlipChannel
from recloss.data.schema import Batch
from recloss.training import Callback
from recloss.training.flip_channel import channel_logit

ORACLE = "ce-oracle"


class ThroughChannel(Callback):
    """Makes the model's training forward pass predict the noisy label through the channel."""

    def __init__(self, channel: Callable[[], FlipChannel]) -> None:
        self._channel = channel  # called at fit start, once the noisy data set is prepared

    def on_fit_start(self, trainer) -> None:
        model, channel = trainer.model, self._channel()
        clean = model.forward

        def forward(batch: Batch) -> torch.Tensor:
            z = clean(batch)
            if not model.training:
                return z
            if z.dim() != 1:
                raise ValueError(f"{ORACLE} is for binary tasks")
            a, b = channel.coefficients(batch.x_cat.cpu().numpy())
            return channel_logit(z, *(torch.as_tensor(c, dtype=z.dtype) for c in (a, b)))

        model.forward = forward
