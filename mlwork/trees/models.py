"""One ``predict`` / ``predict_proba`` / ``feature_importances`` for every fitted tree model."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from mlwork.trees.boosting import (
    AdaBoost,
    GradientBoosting,
    adaboost_predict,
    adaboost_predict_proba,
    boosting_predict,
    boosting_predict_proba,
)
from mlwork.trees.ensemble import Forest, forest_predict, forest_predict_proba
from mlwork.trees.tree import Tree, check_X_any, tree_importances, tree_predict, tree_predict_proba, tree_value

Array = jax.Array
Model = Tree | Forest | AdaBoost | GradientBoosting


def _dispatch(model, table: dict, what: str):
    for cls, fn in table.items():
        if isinstance(model, cls):
            return fn
    raise ValueError(f"{what} expects a Tree, Forest, AdaBoost or GradientBoosting, got {type(model).__name__}")


def predict(model: Model, X) -> Array:
    r"""Predictions of any fitted tree model.

    * :class:`Tree`: the majority class of the leaf a row reaches (its largest class
      proportion), or the leaf mean;
    * :class:`Forest`: :math:`\arg\max_k \frac1T\sum_t p_t(k \mid x)` (soft vote), or the mean
      of the trees;
    * :class:`AdaBoost`: :math:`\arg\max_k \sum_t \alpha_t [h_t(x) = k]`;
    * :class:`GradientBoosting`: :math:`F(x) = F_0 + \eta\sum_t f_t(x)`, thresholded at 0
      (``"logistic"``) or its argmax (``"softmax"``), else :math:`F(x)` itself.

    Works under ``jit`` (the model is a pytree; the value checks on ``X`` are then skipped).

    Args:
      model: a :class:`Tree`, :class:`Forest`, :class:`AdaBoost` or :class:`GradientBoosting`.
      X: ``(n, d)`` features (float32 after conversion), NaN for missing values.

    Returns:
      ``(n,)`` int32 class indices (classifiers), float32 values (regressors), or ``(n, K)``
      raw scores (a multi-output custom loss).

    Raises:
      ValueError: another type of ``model``; ``X`` not ``(n, d)`` with the training ``d``, or
        with ±inf (when concrete).

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0, 0, 0, 1, 1, 1])
      >>> trees.predict(trees.fit_tree(X, y, max_depth=1), np.array([[1.0], [4.0], [np.nan]])).tolist()
      [0, 1, 0]
    """
    table = {Tree: tree_predict, Forest: forest_predict, AdaBoost: adaboost_predict,
             GradientBoosting: boosting_predict}
    return _dispatch(model, table, "predict")(model, X)


def predict_proba(model: Model, X) -> Array:
    r"""Class probabilities of a fitted classifier.

    * :class:`Tree`: the class proportions (by weight) of the leaf;
    * :class:`Forest`: their mean over the trees, :math:`\frac1T\sum_t p_t(k \mid x)`;
    * :class:`AdaBoost`: SAMME's estimate :math:`\mathrm{softmax}(f(x)/(K-1))` of the coded vote
      :math:`f_k = v_k - (1 - v_k)/(K-1)` (Zhu et al. 2009; scikit-learn's);
    * :class:`GradientBoosting`: :math:`\sigma(F)` (``"logistic"``) or
      :math:`\mathrm{softmax}(F)` (``"softmax"``).

    Args:
      model: a classification :class:`Tree` or :class:`Forest`, an :class:`AdaBoost`, or a
        :class:`GradientBoosting` fit with ``loss="logistic"`` or ``"softmax"``.
      X: ``(n, d)`` features, NaN for missing values.

    Returns:
      ``(n, K)`` float32 probabilities, each row summing to 1.

    Raises:
      ValueError: a regression model (or custom-loss boosting), another type of ``model``, or
        bad ``X`` as for :func:`predict`.

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
      >>> gb = trees.fit_gradient_boosting(X, y, loss="logistic", n_estimators=3, max_depth=1)
      >>> p = np.asarray(trees.predict_proba(gb, X[[0, 5]]), float)
      >>> p.round(3).tolist(), p.sum(axis=1).round(6).tolist()  # [1 - sigma(F), sigma(F)]
      ([[0.634, 0.366], [0.366, 0.634]], [1.0, 1.0])
    """
    table = {Tree: tree_predict_proba, Forest: forest_predict_proba, AdaBoost: adaboost_predict_proba,
             GradientBoosting: boosting_predict_proba}
    return _dispatch(model, table, "predict_proba")(model, X)


def feature_importances(model: Model) -> Array:
    r"""Impurity-decrease importances ``(d,)``, normalised to sum to 1 (0 if nothing split).

    For a tree, :math:`I_j = \sum_{t: f_t = j} \Delta_t / W_{root}` with :math:`\Delta_t` the
    weighted impurity decrease of node :math:`t` (scikit-learn's definition; for Newton trees
    the XGBoost gain). Forests average their trees' normalised importances, AdaBoost weights
    them by :math:`\alpha_t`, gradient boosting sums the unnormalised ones over all trees.

    Args:
      model: a :class:`Tree`, :class:`Forest`, :class:`AdaBoost` or :class:`GradientBoosting`.

    Returns:
      ``(d,)`` float32 importances, non-negative, summing to 1 (all 0 when no tree split).

    Raises:
      ValueError: another type of ``model``.

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X = np.c_[np.arange(6.0), np.ones(6)]  # feature 1 is constant
      >>> tree = trees.fit_tree(X, np.array([0, 0, 0, 1, 1, 1]), max_depth=1)
      >>> trees.feature_importances(tree).tolist()
      [1.0, 0.0]

    Reference: Breiman, Friedman, Olshen & Stone, *Classification and Regression Trees* (1984);
    Louppe et al., "Understanding variable importances in forests of randomized trees",
    NeurIPS 2013 (mean decrease of impurity).
    """
    if isinstance(model, Tree):
        trees, weights, normalise_each = model, None, True
    elif isinstance(model, Forest):
        trees, weights, normalise_each = model.trees, None, True
    elif isinstance(model, AdaBoost):
        trees, weights, normalise_each = model.trees, model.alpha, True
    elif isinstance(model, GradientBoosting):
        trees, weights, normalise_each = model.trees, None, False
    else:
        _dispatch(model, {}, "feature_importances")
    return _importances(trees, weights, normalise_each)


@functools.partial(jax.jit, static_argnums=2)
def _importances(trees: Tree, weights: Array | None, normalise_each: bool) -> Array:
    d = trees.n_features
    flat = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[trees.feature.ndim - 1:]), trees)
    if flat.feature.ndim == 1:
        flat = jax.tree.map(lambda a: a[None], flat)
    imp = jax.vmap(lambda t: tree_importances(t, d))(flat)  # (T, d)
    if normalise_each:
        total = jnp.sum(imp, axis=1, keepdims=True)
        imp = jnp.where(total > 0, imp / jnp.where(total > 0, total, 1.0), 0.0)
    w = jnp.ones(imp.shape[0]) if weights is None else weights
    out = jnp.sum(w[:, None] * imp, axis=0)
    total = jnp.sum(out)
    return jnp.where(total > 0, out / jnp.where(total > 0, total, 1.0), 0.0)


@jax.jit
def _per_tree_values(trees: Tree, X: Array) -> Array:
    """Leaf values of every tree in a stack, ``(T, ..., n, K)``."""
    fn = tree_value
    for _ in range(trees.feature.ndim - 1):
        fn = jax.vmap(fn, in_axes=(0, None))
    return fn(trees, X)


def staged_predict(model: Forest | AdaBoost | GradientBoosting, X) -> Array:
    r"""Predictions of the first :math:`t = 1..T` trees or rounds, in one pass: the curve "test
    score against the number of estimators".

    Row :math:`t` is what :func:`predict` gives for the ensemble cut to its first :math:`t`
    members: the mean of :math:`t` trees (:class:`Forest`), the vote of :math:`t` rounds
    (:class:`AdaBoost`), :math:`F_t(x) = F_0 + \eta\sum_{s \le t} f_s(x)`
    (:class:`GradientBoosting`).

    Args:
      model: a :class:`Forest`, :class:`AdaBoost` or :class:`GradientBoosting`.
      X: ``(n, d)`` features, NaN for missing values.

    Returns:
      ``(T, n)`` class indices (int32) or values (float32), ``(T, n, K)`` raw scores for a
      multi-output custom loss.

    Raises:
      ValueError: a single :class:`Tree` or another type; bad ``X`` as for :func:`predict`.

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
      >>> gb = trees.fit_gradient_boosting(X, y, n_estimators=3, max_depth=1)
      >>> np.asarray(trees.staged_predict(gb, X[[0]]), float).round(4).ravel().tolist()  # 0.5 - 0.5(1 - 0.9^t)
      [0.45, 0.405, 0.3645]
    """
    if isinstance(model, Tree) or not isinstance(model, Forest | AdaBoost | GradientBoosting):
        raise ValueError(f"staged_predict needs an ensemble, got {type(model).__name__}")
    return _staged(model, check_X_any(X, model.trees.n_features))


@jax.jit
def _staged(model: Forest | AdaBoost | GradientBoosting, X: Array) -> Array:
    values = _per_tree_values(model.trees, X)
    if isinstance(model, Forest):
        sizes = jnp.arange(1, values.shape[0] + 1, dtype=values.dtype)
        mean = jnp.cumsum(values, axis=0) / sizes[:, None, None]
        return jnp.argmax(mean, -1).astype(jnp.int32) if model.kind == "classification" else mean[..., 0]
    if isinstance(model, AdaBoost):
        votes = jax.nn.one_hot(jnp.argmax(values, -1), model.n_classes) * model.alpha[:, None, None]
        return jnp.argmax(jnp.cumsum(votes, axis=0), -1).astype(jnp.int32)
    steps = jnp.cumsum(jnp.moveaxis(values[..., 0], 1, -1), axis=0)  # (T, n, K)
    scores = model.init[None, None, :] + model.learning_rate * steps
    if model.loss == "logistic":
        return (scores[..., 0] > 0).astype(jnp.int32)
    if model.loss == "softmax":
        return jnp.argmax(scores, -1).astype(jnp.int32)
    return scores[..., 0] if scores.shape[-1] == 1 else scores
