"""Conversions the foundations modules share (the checks themselves are ``mlwork._validate``'s)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array


def as_float(x: Any) -> Array:
    """``x`` as a floating array (integers become float32) with a strong (non-weak) dtype, so
    it can be a ``lax.scan`` carry next to the outputs of real computations."""
    x = jnp.asarray(x)
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.float32
    return jnp.asarray(x, dtype=dtype)


def broadcast(*arrays: Array) -> tuple[Array, ...]:
    """Broadcast explicitly (the test suite makes implicit rank promotion an error)."""
    shape = jnp.broadcast_shapes(*(a.shape for a in arrays))
    return tuple(jnp.broadcast_to(a, shape) for a in arrays)
