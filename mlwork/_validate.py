"""Input checks shared by the public functions.

Shapes and dtypes are static under ``jit``, so shape checks always run. Value checks
(ranges, "is this a distribution") only run when the values are concrete; under a
transformation they are skipped, and each public function documents what it does then.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def concrete(x: Any) -> np.ndarray | None:
    """``x`` as a NumPy array when its value is known on the host, else ``None`` (a tracer)."""
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def check_same_shape(a: Any, b: Any, name_a: str, name_b: str) -> None:
    sa, sb = np.shape(a), np.shape(b)
    if sa != sb:
        raise ValueError(f"{name_a} has shape {sa} but {name_b} has shape {sb}; expected equal shapes")


def check_finite_number(value: Any, name: str) -> float:
    """A Python float from a scalar that must be finite."""
    try:
        v = float(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a real number, got {value!r}") from e
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def check_int_labels(labels: Any, n_classes: int, name: str = "labels") -> None:
    """Integer class labels in ``[0, n_classes)``; the range is checked when concrete."""
    dtype = getattr(labels, "dtype", None) or np.asarray(labels).dtype
    if not np.issubdtype(dtype, np.integer):
        raise ValueError(f"{name} must be integer class indices, got dtype {dtype}")
    values = concrete(labels)
    if values is not None and values.size:
        lo, hi = int(values.min()), int(values.max())
        if lo < 0 or hi >= n_classes:
            raise ValueError(
                f"{name} must lie in [0, {n_classes - 1}] for {n_classes} classes; "
                f"got values in [{lo}, {hi}]"
            )


def check_no_nan(value: Any, name: str) -> None:
    """``ValueError`` when a concrete floating-point ``value`` contains NaN (a tracer passes: the
    check cannot run under ``jit``, where NaN propagates as IEEE arithmetic says)."""
    if isinstance(value, jax.core.Tracer):
        return
    leaves = jax.tree_util.tree_leaves(value)
    for leaf in leaves:
        v = concrete(leaf)
        if v is not None and v.dtype.kind in "fc" and v.size and np.isnan(v).any():
            raise ValueError(f"{name} contains NaN")


def check_finite(value: Any, name: str) -> None:
    """``ValueError`` when a concrete floating-point ``value`` contains NaN or ±inf."""
    if isinstance(value, jax.core.Tracer):
        return
    for leaf in jax.tree_util.tree_leaves(value):
        v = concrete(leaf)
        if v is not None and v.dtype.kind in "fc" and v.size and not np.isfinite(v).all():
            raise ValueError(f"{name} contains NaN or infinite values")
