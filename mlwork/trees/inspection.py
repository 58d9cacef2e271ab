r"""Permutation importance of any fitted tree model, every feature and repeat in one compiled program.

Impurity-based importances (:func:`~mlwork.trees.feature_importances`, the mean decrease of
impurity) are computed on the training data and favour features with many distinct values;
scikit-learn's documentation warns about it. Permutation importance (Breiman 2001, section 10;
Fisher, Rudin & Dominici 2019) measures instead how much a score drops when one feature's column
is shuffled, which breaks its link with the target, on any data (a held-out set is best).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._static import this_call
from mlwork._validate import fail
from mlwork.trees import _checks
from mlwork.trees.boosting import AdaBoost, GradientBoosting
from mlwork.trees.ensemble import Forest
from mlwork.trees.models import predict, predict_proba
from mlwork.trees.tree import Tree

Array = jax.Array


class PermutationImportance(NamedTuple):
    """What :func:`permutation_importance` returns (the fields of scikit-learn's ``Bunch``).

    Attributes:
      importances_mean: ``(d,)`` float32 mean score drop over the repeats.
      importances_std: ``(d,)`` float32 standard deviation over the repeats (``ddof=0``).
      importances: ``(d, n_repeats)`` float32 score drops, one per feature and repeat.
    """

    importances_mean: Array
    importances_std: Array
    importances: Array


def _accuracy(model, X, y):
    return jnp.mean((predict(model, X) == y).astype(jnp.float32))


def _r2(model, X, y):
    p = predict(model, X)
    return 1.0 - jnp.sum(jnp.square(y - p)) / jnp.maximum(jnp.sum(jnp.square(y - jnp.mean(y))), 1e-30)


def _neg_mse(model, X, y):
    return -jnp.mean(jnp.square(y - predict(model, X)))


def _neg_log_loss(model, X, y):
    p = jnp.take_along_axis(predict_proba(model, X), y[:, None], axis=1)[:, 0]
    eps = jnp.finfo(jnp.float32).eps
    return jnp.mean(jnp.log(jnp.clip(p, eps, 1.0)))


#: Scores by name, each ``score(model, X, y) -> scalar`` (higher is better), as scikit-learn's
#: scorers of the same names.
SCORERS: dict[str, Callable] = {"accuracy": _accuracy, "r2": _r2, "neg_mean_squared_error": _neg_mse,
                                "neg_log_loss": _neg_log_loss}


def _is_classifier(model) -> bool:
    if isinstance(model, Tree | Forest):
        return model.kind == "classification"
    if isinstance(model, AdaBoost):
        return True
    return model.loss in ("logistic", "softmax")


def permutation_importance(model, X, y, *, n_repeats: int = 5, key: Array | None = None,
                           scoring: str | Callable | None = None,
                           batch_size: int | None = None) -> PermutationImportance:
    r"""Permutation importance: the drop of a score when one feature's column is shuffled.

    With :math:`s` the score of ``model`` on ``(X, y)`` and :math:`s_{j,r}` its score after
    repeat :math:`r` permuted the rows of column :math:`j` only,

    .. math:: I_{j,r} = s - s_{j,r}, \qquad \bar I_j = \frac1R \sum_r I_{j,r}, \qquad
              \sigma_j = \sqrt{\frac1R \sum_r (I_{j,r} - \bar I_j)^2}

    (scikit-learn's ``sklearn.inspection.permutation_importance``). Repeat :math:`r` uses the
    permutation ``jax.random.permutation(jax.random.split(key, n_repeats)[r], n)`` of the rows,
    the same for every feature (as scikit-learn shuffles with one seed per repeat). All
    :math:`d \times R` permuted scores are one compiled program: a ``jax.vmap`` over features and
    repeats (or ``jax.lax.map`` over chunks of ``batch_size`` of them) of "permute a column,
    predict, score". It holds ``batch_size`` (default :math:`dR`) permuted copies of ``X`` at
    once: lower ``batch_size`` for large data.

    Args:
      model: a fitted :class:`~mlwork.trees.Tree`, :class:`~mlwork.trees.Forest`,
        :class:`~mlwork.trees.AdaBoost` or :class:`~mlwork.trees.GradientBoosting`.
      X: ``(n, d)`` features (float32 after conversion), NaN for missing values; best held out.
      y: ``(n,)`` targets: class indices ``0..K−1`` for classifiers (the model's encoding), reals
        for regressors.
      n_repeats: :math:`R \ge 1` permutations per feature.
      key: PRNG key of the permutations (default ``jax.random.key(0)``).
      scoring: ``None`` (``"accuracy"`` for classifiers, ``"r2"`` for regressors, scikit-learn's
        defaults), a name of ``mlwork.trees.inspection.SCORERS`` (``"accuracy"``, ``"r2"``,
        ``"neg_mean_squared_error"``, ``"neg_log_loss"``), or a traceable callable
        ``scoring(model, X, y) -> scalar``, higher meaning better.
      batch_size: permuted copies evaluated together (``None``: all :math:`dR` in one ``vmap``).

    Returns:
      A :class:`PermutationImportance`: ``importances_mean`` ``(d,)``, ``importances_std``
      ``(d,)`` and ``importances`` ``(d, n_repeats)``, float32.

    Raises:
      ValueError: another type of ``model``; ``X`` not ``(n, d)`` with the model's ``d`` or with
        ±inf; ``y`` not one value per row (class indices out of range for a classifier);
        ``n_repeats`` or ``batch_size`` not a positive integer; an unknown ``scoring``.

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X = np.c_[np.arange(8.0), np.zeros(8)]  # feature 1 carries nothing
      >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
      >>> tree = trees.fit_tree(X, y, max_depth=1)
      >>> result = trees.permutation_importance(tree, X, y, n_repeats=3)
      >>> result.importances.shape, float(result.importances_mean[1])
      ((2, 3), 0.0)
      >>> bool(result.importances_mean[0] > 0.25)  # shuffling x0 costs accuracy
      True

    Reference: Breiman, "Random Forests", Machine Learning 45 (2001), section 10; Fisher, Rudin &
    Dominici, "All models are wrong, but many are useful", JMLR 20 (2019); scikit-learn's
    ``permutation_importance``.
    """
    if not isinstance(model, Tree | Forest | AdaBoost | GradientBoosting):
        fail("model", "a Tree, Forest, AdaBoost or GradientBoosting", type(model).__name__)
    trees = model if isinstance(model, Tree) else model.trees
    X = _checks.check_X(X, n_features=trees.n_features)
    n, d = X.shape
    classifier = _is_classifier(model)
    if classifier:
        k = trees.value.shape[-1] if not isinstance(model, GradientBoosting) else max(2, model.init.shape[0])
        y = jnp.asarray(_class_indices(y, n, k))
    else:
        y = jnp.asarray(_checks.check_targets(y, n))
    _checks.check_not_key(n_repeats, "n_repeats", "a positive integer")
    n_repeats = _checks.check_int(n_repeats, "n_repeats", 1)
    if scoring is None:
        scoring = "accuracy" if classifier else "r2"
    if isinstance(scoring, str) and scoring in SCORERS:
        score = SCORERS[scoring]
    elif callable(scoring) and not isinstance(scoring, str):
        score = this_call(scoring)  # traced as it is now on every call
    else:
        fail("scoring", f"None, one of {', '.join(map(repr, SCORERS))} or a callable", repr(scoring))
    total = d * n_repeats
    batch_size = total if batch_size is None else min(_checks.check_int(batch_size, "batch_size", 1), total)
    key = jax.random.key(0) if key is None else key
    baseline, permuted = _scores(score, batch_size, model, jnp.asarray(X), y, key, n_repeats)
    importances = baseline - permuted  # (d, R)
    return PermutationImportance(importances_mean=jnp.mean(importances, axis=1),
                                 importances_std=jnp.std(importances, axis=1), importances=importances)


def _class_indices(y, n: int, k: int) -> np.ndarray:
    """``(n,)`` int32 class indices in ``[0, k)`` (whole-number floats accepted; one class present
    is fine: a held-out set may hold one)."""
    y = _checks.check_y_shape(y, n)
    if not _checks.is_label_dtype(y):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
            fail("y", f"class indices 0..{k - 1} for a classifier", f"dtype {y.dtype} with non-integer values")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= k):
        fail("y", f"class indices in [0, {k - 1}] for a {k}-class model", f"values in [{y.min()}, {y.max()}]")
    return y.astype(np.int32)


@functools.partial(jax.jit, static_argnums=(0, 1, 6))
def _scores(score, batch_size: int, model, X, y, key, n_repeats: int) -> tuple[Array, Array]:
    """The baseline score and the ``(d, R)`` scores with one column permuted, one program."""
    n, d = X.shape
    perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, n_repeats))  # (R, n)
    features = jnp.repeat(jnp.arange(d), n_repeats)  # (d·R,) feature-major
    rows = jnp.tile(perms, (d, 1))  # (d·R, n)

    def one(args):
        j, perm = args
        column = jnp.take(X[:, j], perm)
        return score(model, X.at[:, j].set(column), y)

    if batch_size >= d * n_repeats:
        flat = jax.vmap(lambda j, perm: one((j, perm)))(features, rows)
    else:
        flat = jax.lax.map(one, (features, rows), batch_size=batch_size)
    return score(model, X, y), flat.reshape(d, n_repeats)
