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
    r"""Gini impurity of a node from its class counts, over the last axis:

    .. math:: \mathrm{Gini}(S) = 1 - \sum_{c=1}^{C} p_c^2, \qquad p_c = \frac{n_c}{\sum_k n_k}

    the probability that two samples drawn with replacement from :math:`S` have different
    classes: 0 for a pure node, at most :math:`1 - 1/C` (uniform classes). Not
    :func:`mlwork.theory.entropy`'s kind of function: the argument is counts of one node, the
    impurity a tree's splits minimise (``criterion="gini"``).

    Args:
      counts: ``(..., C)`` class counts or sample weights of a node (any real dtype, integers
        are cast to float32; any unit, since they are normalised), or class proportions;
        finite, non-negative, with a positive total over the last axis. Leading axes are a batch.

    Returns:
      The Gini impurity, float32 (the input's float dtype), shape ``counts.shape[:-1]``; a
      dimensionless number in :math:`[0, 1 - 1/C]`.

    Raises:
      ValueError: a scalar (no class axis), a negative or non-finite count, or a zero total —
        when the values are concrete; under ``jit`` a zero total gives NaN.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import trees
      >>> round(float(trees.gini_impurity(jnp.array([7, 3]))), 4)  # the deck's 1 - (0.7² + 0.3²)
      0.42
      >>> trees.gini_impurity(jnp.array([[5.0, 5.0], [4.0, 0.0]])).tolist()  # 50/50, pure
      [0.5, 0.0]

    Reference: Breiman, Friedman, Olshen & Stone, *Classification and Regression Trees* (1984),
    the Gini index of diversity (chapter 4).
    """
    return _gini(_checked_counts(counts))


def entropy_impurity(counts) -> Array:
    r"""Entropy impurity of a node from its class counts, in bits, over the last axis:

    .. math:: H(S) = -\sum_{c=1}^{C} p_c \log_2 p_c, \qquad p_c = \frac{n_c}{\sum_k n_k}

    with :math:`0 \log 0 = 0`: 0 (``+0.0``) for a pure node, 1 bit for a 50/50 node,
    :math:`\log_2 C` at most. This is the impurity of a tree node (``criterion="entropy"``,
    from counts of any scale); :func:`mlwork.theory.entropy` is the entropy of a probability
    distribution (any base, checked to sum to 1). Gradients are finite where a count is 0
    (the double-``where`` trick).

    Args:
      counts: ``(..., C)`` class counts or sample weights of a node (any real dtype, integers
        are cast to float32; any unit, since they are normalised), or class proportions;
        finite, non-negative, with a positive total over the last axis. Leading axes are a batch.

    Returns:
      The entropy in bits, float32 (the input's float dtype), shape ``counts.shape[:-1]``, in
      :math:`[0, \log_2 C]`.

    Raises:
      ValueError: a scalar (no class axis), a negative or non-finite count, or a zero total —
        when the values are concrete; under ``jit`` a zero total gives NaN.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import trees
      >>> float(trees.entropy_impurity(jnp.array([5, 5])))  # the deck's 50/50 node: 1 bit
      1.0
      >>> trees.entropy_impurity(jnp.array([[1.0, 1.0, 2.0], [10.0, 0.0, 0.0]])).tolist()
      [1.5, 0.0]

    Reference: Quinlan, "Induction of decision trees", Machine Learning 1 (1986), the expected
    information :math:`I(p, n)` of ID3; Shannon, "A mathematical theory of communication" (1948).
    """
    return _entropy(_checked_counts(counts))


def variance_impurity(values, sample_weight=None) -> Array:
    r"""Regression impurity of a node: the weighted population variance of its targets,

    .. math:: \mathrm{Var}(S) = \frac{1}{W}\sum_{i \in S} w_i (y_i - \bar y)^2, \qquad
              \bar y = \frac{1}{W}\sum_{i \in S} w_i y_i, \quad W = \sum_{i \in S} w_i

    (divided by :math:`W`, not :math:`W - 1`), the least-squares impurity whose decrease a
    regression tree's splits maximise (``criterion="variance"``).

    Args:
      values: ``(n,)`` targets :math:`y` of the node's samples, finite (integers are cast to
        float32); the result is in their unit squared.
      sample_weight: ``(n,)`` weights :math:`w_i`, finite and non-negative with a positive
        sum; ``None`` (default) weighs every sample 1.

    Returns:
      The variance, a float32 scalar (the dtype of float ``values``), :math:`\ge 0`.

    Raises:
      ValueError: ``values`` not 1-D or empty, ``sample_weight`` of another shape; non-finite
        values, negative or non-finite weights or a zero weight sum (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import trees
      >>> float(trees.variance_impurity(jnp.array([1.0, 2.0, 3.0, 4.0])))
      1.25
      >>> w = jnp.array([1.0, 1.0, 1.0, 3.0])  # mean 3, sum of w (y - 3)^2 = 8, over W = 6
      >>> round(float(trees.variance_impurity(jnp.array([1.0, 2.0, 3.0, 4.0]), w)), 4)
      1.3333

    Reference: Breiman, Friedman, Olshen & Stone, *Classification and Regression Trees* (1984),
    least-squares regression trees (chapter 8).
    """
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
    r"""Impurity decrease of a split of a node :math:`S` into children :math:`S_1..S_V`:

    .. math:: IG(S, A) = i(S) - \sum_{v=1}^{V} \frac{|S_v|}{|S|}\, i(S_v)

    with :math:`i` the entropy in bits (:func:`entropy_impurity`, the deck's information gain)
    or the Gini impurity (:func:`gini_impurity`, CART's decrease in impurity), and
    :math:`|S_v|` the total count of child :math:`v`. An empty child contributes nothing.
    :func:`fit_tree` maximises :math:`|S| \cdot IG` (the weighted decrease, ``Tree.gain``).

    Args:
      parent_counts: ``(C,)`` class counts (or weights) of the node :math:`S`, finite,
        non-negative, with a positive total.
      child_counts: ``(V, C)`` class counts of its children; the rows must add up to
        ``parent_counts`` (relative tolerance ``1e-5``).
      criterion: ``"entropy"`` (default; the result is in bits) or ``"gini"``.

    Returns:
      The impurity decrease, a float32 scalar, :math:`\ge 0` up to rounding.

    Raises:
      ValueError: an unknown ``criterion``; shapes other than ``(C,)`` and ``(V, C)``; children
        that do not add up to the parent; negative or non-finite counts or a zero parent total.

    Example:
      >>> from mlwork import trees
      >>> parent, children = [10, 10], [[8, 2], [2, 8]]
      >>> round(float(trees.information_gain(parent, children)), 4)  # 1 - H(0.8, 0.2) bits
      0.2781
      >>> round(float(trees.information_gain(parent, children, "gini")), 4)  # 0.5 - 0.32
      0.18

    Reference: Quinlan, "Induction of decision trees", Machine Learning 1 (1986), the gain
    criterion; Breiman et al., *Classification and Regression Trees* (1984), the decrease in
    impurity.
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
