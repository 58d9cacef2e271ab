"""Input checks shared by the public functions: the one validation vocabulary of mlwork.

Every message follows one pattern, ``"<argument> must be <what was expected>; got <what came>"``,
so a user reads which argument is wrong, what it should be and what it was, in one line. Every
check raises :class:`ValueError` (never ``TypeError``, never an XLA trace) and returns the
converted value where a conversion is part of the rule (``check_int`` returns a Python ``int``).

Shapes and dtypes are static under ``jit``, so shape checks always run. Value checks
(ranges, "is this a distribution") only run when the values are concrete; under a
transformation they are skipped, and each public function documents what it does then.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
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
            fail(name, "free of NaN", f"{int(np.isnan(v).sum())} NaN of {v.size} values")


def check_finite(value: Any, name: str) -> None:
    """``ValueError`` when a concrete floating-point ``value`` contains NaN or ±inf."""
    if isinstance(value, jax.core.Tracer):
        return
    for leaf in jax.tree_util.tree_leaves(value):
        v = concrete(leaf)
        if v is not None and v.dtype.kind in "fc" and v.size and not np.isfinite(v).all():
            bad = int((~np.isfinite(v)).sum())
            fail(name, "finite (no NaN or ±inf)", f"{bad} non-finite of {v.size} values")


def fail(name: str, expected: str, got: Any) -> None:
    """Raise the one-line ``ValueError`` of the shared pattern: ``"{name} must be {expected}; got {got}"``.

    ``got`` is printed with ``str``: pass ``repr(value)`` for a value whose type matters (a string,
    ``None``), or a description (``f"shape {x.shape}"``).
    """
    raise ValueError(f"{name} must be {expected}; got {got}")


def check_int(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """A Python ``int`` from an integer of any type and size (``bool`` refused), in
    ``[minimum, maximum]`` where given. A NumPy ``int64`` above 2³¹ keeps its value: it is
    converted with ``int``, never through ``jnp.asarray`` (which wraps it when x64 is off)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, np.ndarray) and value.ndim == 0 and np.issubdtype(value.dtype, np.integer):
            value = value.item()
        else:
            fail(name, _int_range(minimum, maximum), f"{value!r} ({type(value).__name__})")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        fail(name, _int_range(minimum, maximum), v)
    return v


def _int_range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    if minimum == 1:
        return "a positive integer"
    if minimum == 0:
        return "a non-negative integer"
    if minimum is not None:
        return f"an integer >= {minimum}"
    if maximum is not None:
        return f"an integer <= {maximum}"
    return "an integer"


def check_real(value: Any, name: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """A finite Python ``float`` from a real scalar (``bool`` refused), in the interval from
    ``low`` to ``high`` (closed ends unless ``low_open`` / ``high_open``)."""
    expected = "a finite real number" + _interval(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        arr = np.asarray(value) if isinstance(value, (np.ndarray, jax.Array)) else None
        if arr is None or arr.ndim != 0 or arr.dtype.kind not in "iuf":
            fail(name, expected, f"{value!r} ({type(value).__name__})")
        value = arr.item()
    v = float(value)
    if not math.isfinite(v):
        fail(name, expected, v)
    if low is not None and (v <= low if low_open else v < low):
        fail(name, expected, v)
    if high is not None and (v >= high if high_open else v > high):
        fail(name, expected, v)
    return v


def _interval(low, high, low_open, high_open) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f" {'<' if high_open else '<='} {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite real ``> 0`` (``>= 0`` with ``allow_zero``)."""
    return check_real(value, name, low=0.0, low_open=not allow_zero)


def check_fraction(value: Any, name: str, *, allow_zero: bool = False, allow_one: bool = True) -> float:
    """A real in ``(0, 1]`` (``[0, 1]`` with ``allow_zero``; ``allow_one=False`` opens the top)."""
    return check_real(value, name, low=0.0, high=1.0, low_open=not allow_zero, high_open=not allow_one)


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """One of ``choices`` (compared with ``==``)."""
    if isinstance(value, (list, dict, set)) or value not in choices:
        fail(name, "one of " + ", ".join(map(repr, choices)), repr(value))
    return value


def check_callable(value: Any, name: str) -> Callable:
    """A callable (a function, a ``functools.partial``, an object with ``__call__``)."""
    if not callable(value):
        fail(name, "a callable", type(value).__name__)
    return value


def check_ndim(x: Any, name: str, ndim: int | Sequence[int]) -> None:
    """``x`` has ``ndim`` axes (or one of several allowed counts)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    shape = np.shape(x)
    if len(shape) not in allowed:
        words = " or ".join(f"{n}-D" for n in allowed)
        fail(name, f"a {words} array", f"shape {shape}")
