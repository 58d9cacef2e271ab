r"""Loss functions of deck section 12, in nats, averaged over the batch (the cost :math:`J`).

.. math:: J = \frac{1}{N}\sum_{i=1}^N \mathcal{L}(\hat y^{(i)}, y^{(i)})

Stability, as the issue asks:

* losses on **probabilities** (``binary_cross_entropy``, ``categorical_cross_entropy``)
  clip the probability into ``[eps, 1 − eps]`` for the value but let the gradient through
  (a straight-through clip), so a probability of exactly 0 or 1 gives a finite loss *and* a
  finite, non-zero gradient pointing the right way;
* losses on **logits** never leave log space (log-sum-exp / softplus via Optax) and are finite
  for logits of ±1e4, with gradients ``softmax(z) − y`` / ``σ(z) − y``.

Shape mismatches, empty batches, NaN inputs, non-finite logits and labels outside ``[0, K)``
raise ``ValueError``; value checks run when the inputs are concrete (outside ``jit``). Under
``jit`` an out-of-range integer label makes ``softmax_cross_entropy`` return NaN for that
example (one-hot of an invalid index is all zeros, which we flag by NaN rather than silently
returning 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlwork._validate import check_finite, check_int_labels, check_same_shape, concrete, fail
from mlwork.nn.activations import _check_logits

Array = jax.Array

#: Probabilities are clipped into [EPS, 1 - EPS]; 1e-7 is representable next to 1 in float32.
EPS = 1e-7


def _as_float(x) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def _check_values(a, b, name_a: str, name_b: str) -> None:
    """Same shape, not empty (a mean over nothing is undefined), finite (inf − inf is NaN)."""
    check_same_shape(a, b, name_a, name_b)
    if np.size(a) == 0:
        fail(name_a, "not empty (a mean over no examples is undefined)", f"shape {np.shape(a)}")
    check_finite(a, name_a)
    check_finite(b, name_b)


def _straight_through_clip(p: Array, eps: float) -> Array:
    """``clip(p, eps, 1 − eps)`` in value, identity in gradient."""
    return p + jax.lax.stop_gradient(jnp.clip(p, eps, 1.0 - eps) - p)


def _check_probabilities(p, name: str) -> None:
    values = concrete(p)
    if values is not None and values.size:
        if not np.all(np.isfinite(values)):
            fail(name, "finite probabilities", "NaN or ±inf")
        if values.min() < 0.0 or values.max() > 1.0:
            fail(name, "probabilities in [0, 1] (pass logits to the *_with_logits / "
                 "softmax_cross_entropy variants instead)", f"values in [{values.min():.4g}, {values.max():.4g}]")


def mse(predictions, targets) -> Array:
    r"""Mean squared error, averaged over every element (PyTorch's ``MSELoss`` convention).

    .. math:: J = \frac{1}{N}\sum_i (\hat y_i - y_i)^2

    Args:
      predictions: :math:`\hat y`, any shape and float dtype, finite.
      targets: :math:`y`, the shape of ``predictions``, finite.

    Returns:
      The mean over every element, a scalar.

    Raises:
      ValueError: different shapes, empty arrays, non-finite values (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> float(nn.mse(jnp.array([1.0, 2.0]), jnp.array([1.0, 4.0])))
      2.0
    """
    predictions, targets = _as_float(predictions), _as_float(targets)
    _check_values(predictions, targets, "predictions", "targets")
    return jnp.mean(jnp.square(predictions - targets))


def mae(predictions, targets) -> Array:
    r"""Mean absolute error (robust to outliers).

    .. math:: J = \frac{1}{N}\sum_i |\hat y_i - y_i|

    Args:
      predictions: :math:`\hat y`, any shape and float dtype, finite.
      targets: :math:`y`, the shape of ``predictions``, finite.

    Returns:
      The mean over every element, a scalar.

    Raises:
      ValueError: different shapes, empty arrays, non-finite values (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> float(nn.mae(jnp.array([1.0, 2.0]), jnp.array([1.0, 4.0])))
      1.0
    """
    predictions, targets = _as_float(predictions), _as_float(targets)
    _check_values(predictions, targets, "predictions", "targets")
    return jnp.mean(jnp.abs(predictions - targets))


def binary_cross_entropy(probs, labels, *, eps: float = EPS) -> Array:
    r"""Binary cross-entropy on probabilities :math:`\hat y \in [0, 1]`:

    .. math:: \mathcal{L} = -[y \log \hat y + (1 - y)\log(1 - \hat y)]

    averaged over the elements, in nats. The probability is clipped into ``[eps, 1 - eps]`` for
    the value only (a straight-through clip: 0 and 1 give a finite loss and a gradient pointing
    the right way). Prefer :func:`binary_cross_entropy_with_logits` when you have the
    pre-sigmoid value.

    Args:
      probs: :math:`\hat y \in [0, 1]`, any shape.
      labels: :math:`y \in [0, 1]` (soft targets allowed), the shape of ``probs``.
      eps: the clip, default ``1e-7`` (representable next to 1 in float32).

    Returns:
      The mean loss, a scalar.

    Raises:
      ValueError: different shapes, empty, non-finite, or values outside ``[0, 1]`` (when
        concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> round(float(nn.binary_cross_entropy(jnp.array([0.7]), jnp.array([1.0]))), 3)  # -ln 0.7
      0.357
    """
    probs, labels = _as_float(probs), _as_float(labels)
    _check_values(probs, labels, "probs", "labels")
    _check_probabilities(probs, "probs")
    _check_probabilities(labels, "labels")
    p = _straight_through_clip(probs, eps)
    return -jnp.mean(labels * jnp.log(p) + (1.0 - labels) * jnp.log1p(-p))


def binary_cross_entropy_with_logits(logits, labels) -> Array:
    r"""Binary cross-entropy of :math:`\sigma(z)`, computed from the logit :math:`z`:

    .. math:: \mathcal{L} = \mathrm{softplus}(z) - y z, \qquad
              \frac{\partial \mathcal{L}}{\partial z} = \sigma(z) - y

    ("the log in BCE cancels the exp in sigmoid"), averaged over the elements, in nats. Finite
    for ``|z|`` up to the float32 range (``optax.sigmoid_binary_cross_entropy``).

    Args:
      logits: :math:`z`, any shape, finite.
      labels: :math:`y \in [0, 1]`, the shape of ``logits``.

    Returns:
      The mean loss, a scalar.

    Raises:
      ValueError: different shapes, empty, non-finite logits, labels outside ``[0, 1]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> round(float(nn.binary_cross_entropy_with_logits(jnp.array([0.0]), jnp.array([1.0]))), 4)  # ln 2
      0.6931
    """
    logits, labels = _as_float(logits), _as_float(labels)
    _check_values(logits, labels, "logits", "labels")
    check_finite(logits, "logits")
    _check_probabilities(labels, "labels")
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))


def categorical_cross_entropy(probs, one_hot, *, eps: float = EPS) -> Array:
    r"""Categorical cross-entropy on probabilities over the last axis:

    .. math:: \mathcal{L} = -\sum_k y_k \log \hat y_k

    averaged over the examples (the leading axes), in nats; probabilities are clipped as in
    :func:`binary_cross_entropy`.

    Args:
      probs: :math:`\hat y`, probabilities over the last axis.
      one_hot: :math:`y`, one-hot (or soft) targets, the shape of ``probs``.
      eps: the clip, default ``1e-7``.

    Returns:
      The mean loss, a scalar.

    Raises:
      ValueError: different shapes, empty, non-finite, or values outside ``[0, 1]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> p, y = jnp.array([[0.1, 0.7, 0.2]]), jnp.array([[0.0, 1.0, 0.0]])
      >>> round(float(nn.categorical_cross_entropy(p, y)), 3)  # the deck's -ln 0.7
      0.357
    """
    probs, one_hot = _as_float(probs), _as_float(one_hot)
    _check_values(probs, one_hot, "probs", "one_hot")
    _check_probabilities(probs, "probs")
    _check_probabilities(one_hot, "one_hot")
    p = _straight_through_clip(probs, eps)
    per_example = -jnp.sum(one_hot * jnp.log(p), axis=-1)
    return jnp.mean(per_example)


def softmax_cross_entropy(logits, labels) -> Array:
    r"""Cross-entropy of :math:`\mathrm{softmax}(z)` against integer class labels or one-hot
    (or soft) targets, from the logits:

    .. math:: \mathcal{L} = \log\sum_j e^{z_j} - \sum_k y_k z_k, \qquad
              \frac{\partial\mathcal{L}}{\partial z} = \mathrm{softmax}(z) - y

    averaged over the examples, in nats.

    Args:
      logits: :math:`z`, shape ``(..., K)``; checked as :func:`softmax` (a -inf logit masks a
        class).
      labels: integer class indices of shape ``logits.shape[:-1]`` in ``[0, K)``, or targets
        over the classes of the shape of ``logits``.

    Returns:
      The mean loss, a scalar (NaN under ``jit`` for an out-of-range label).

    Raises:
      ValueError: no class axis, empty logits, bad logits, labels of another shape or out of
        range (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> round(float(nn.softmax_cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([1]))), 4)  # ln 2
      0.6931
    """
    logits = _as_float(logits)
    if logits.ndim < 1:
        fail("logits", "an array with a class axis (shape (..., K))", "a scalar")
    if logits.size == 0:
        fail("logits", "not empty (a mean over no examples is undefined)", f"shape {logits.shape}")
    _check_logits(logits, "logits")
    labels = jnp.asarray(labels)
    n_classes = logits.shape[-1]
    if labels.shape == logits.shape and not jnp.issubdtype(labels.dtype, jnp.integer):
        _check_probabilities(labels, "labels")
        # -Σ y_k log softmax(z)_k with 0·log 0 = 0: a −inf (masked) logit whose target is 0 adds
        # nothing (optax's form gives 0·(−inf) = NaN there); a masked class with y_k > 0 costs +inf.
        labels = labels.astype(logits.dtype)
        log_p = jax.nn.log_softmax(logits)
        return jnp.mean(-jnp.sum(labels * jnp.where(labels > 0, log_p, 0.0), axis=-1))
    if labels.shape != logits.shape[:-1]:
        fail("labels", f"integer class indices of shape {logits.shape[:-1]} or targets of shape "
             f"{logits.shape} (for logits of shape {logits.shape})", f"shape {labels.shape}")
    check_int_labels(labels, n_classes, "labels")
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    # Under jit an out-of-range label cannot raise: make it visible instead of silently 0.
    valid = (labels >= 0) & (labels < n_classes)
    return jnp.mean(jnp.where(valid, losses, jnp.nan))


LOSSES = {
    "mse": mse,
    "mae": mae,
    "binary_cross_entropy": binary_cross_entropy,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "categorical_cross_entropy": categorical_cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
}
