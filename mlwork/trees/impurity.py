r"""Node impurities as the deck defines them (section 16).

.. math::
    H(S) = -\sum_c p_c \log_2 p_c \;\text{(bits)}, \qquad
    \mathrm{Gini}(S) = 1 - \sum_c p_c^2, \qquad
    \mathrm{Var}(S) = \frac1{|S|}\sum_{i \in S} (y_i - \bar y)^2,

    IG(S, A) = H(S) - \sum_v \frac{|S_v|}{|S|} H(S_v),

with :math:`p_c` the fraction of class :math:`c` in :math:`S`. The deck's numbers: Gini(0.7, 0.3)
= 0.42, a pure node has entropy and Gini 0, a 50/50 node has entropy 1 bit.

``counts`` may be class counts or proportions (they are normalised over the last axis) and may
carry leading batch axes. :math:`0 \log 0 = 0`, and gradients stay finite at :math:`p_c = 0`
(the double-``where`` trick). Value checks (non-negative, finite, a positive total) run when the
inputs are concrete; under ``jit`` a zero total gives NaN.

Reference: Quinlan, "Induction of decision trees", Machine Learning 1 (1986); Breiman et al.,
*Classification and Regression Trees* (1984).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import concrete
from mlwork.trees import _deprecated

Array = jax.Array


def _checked_counts(counts, name: str = "counts") -> Array:
    counts = jnp.asarray(counts)
    if counts.ndim == 0:
        raise ValueError(f"{name} must have a class axis (last axis), got a scalar")
    if not jnp.issubdtype(counts.dtype, jnp.floating):
        counts = counts.astype(jnp.float32)
    values = concrete(counts)
    if values is not None:
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"{name} must be finite and non-negative")
        if np.any(values.max(axis=-1, initial=0.0) < np.finfo(np.float32).tiny):
            raise ValueError(f"{name} must have a positive total over the class axis (subnormal totals "
                             "count as zero: XLA flushes them)")
    return counts


def _proportions(counts: Array) -> Array:
    """``counts`` normalised over the last axis; scaled by the largest count first so that totals
    near the float32 maximum do not overflow."""
    scaled = counts / jnp.max(counts, axis=-1, keepdims=True)
    return scaled / jnp.sum(scaled, axis=-1, keepdims=True)


@jax.jit
def _gini(counts: Array) -> Array:
    p = _proportions(counts)
    return 1.0 - jnp.sum(p * p, axis=-1)


@jax.jit
def _entropy(counts: Array) -> Array:
    p = _proportions(counts)
    positive = p > 0
    safe = jnp.where(positive, p, 1.0)
    # 0 - sum rather than -sum (the same value, exactly, and the same gradient): a pure node has
    # entropy +0.0, not -0.0.
    return 0.0 - jnp.sum(jnp.where(positive, p * jnp.log2(safe), 0.0), axis=-1)


def gini_impurity(counts) -> Array:
    r"""Gini impurity :math:`1 - \sum_c p_c^2` over the last axis."""
    return _gini(_checked_counts(counts))


def entropy_impurity(counts) -> Array:
    r"""Shannon entropy in bits :math:`-\sum_c p_c \log_2 p_c` over the last axis (:math:`0\log 0 = 0`)."""
    return _entropy(_checked_counts(counts))


def variance_impurity(values, sample_weight=None) -> Array:
    r"""Regression impurity :math:`\frac{1}{W}\sum_i w_i (y_i - \bar y)^2` (population variance)
    of ``values`` ``(n,)``; the weights default to 1."""
    y = jnp.asarray(values)
    if y.ndim != 1 or y.shape[0] == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {y.shape}")
    y = y.astype(jnp.float32) if not jnp.issubdtype(y.dtype, jnp.floating) else y
    w = jnp.ones_like(y) if sample_weight is None else jnp.asarray(sample_weight, y.dtype)
    if w.shape != y.shape:
        raise ValueError(f"sample_weight has shape {w.shape} but values has shape {y.shape}")
    yv, wv = concrete(y), concrete(w)
    if yv is not None and not np.all(np.isfinite(yv)):
        raise ValueError("values must be finite")
    if wv is not None and (not np.all(np.isfinite(wv)) or np.any(wv < 0) or not wv.sum() > 0):
        raise ValueError("sample_weight must be finite and non-negative with a positive sum")
    return _variance(y, w)


@jax.jit
def _variance(y: Array, w: Array) -> Array:
    mean = jnp.sum(w * y) / jnp.sum(w)
    return jnp.sum(w * jnp.square(y - mean)) / jnp.sum(w)


def information_gain(parent_counts, child_counts, criterion: str = "entropy") -> Array:
    r"""Impurity decrease of a split: :math:`i(S) - \sum_v \frac{|S_v|}{|S|} i(S_v)`.

    Args:
      parent_counts: ``(C,)`` class counts of the node :math:`S`.
      child_counts: ``(V, C)`` class counts of its children; rows must add up to the parent.
      criterion: ``"entropy"`` (the deck's information gain, bits) or ``"gini"``.
    """
    if criterion not in ("entropy", "gini"):
        raise ValueError(f"criterion must be 'entropy' or 'gini', got {criterion!r}")
    parent = jnp.asarray(parent_counts, jnp.float32)
    children = jnp.asarray(child_counts, jnp.float32)
    if parent.ndim != 1 or children.ndim != 2 or children.shape[1] != parent.shape[0]:
        raise ValueError(f"expected parent_counts (C,) and child_counts (V, C); got {parent.shape} "
                         f"and {children.shape}")
    pv, cv = concrete(parent), concrete(children)
    if pv is not None and cv is not None and not np.allclose(cv.sum(0), pv, rtol=1e-5, atol=1e-6):
        raise ValueError("child_counts must add up to parent_counts over the children")
    _checked_counts(parent, "parent_counts")
    _checked_counts(jnp.where(jnp.sum(children, axis=1, keepdims=True) > 0, children, 1.0), "child_counts")
    return _information_gain(parent, children, criterion)


@functools.partial(jax.jit, static_argnums=2)
def _information_gain(parent: Array, children: Array, criterion: str) -> Array:
    impurity = _entropy if criterion == "entropy" else _gini
    sizes = jnp.sum(children, axis=1)
    keep = sizes > 0  # an empty child contributes nothing
    child_imp = impurity(jnp.where(keep[:, None], children, 1.0))
    return impurity(parent) - jnp.sum(jnp.where(keep, sizes * child_imp, 0.0)) / jnp.sum(parent)


# The names of 0.1 work until 0.3, with a DeprecationWarning.
__getattr__ = _deprecated.module_getattr(
    "mlwork.trees.impurity", globals(), {k: v for k, v in _deprecated.RENAMED.items() if k != "LOSSES"})
