"""Argument checks and conversions shared by the foundations modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import concrete

Array = jax.Array


def as_float(x: Any) -> Array:
    """``x`` as a floating array (integers become float32) with a strong (non-weak) dtype, so
    it can be a ``lax.scan`` carry next to the outputs of real computations."""
    x = jnp.asarray(x)
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.float32
    return jnp.asarray(x, dtype=dtype)


def check_finite(tree: Any, name: str) -> None:
    """Every array leaf of ``tree`` must be finite; checked when its value is concrete."""
    for leaf in jax.tree_util.tree_leaves(tree):
        values = concrete(leaf)
        if values is not None and values.size and not np.all(np.isfinite(values)):
            raise ValueError(f"{name} must be finite; got non-finite values")


def check_callable(f: Any, name: str) -> Callable:
    if not callable(f):
        raise ValueError(f"{name} must be a callable function, got {type(f).__name__}")
    return f


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """A Python int ``>= minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def broadcast(*arrays: Array) -> tuple[Array, ...]:
    """Broadcast explicitly (the test suite makes implicit rank promotion an error)."""
    shape = jnp.broadcast_shapes(*(a.shape for a in arrays))
    return tuple(jnp.broadcast_to(a, shape) for a in arrays)
