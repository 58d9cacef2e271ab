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
    """Class indices (classifiers), values (regressors) or raw scores (custom-loss boosting).

    ``X`` is ``(n, d)`` with NaN for missing values. Works under ``jit`` (the model is a pytree;
    value checks on ``X`` then are skipped).
    """
    table = {Tree: tree_predict, Forest: forest_predict, AdaBoost: adaboost_predict,
             GradientBoosting: boosting_predict}
    return _dispatch(model, table, "predict")(model, X)


def predict_proba(model: Model, X) -> Array:
    """Class probabilities ``(n, K)`` of a classifier; ``ValueError`` for a regressor."""
    table = {Tree: tree_predict_proba, Forest: forest_predict_proba, AdaBoost: adaboost_predict_proba,
             GradientBoosting: boosting_predict_proba}
    return _dispatch(model, table, "predict_proba")(model, X)


def feature_importances(model: Model) -> Array:
    r"""Impurity-decrease importances ``(d,)``, normalised to sum to 1 (0 if nothing split).

    For a tree, :math:`I_j = \sum_{t: f_t = j} \Delta_t / W_{root}` with :math:`\Delta_t` the
    weighted impurity decrease of node :math:`t` (scikit-learn's definition; for Newton trees
    the XGBoost gain). Forests average their trees' normalised importances, AdaBoost weights
    them by :math:`\alpha_t`, gradient boosting sums the unnormalised ones over all trees.
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
    """Predictions of the first ``t = 1..T`` trees/rounds, ``(T, n)`` (or ``(T, n, K)`` raw scores
    for a multi-output custom loss): the curve "test accuracy vs number of estimators" in one pass.
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
