"""Preprocessing that runs on the device, inside the compiled training step.

Images stay on the device as uint8; each batch is normalised (and optionally augmented) where it
is used, so nothing but the uint8 data ever crosses from the host.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

Array = jax.Array


def normalize(images: Array, mean: float, std: float) -> Array:
    r"""uint8 pixels to standardised float32 (deck section 20).

    .. math:: x' = \frac{x / 255 - \mu}{\sigma}

    Args:
      images: pixels, any shape, an integer or float dtype with values in ``[0, 255]``.
      mean: :math:`\mu`, the per-pixel mean on ``[0, 1]`` images (MNIST's is
        :data:`~mlwork.data.MNIST_MEAN`).
      std: :math:`\sigma > 0`, the per-pixel standard deviation on ``[0, 1]`` images.

    Returns:
      float32, the shape of ``images``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.data import normalize
      >>> normalize(jnp.array([0, 255], jnp.uint8), mean=0.5, std=0.5).tolist()
      [-1.0, 1.0]
    """
    return (images.astype(jnp.float32) * (1.0 / 255.0) - mean) * (1.0 / std)


def _affine_one(key: Array, image: Array, max_shift: float, max_rotation: float) -> Array:
    k_rot, k_shift = jax.random.split(key)
    angle = jax.random.uniform(k_rot, (), jnp.float32, -max_rotation, max_rotation)
    shift = jax.random.uniform(k_shift, (2,), jnp.float32, -max_shift, max_shift)
    h, w = image.shape
    rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                              indexing="ij")
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    # Output pixel p samples the input at R(−θ)(p − c − t) + c: rotate by θ, then shift by t.
    y, x = rows - cy - shift[0], cols - cx - shift[1]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    src_y = cos * y - sin * x + cy
    src_x = sin * y + cos * x + cx
    return map_coordinates(image, [src_y, src_x], order=1, mode="constant", cval=0.0)


def augment(key: Array, images: Array, max_shift: float = 2.0, max_rotation_deg: float = 10.0) -> Array:
    r"""Random per-image shifts and rotations (data augmentation), resampled bilinearly with a black border.

    Each image gets its own angle :math:`\theta \sim U(-\theta_{max}, \theta_{max})` and shift
    :math:`t \sim U(-s, s)^2`; output pixel :math:`p` samples the input at
    :math:`R(-\theta)(p - c - t) + c`, :math:`c` the image's centre (a rotation about the centre,
    then a shift), with 0 outside the image.

    Args:
      key: a PRNG key; the same key gives the same transforms.
      images: a float batch ``(B, H, W)`` of raw intensities, before normalisation (so the border
        fill, 0, is the background).
      max_shift: :math:`s`, the largest shift along each axis, in pixels.
      max_rotation_deg: :math:`\theta_{max}`, the largest rotation, in degrees.

    Returns:
      The transformed batch, the shape of ``images``, float32.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork.data import augment
      >>> images = jnp.zeros((2, 8, 8)).at[:, 2:6, 2:6].set(255.0)
      >>> out = augment(jax.random.key(0), images, max_shift=0.0, max_rotation_deg=0.0)
      >>> out.shape, bool(jnp.all(out == images))  # no shift, no rotation: the identity
      ((2, 8, 8), True)
    """
    keys = jax.random.split(key, images.shape[0])
    max_rotation = math.radians(max_rotation_deg)
    return jax.vmap(lambda k, im: _affine_one(k, im, max_shift, max_rotation))(keys, images)


def _leading(a, ndim: int):
    """``a`` with leading axes of 1 up to ``ndim`` axes (explicit broadcasting over the batch)."""
    a = jnp.asarray(a, jnp.float32)
    return a.reshape((1,) * (ndim - a.ndim) + a.shape)


def preprocess(images_u8: Array, mean: float, std: float, *, key: Array | None = None,
               augment_data: bool = False) -> Array:
    r"""A batch to the model's input: uint8 images through optional :func:`augment`, then
    :func:`normalize`; float features standardised, :math:`(x - \mu) / \sigma`; integer tokens as
    they are (int32).

    Runs on the device, inside the compiled step, so only the stored data cross from the host.

    Args:
      images_u8: uint8 pixels ``(B, H, W)``; or float features ``(B, *shape)``; or integer tokens.
      mean: the per-pixel mean on ``[0, 1]`` images (a scalar); for features, the per-feature mean
        (a scalar or an array broadcasting over ``shape``).
      std: the matching standard deviation, positive.
      key: a PRNG key, required when ``augment_data``.
      augment_data: apply :func:`augment` (training) or not (evaluation).

    Returns:
      float32 ``(B, H, W)``, :math:`(x / 255 - \mu) / \sigma` (features: float32 standardised;
      tokens: int32).

    Raises:
      ValueError: ``augment_data`` without a ``key``, or on features.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.data import MNIST_MEAN, MNIST_STD, preprocess
      >>> x = preprocess(jnp.zeros((1, 28, 28), jnp.uint8), MNIST_MEAN, MNIST_STD)
      >>> x.dtype.name, round(float(x[0, 0, 0]), 4)  # -0.1307 / 0.3081
      ('float32', -0.4242)
      >>> preprocess(jnp.array([[1.0, 4.0]]), jnp.array([0.0, 2.0]), jnp.array([1.0, 2.0])).tolist()
      [[1.0, 1.0]]
    """
    if images_u8.dtype != jnp.uint8:  # features: standardise; tokens: as they are
        if not jnp.issubdtype(images_u8.dtype, jnp.floating):
            return images_u8.astype(jnp.int32)
        if augment_data:
            raise ValueError("augmentation is for uint8 images; got float features")
        x = images_u8.astype(jnp.float32)
        return (x - _leading(mean, x.ndim)) * _leading(1.0 / jnp.asarray(std, jnp.float32), x.ndim)
    x = images_u8.astype(jnp.float32)
    if augment_data:
        if key is None:
            raise ValueError("augmentation needs a PRNG key")
        x = augment(key, x)
    return (x * (1.0 / 255.0) - mean) * (1.0 / std)
