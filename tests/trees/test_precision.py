"""Regression trees keep float32 precision in nodes far from the tree's mean (issue 25, item 6).

A node's statistics are centred on the node's own mean, so a group of targets far from the
tree's mean splits as finely as the same group alone would; scikit-learn's tree (float64) is
the oracle. Trees grown until every leaf is pure must fit the training targets to float32
resolution, whatever the offsets between groups (1e-3 .. 1e6) and the spread within them
(1e-4 .. 1e4).
"""

import jax
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.tree import DecisionTreeRegressor as SkTree

from mlwork import trees
from mlwork.trees import sklearn as mlsk

EPS = float(np.finfo(np.float32).eps)
N = 12
X_LINE = np.arange(N, dtype=np.float32)[:, None]

# The issue's example: eight zeros and eight values 1000, 1000.1, ..., 1000.7.
X16 = np.arange(16, dtype=np.float32)[:, None]
Y16 = np.r_[np.zeros(8), 1000.0 + 0.1 * np.arange(8)].astype(np.float32)


def log_uniform(lo: float, hi: float):
    return st.floats(np.log10(lo), np.log10(hi)).map(lambda e: 10.0**e)


@st.composite
def far_groups(draw):
    """Up to three groups of rows, each at its own offset, with integer steps of ``scale``."""
    offsets = np.array([draw(st.sampled_from([-1.0, 1.0])) * draw(log_uniform(1e-3, 1e6)) for _ in range(3)])
    scale = draw(log_uniform(1e-4, 1e4))
    group = np.array(draw(st.lists(st.integers(0, 2), min_size=N, max_size=N)))
    steps = np.array(draw(st.lists(st.integers(-8, 8), min_size=N, max_size=N)), np.float64)
    return offsets[group] + scale * steps


def training_error_within_float32(pred, y, base: float = 0.0):
    """Per row, our error may exceed scikit-learn's (float64, same depth) by float32 resolution
    of the target (and of ``base``, a constant the prediction adds: boosting's start F0)."""
    sk = SkTree(max_depth=N - 1, random_state=0).fit(X_LINE, y).predict(X_LINE)
    ours = np.abs(np.asarray(pred, np.float64) - y)
    allowed = np.abs(sk - y) + 4 * EPS * (np.abs(y) + abs(base))
    bad = ours > allowed
    assert not bad.any(), (f"rows {np.flatnonzero(bad)}: error {ours[bad]} > {allowed[bad]} "
                           f"(y = {y[bad]}, scikit-learn's error {np.abs(sk - y)[bad]})")


@settings(max_examples=40)
@given(far_groups())
def test_tree_fits_groups_far_from_the_mean_like_sklearn(y):
    """Depth N-1 separates every distinct target of N rows on one feature: scikit-learn fits
    them exactly (float64); ours must, to float32 resolution of each target."""
    tree = trees.fit_tree(X_LINE, y, task="regression", max_depth=N - 1, max_bins=None)
    training_error_within_float32(trees.predict(tree, X_LINE), y)


@settings(max_examples=15)
@given(far_groups())
def test_newton_tree_without_lambda_fits_like_sklearn(y):
    """A second-order round of squared loss with λ = 0 and step 1 is a least-squares tree: the
    Newton criterion keeps its precision the same way (gradient statistics centred per node)."""
    model = trees.fit_gradient_boosting(X_LINE, y, n_estimators=1, learning_rate=1.0, max_depth=N - 1,
                                        second_order=True, reg_lambda=0.0, min_child_weight=0.0,
                                        max_bins=None)
    training_error_within_float32(trees.predict(model, X_LINE), y, float(model.init[0]))


def assert_fits_y16(pred):
    np.testing.assert_allclose(np.asarray(pred), Y16, rtol=0, atol=4 * EPS * 1000.7)


def test_issue_example_sklearn_tree():
    model = mlsk.DecisionTreeRegressor(max_depth=4).fit(X16, Y16)
    assert_fits_y16(model.predict(X16))
    assert np.sum(np.asarray(model.model_.feature) >= 0) == 8  # 1 + 7 splits, like scikit-learn's


def test_issue_example_sklearn_forest():
    model = mlsk.RandomForestRegressor(n_estimators=3, max_depth=4, bootstrap=False, random_state=0)
    assert_fits_y16(model.fit(X16, Y16).predict(X16))


def test_issue_example_functional_api():
    assert_fits_y16(trees.predict(trees.fit_tree(X16, Y16, task="regression", max_depth=4), X16))
    forest = trees.fit_random_forest(X16, Y16, 3, key=jax.random.key(0), task="regression", max_depth=4,
                                     max_features=None, bootstrap=False)
    assert_fits_y16(trees.predict(forest, X16))


def test_issue_example_newton():
    """Second order, one round of step 1, λ = 0: the leaves are the residual means."""
    model = trees.fit_gradient_boosting(X16, Y16, n_estimators=1, learning_rate=1.0, max_depth=4,
                                        second_order=True, reg_lambda=0.0, min_child_weight=0.0)
    assert_fits_y16(trees.predict(model, X16))


def test_issue_example_first_order_boosting():
    model = trees.fit_gradient_boosting(X16, Y16, n_estimators=1, learning_rate=1.0, max_depth=4)
    assert_fits_y16(trees.predict(model, X16))
