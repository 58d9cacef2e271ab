"""A small convolutional network for 28×28 images, in Flax Linen, exposed as a :class:`Model`.

Convolution and BatchNorm are what Flax already does well, so this network is a Linen module
run through :func:`mlwork.nn.from_flax`. Architecture (channels last, NHWC)::

    conv 3×3 (c1 = 32 channels) → BatchNorm → ReLU → max-pool 2×2
    conv 3×3 (c2 = 64 channels) → BatchNorm → ReLU → max-pool 2×2
    dense (hidden = 128) → BatchNorm → ReLU → dropout → dense (n_classes logits)

Every ReLU output is sown into the ``"hidden"`` collection, so ``Model.hidden`` returns them
(``relu_0``, ``relu_1``, ...) for the training diagnostics.

(``convs_per_block=2`` stacks two convolutions per block, as VGG does.) ``compute_dtype="bfloat16"``
runs the forward pass in bfloat16 (mixed precision, for accelerators): the parameters stay
float32 and are cast where they are used, BatchNorm keeps float32 statistics, the logits come
back as float32 so the loss is computed in float32, and the gradients are float32. The default is the
Flax MNIST example's shape (which reaches 99.17% on MNIST) plus BatchNorm; it is kept that small
because convolutions are XLA:CPU's slow path — about 4× the cost per FLOP of the MLP's matmuls
here — and the deck's pipeline must run on a laptop CPU.

On the CPU the convolutions are computed as one matmul over shifted copies of the input
(``Conv``, im2col): XLA:CPU runs the kernel gradient of its native convolution about 70×
slower inside ``lax.scan`` — the trainer's epoch loop — than outside it (measured: 577 ms vs
8 ms a step for a 14×14×32→64 layer at batch 128), while a matmul is fast in both. Elsewhere
(GPU, TPU) the native convolution is used. The parameters are the same either way. Max-pooling
on the CPU is a reduction over a reshaped view (``max_pool_2x2()``) rather than XLA's
``reduce_window``, for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mlwork._validate import check_choice, check_int, check_real
from mlwork.nn.models import HIDDEN_COLLECTION, MAX_WIDTH, Model, check_compute_dtype, from_flax


class Conv(nn.Module):
    """A stride-1, SAME-padded 2-D convolution without bias, with ``flax.linen.Conv``'s parameter
    (``kernel``, HWIO, LeCun-normal init) and outputs. ``impl="matmul"`` computes it as one matmul
    over the ``kh·kw`` shifted copies of the zero-padded input (im2col), ``"xla"`` with
    ``lax.conv_general_dilated``, ``"auto"`` picks ``"matmul"`` on the CPU. The input and the
    (float32) kernel are cast to ``dtype`` for the product."""

    features: int
    kernel_size: tuple[int, int] = (3, 3)
    impl: str = "auto"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        kh, kw = self.kernel_size
        cin = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (kh, kw, cin, self.features), jnp.float32)
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        impl = self.impl
        if impl == "auto":
            impl = "matmul" if jax.default_backend() == "cpu" else "xla"
        if impl == "xla":
            return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                                dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if impl != "matmul":
            check_choice(impl, "impl", ("auto", "matmul", "xla"))
        height, width = x.shape[1], x.shape[2]
        top, left = (kh - 1) // 2, (kw - 1) // 2  # lax's SAME: the odd pixel of padding goes last
        padded = jnp.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
        columns = jnp.concatenate([padded[:, i:i + height, j:j + width, :] for i in range(kh) for j in range(kw)],
                                  axis=-1)
        return columns @ kernel.reshape(kh * kw * cin, self.features)


def max_pool_2x2(x: jax.Array, impl: str = "auto") -> jax.Array:
    """2×2 max-pooling with stride 2 over the H and W axes of an NHWC batch, as
    ``flax.linen.max_pool(x, (2, 2), strides=(2, 2))`` (VALID: an odd last row/column is dropped).

    ``impl="reshape"`` takes the maximum over a ``(N, H/2, 2, W/2, 2, C)`` view: an ordinary
    reduction that XLA:CPU fuses and vectorises, about 10× faster than its ``reduce_window``
    and the ``select_and_scatter`` gradient, which dominated the CNN's step. Its gradient splits
    a tie between equal maxima evenly where ``reduce_window``'s picks one; after a ReLU the only
    ties are all-zero windows, whose gradient the ReLU zeroes either way. ``"xla"`` is Flax's
    pooling; ``"auto"`` picks ``"reshape"`` on the CPU.
    """
    if impl == "auto":
        impl = "reshape" if jax.default_backend() == "cpu" else "xla"
    if impl == "xla":
        return nn.max_pool(x, (2, 2), strides=(2, 2))
    if impl != "reshape":
        check_choice(impl, "impl", ("auto", "reshape", "xla"))
    n, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2, :]
    return jnp.max(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))


class CNN(nn.Module):
    """The deck's convolutional network as a Flax Linen module: Conv/BatchNorm/ReLU blocks with
    2×2 max-pooling, then a dense hidden layer with dropout and the output layer; returns
    float32 logits. Build it with :func:`cnn`, which checks the sizes.

    Attributes:
      n_classes: the number of outputs.
      channels: the channels of each block.
      convs_per_block: 3×3 convolutions per block.
      hidden: the dense hidden layer's width.
      dropout: its dropout probability in training.
      bn_momentum: BatchNorm's running-average momentum.
      conv_impl: ``"auto"`` (an im2col matmul on the CPU, XLA's convolution elsewhere),
        ``"matmul"`` or ``"xla"``.
      pool_impl: ``"auto"`` (a reshape on the CPU, XLA's ``reduce_window`` elsewhere),
        ``"reshape"`` or ``"xla"``.
      dtype: the compute dtype (parameters are float32 either way).
    """

    n_classes: int = 10
    channels: Sequence[int] = (32, 64)
    convs_per_block: int = 1
    hidden: int = 128
    dropout: float = 0.2
    bn_momentum: float = 0.9
    conv_impl: str = "auto"  # see Conv
    pool_impl: str = "auto"  # see max_pool_2x2
    dtype: Any = jnp.float32  # the compute dtype; parameters are float32 either way

    @nn.compact
    def __call__(self, x, train: bool = False):
        if x.ndim == 3:  # (batch, H, W) grayscale -> add the channel axis
            x = x[..., None]
        x = x.astype(self.dtype)

        def norm(z):  # BatchNorm in float32 (its statistics and parameters are float32)
            return nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum)(
                z.astype(jnp.float32)).astype(self.dtype)

        n_relu = 0

        def relu(z):  # post-activation features, sown for Model.hidden (a no-op unless asked for)
            nonlocal n_relu
            a = nn.relu(z)
            self.sow(HIDDEN_COLLECTION, f"relu_{n_relu}", a)
            n_relu += 1
            return a

        for c in self.channels:
            for _ in range(self.convs_per_block):
                x = Conv(c, (3, 3), impl=self.conv_impl, dtype=self.dtype)(x)
                x = relu(norm(x))
            x = max_pool_2x2(x, self.pool_impl)
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(self.hidden, use_bias=False, dtype=self.dtype)(x)
        x = relu(norm(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.n_classes, dtype=self.dtype)(x).astype(jnp.float32)


def cnn(n_classes: int = 10, channels: Sequence[int] = (32, 64), convs_per_block: int = 1,
        hidden: int = 128, dropout: float = 0.2, compute_dtype: Any = jnp.float32) -> Model:
    """The :class:`CNN` as a :class:`~mlwork.nn.Model` producing float32 logits: blocks of
    ``convs_per_block`` 3×3 convolutions (BatchNorm, ReLU) then 2×2 max-pooling, one block per
    entry of ``channels``, then a dense hidden layer with dropout and the output layer.

    Args:
      n_classes: outputs, a positive integer.
      channels: the channels of each block, positive integers.
      convs_per_block: convolutions per block, a positive integer.
      hidden: the dense hidden layer's width, a positive integer.
      dropout: the hidden layer's dropout probability in training, in ``[0, 1)``.
      compute_dtype: the forward pass's dtype, ``"float32"`` or ``"bfloat16"`` (parameters
        stay float32).

    Returns:
      A :class:`~mlwork.nn.Model`; ``init(key, (28, 28))`` or ``(28, 28, 1)``, ``apply`` takes
      batches ``(B, H, W)`` or ``(B, H, W, C)``.

    Raises:
      ValueError: a size that is not a positive integer (naming it), ``dropout`` outside
        ``[0, 1)``, an unknown ``compute_dtype``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork import nn
      >>> model = nn.cnn(channels=(4,), hidden=8)
      >>> variables = model.init(jax.random.key(0), (28, 28))
      >>> model.apply(variables, jnp.zeros((2, 28, 28)))[0].shape
      (2, 10)
    """
    n_classes = check_int(n_classes, "n_classes", minimum=1, maximum=MAX_WIDTH)
    channels = tuple(check_int(c, f"channels[{i}]", minimum=1, maximum=MAX_WIDTH) for i, c in enumerate(channels))
    convs_per_block = check_int(convs_per_block, "convs_per_block", minimum=1, maximum=MAX_WIDTH)
    hidden = check_int(hidden, "hidden", minimum=1, maximum=MAX_WIDTH)
    dropout = check_real(dropout, "dropout", low=0.0, high=1.0, high_open=True)
    dtype = check_compute_dtype(compute_dtype)
    module = CNN(n_classes=n_classes, channels=tuple(channels), convs_per_block=convs_per_block,
                 hidden=hidden, dropout=dropout, dtype=dtype)
    return from_flax(module)
