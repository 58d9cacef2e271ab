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
    r"""uint8 pixels to standardised float32: :math:`x' = (x/255 - \mu)/\sigma` (deck section 20)."""
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
    """Random per-image shifts of up to ``max_shift`` pixels and rotations of up to
    ``max_rotation_deg`` degrees, with bilinear resampling and a black (0) border.

    ``images`` is a float batch ``(B, H, W)`` of raw intensities (before normalisation, so the
    border fill is the background).
    """
    keys = jax.random.split(key, images.shape[0])
    max_rotation = math.radians(max_rotation_deg)
    return jax.vmap(lambda k, im: _affine_one(k, im, max_shift, max_rotation))(keys, images)


def preprocess(images_u8: Array, mean: float, std: float, *, key: Array | None = None,
               augment_data: bool = False) -> Array:
    """A uint8 batch to the model's float32 input: optional augmentation, then normalisation."""
    x = images_u8.astype(jnp.float32)
    if augment_data:
        if key is None:
            raise ValueError("augmentation needs a PRNG key")
        x = augment(key, x)
    return (x * (1.0 / 255.0) - mean) * (1.0 / std)
