"""A small convolutional network for 28×28 images, in Flax Linen, exposed as a :class:`Model`.

Convolution and BatchNorm are what Flax already does well, so this network is a Linen module
run through :func:`mlwork.nn.from_flax`. Architecture (channels last, NHWC)::

    conv 3×3 (c1 = 32 channels) → BatchNorm → ReLU → max-pool 2×2
    conv 3×3 (c2 = 64 channels) → BatchNorm → ReLU → max-pool 2×2
    dense (hidden = 128) → BatchNorm → ReLU → dropout → dense (n_classes logits)

Every ReLU output is sown into the ``"hidden"`` collection, so ``Model.hidden`` returns them
(``relu_0``, ``relu_1``, ...) for the training diagnostics.

(``convs_per_block=2`` stacks two convolutions per block, as VGG does.) The default is the
Flax MNIST example's shape (which reaches 99.17% on MNIST) plus BatchNorm; it is kept that small
because convolutions are XLA:CPU's slow path — about 4× the cost per FLOP of the MLP's matmuls
here — and the deck's pipeline must run on a laptop CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from mlwork.nn.models import HIDDEN_COLLECTION, Model, from_flax


class CNN(nn.Module):
    """Conv/BatchNorm blocks then a dense head; returns logits."""

    n_classes: int = 10
    channels: Sequence[int] = (32, 64)
    convs_per_block: int = 1
    hidden: int = 128
    dropout: float = 0.2
    bn_momentum: float = 0.9

    @nn.compact
    def __call__(self, x, train: bool = False):
        if x.ndim == 3:  # (batch, H, W) grayscale -> add the channel axis
            x = x[..., None]
        x = x.astype(jnp.float32)
        norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum)  # noqa: E731
        n_relu = 0

        def relu(z):  # post-activation features, sown for Model.hidden (a no-op unless asked for)
            nonlocal n_relu
            a = nn.relu(z)
            self.sow(HIDDEN_COLLECTION, f"relu_{n_relu}", a)
            n_relu += 1
            return a

        for c in self.channels:
            for _ in range(self.convs_per_block):
                x = nn.Conv(c, (3, 3), use_bias=False)(x)
                x = relu(norm()(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(self.hidden, use_bias=False)(x)
        x = relu(norm()(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.n_classes)(x)


def cnn(n_classes: int = 10, channels: Sequence[int] = (32, 64), convs_per_block: int = 1,
        hidden: int = 128, dropout: float = 0.2) -> Model:
    """The :class:`CNN` as a ``Model(init, apply)`` producing logits."""
    if n_classes <= 0 or hidden <= 0 or any(c <= 0 for c in channels) or convs_per_block <= 0:
        raise ValueError("cnn sizes (n_classes, channels, convs_per_block, hidden) must be positive")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    module = CNN(n_classes=n_classes, channels=tuple(channels), convs_per_block=convs_per_block,
                 hidden=hidden, dropout=dropout)
    return from_flax(module)
