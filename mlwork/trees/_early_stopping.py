r"""Early stopping of gradient boosting on a validation set: its arguments, the split and the rule.

The rule is scikit-learn's (``HistGradientBoosting*._should_stop``, with ``scoring="loss"``).
With :math:`L_0` the validation loss of :math:`F_0` and :math:`L_t` the loss after round
:math:`t`, patience :math:`p` (``n_iter_no_change``) and tolerance :math:`\tau` (``tol``),
boosting stops after round :math:`t \ge p` when none of the last :math:`p` losses improves on
the one :math:`p` rounds earlier by more than :math:`\tau`:

.. math:: \text{stop after round } t \iff t \ge p \ \text{ and } \
          \min_{t-p < s \le t} L_s \ \ge\ L_{t-p} - \tau .

The model then keeps the rounds up to the best one, :math:`\arg\min_{s \le t} L_s` (the first
if tied), as XGBoost's ``best_iteration`` does.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import fail
from mlwork.trees import _checks

#: ``fold_in`` datum of the split's key: the subsample of round ``t`` uses ``fold_in(key, t)``,
#: ``t < n_estimators <= 2**31 - 1``, so this one is never drawn for a round.
SPLIT_STREAM = 2**31 - 1


def check_settings(validation_fraction, eval_set, n_iter_no_change, tol):
    """Validated ``(validation_fraction, n_iter_no_change, tol)``; one-line ``ValueError`` else."""
    if validation_fraction is not None:
        if isinstance(validation_fraction, bool) or not isinstance(validation_fraction, numbers.Real):
            fail("validation_fraction", "None or a number in (0, 1)", repr(validation_fraction))
        v = float(validation_fraction)
        if not (math.isfinite(v) and 0.0 < v < 1.0):
            fail("validation_fraction", "None or a number in (0, 1)", repr(validation_fraction))
        validation_fraction = v
    if validation_fraction is not None and eval_set is not None:
        fail("eval_set", "None when validation_fraction is given (one validation set, not two)",
             "both validation_fraction and eval_set")
    if n_iter_no_change is not None:
        n_iter_no_change = _checks.check_int(n_iter_no_change, "n_iter_no_change", 1)
        if validation_fraction is None and eval_set is None:
            fail("n_iter_no_change", "None without a validation set (give validation_fraction or eval_set)",
                 n_iter_no_change)
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (math.isfinite(tol) and tol >= 0):
        fail("tol", "a finite number >= 0", repr(tol))
    return validation_fraction, n_iter_no_change, float(tol)


def split(key: jax.Array, n: int, fraction: float, labels: np.ndarray | None,
          weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Seeded train/validation row indices, each ascending.

    The validation rows are drawn among the :math:`n_+` rows of positive ``weight`` (all rows
    without it): a row of zero weight counts nowhere, so it stays on the training side.
    :math:`m = \lceil f n_+ \rceil` rows go to validation (scikit-learn's ``train_test_split``
    rounding). With ``labels`` the split is stratified: class :math:`c` with :math:`n_c` of those
    rows gives :math:`\lfloor m n_c / n_+ \rfloor` rows, the remaining ones going to the classes
    of largest remainder (Hamilton's apportionment). Within a class (or overall) the rows drawn
    are those of the smallest uniforms ``jax.random.uniform(fold_in(key, SPLIT_STREAM), (n,))``.

    Raises:
      ValueError: (naming ``validation_fraction``) when either side would have no row of
        positive weight.
    """
    rows = np.arange(n) if weight is None else np.flatnonzero(np.asarray(weight) > 0)
    n_pos = len(rows)
    m = math.ceil(fraction * n_pos)
    if m < 1 or n_pos - m < 1:
        fail("validation_fraction", f"a fraction leaving a training and a validation row of n_samples={n_pos} "
             "(rows of positive weight)", f"{fraction} ({m} validation rows)")
    u = np.asarray(jax.random.uniform(jax.random.fold_in(key, SPLIT_STREAM), (n,)))[rows]
    if labels is None:
        val = rows[np.argsort(u, kind="stable")[:m]]
    else:
        classes, inverse, counts = np.unique(np.asarray(labels)[rows], return_inverse=True, return_counts=True)
        quota = m * counts / n_pos
        take = np.floor(quota).astype(np.int64)
        rest = m - int(take.sum())
        take[np.argsort(-(quota - take), kind="stable")[:rest]] += 1
        val = np.concatenate([rows[inverse == c][np.argsort(u[inverse == c], kind="stable")[:take[c]]]
                              for c in range(len(classes))])
    mask = np.zeros(n, bool)
    mask[val] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def check_eval_set(eval_set, n_features: int) -> tuple[np.ndarray, object]:
    """``(X_val, y_val)`` with ``X_val`` float32 ``(m, d)``; ``y_val`` checked by the caller."""
    if not (isinstance(eval_set, tuple | list) and len(eval_set) == 2):
        fail("eval_set", "None or a pair (X_val, y_val)", f"{type(eval_set).__name__}"
             + (f" of length {len(eval_set)}" if isinstance(eval_set, tuple | list) else ""))
    X_val, y_val = eval_set
    shape = np.shape(X_val)
    if len(shape) != 2 or shape[1] != n_features or shape[0] < 1:
        fail("eval_set", f"(X_val, y_val) with X_val of shape (m, {n_features}), m >= 1 (X's width)",
             f"X_val of shape {shape}")
    return _checks.check_X(X_val, "eval_set[0]", n_features=n_features), y_val


def check_eval_labels(y_val, m: int, n_classes: int) -> np.ndarray:
    """Validation class indices ``(m,)`` in ``[0, n_classes)`` (one class present is enough)."""
    y = np.asarray(y_val)
    if y.shape != (m,):
        fail("eval_set", f"(X_val, y_val) with y_val of shape ({m},)", f"y_val of shape {y.shape}")
    ok = y.dtype == bool or np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and bool(np.all(np.isfinite(y))) and bool(np.all(y == np.round(y))))
    if not ok or (y.size and (y.min() < 0 or y.max() >= n_classes)):
        fail("eval_set", f"(X_val, y_val) with y_val class indices in [0, {n_classes - 1}]",
             f"y_val of dtype {y.dtype}" + (f", values in [{y.min()}, {y.max()}]" if ok and y.size else ""))
    return y.astype(np.int32)


def stop_now(curve: jax.Array, t: jax.Array, patience: jax.Array, tol: jax.Array) -> jax.Array:
    r"""Whether to stop after round ``t``: :math:`t \ge p` and
    :math:`\min_{t-p < s \le t} L_s \ge L_{t-p} - \tau` (module docstring); traceable.

    Args:
      curve: ``(T + 1,)`` float32 losses, entries ``0..t`` filled.
      t: int32 scalar, the rounds done.
      patience: int32 scalar :math:`p \ge 1`.
      tol: float32 scalar :math:`\tau \ge 0`.

    Returns:
      A bool scalar.
    """
    idx = jnp.arange(curve.shape[0], dtype=t.dtype)
    reference = curve[jnp.maximum(t - patience, 0)]
    window = (idx > t - patience) & (idx <= t)
    improved = jnp.any(window & (curve < reference - tol))
    return (t >= patience) & ~improved
