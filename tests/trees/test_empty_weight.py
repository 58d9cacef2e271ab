"""Zero total weight in a node, tree or round (issue 17 §2): a defined value, never 0/0.

Bootstrap samples, subsamples and AdaBoost reweighting can leave a tree or a round with no
weight at all; that tree takes the ensemble's weighted prior (forests), the round adds nothing
(gradient boosting), and an ensemble without any vote falls back to the class prior (AdaBoost).
"""

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlwork import trees
from mlwork.trees.ensemble import _tree_keys

N = 12
SETTINGS = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def data(missing_column: bool):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 3)).astype(np.float32)
    if missing_column:
        X[:, 1] = np.nan  # an all-NaN column: never a usable split
    y_class = np.arange(N) % 3
    y_reg = (10.0 + rng.uniform(size=N)).astype(np.float32)  # far from 0: a silent 0 shows
    return X, y_class, y_reg


# Mostly zeros, at least one positive weight (the problem itself is not empty).
weights = st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.5]), min_size=N, max_size=N).filter(
    lambda w: sum(w) > 0)
# One to three positive rows: a bootstrap of 12 draws misses them all in 6-35% of trees.
sparse_weights = st.dictionaries(st.integers(0, N - 1), st.sampled_from([1.0, 2.0, 0.5]), min_size=1,
                                 max_size=3).map(lambda d: [d.get(i, 0.0) for i in range(N)])


def check_proba(p, k):
    p = np.asarray(p)
    assert p.shape[1] == k and np.all(np.isfinite(p)) and np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def check_regression_values(values, y, w):
    """Every leaf value (weighted means of positive-weight targets) lies in their range."""
    v = np.asarray(values)
    lo, hi = y[w > 0].min(), y[w > 0].max()
    assert np.all(np.isfinite(v))
    assert np.all((v >= lo - 1e-4) & (v <= hi + 1e-4)), (v.min(), v.max(), lo, hi)


def test_golden_forest_of_issue_17():
    """The issue's example: 10 trees on 2 weighted rows; some bootstraps draw neither."""
    X, y, w = [[0.0], [1.0], [2.0], [3.0]], [0, 1, 0, 1], np.array([1.0, 1.0, 0.0, 0.0])
    key = jax.random.key(0)
    rf = trees.fit_random_forest(X, y, 10, key=key, max_depth=1, sample_weight=w)
    proba = np.asarray(trees.predict_proba(rf, X))
    # Oracle from the bootstrap counts: a tree with both weighted rows splits them at 0.5
    # (x=0 → class 0, x ≥ 1 → class 1), one with a single weighted row predicts its class
    # everywhere, one with neither predicts the weighted prior (½, ½).
    expected = np.zeros((4, 2))
    boot_keys, _ = _tree_keys(key, 10)
    n_empty = 0
    for kb in boot_keys:
        c = np.asarray(trees.bootstrap_counts(kb, 4)) * w
        if c[0] > 0 and c[1] > 0:
            expected += [[1, 0], [0, 1], [0, 1], [0, 1]]
        elif c[0] > 0:
            expected += [1, 0]
        elif c[1] > 0:
            expected += [0, 1]
        else:
            expected += [0.5, 0.5]
            n_empty += 1
    assert n_empty >= 1  # the example does exercise an empty tree
    np.testing.assert_allclose(proba, expected / 10, atol=1e-6)
    check_proba(proba, 2)
    assert np.isfinite(float(rf.oob_score))


def test_golden_regression_forest_empty_tree_is_the_weighted_mean():
    X, y, w = [[0.0], [1.0], [2.0], [3.0]], [5.0, 7.0, 100.0, 100.0], [1.0, 3.0, 0.0, 0.0]
    rf = trees.fit_random_forest(X, y, 10, key=jax.random.key(0), task="regression", max_depth=1,
                                 sample_weight=w)
    values = np.asarray(rf.trees.value)[..., 0]  # (T, leaves)
    empty = np.asarray(rf.trees.weight)[:, 0] == 0
    assert empty.any()
    np.testing.assert_allclose(values[empty], 6.5, rtol=1e-6)  # (5·1 + 7·3) / 4
    check_regression_values(values, np.array(y), np.array(w))


@pytest.mark.parametrize("bad", [[0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 1.0, 1.0], [1.0, np.nan, 1.0, 1.0]])
@pytest.mark.parametrize("fit", [
    lambda X, y, w: trees.fit_tree(X, y, max_depth=2, sample_weight=w),
    lambda X, y, w: trees.fit_random_forest(X, y, 3, key=jax.random.key(0), max_depth=2, sample_weight=w),
    lambda X, y, w: trees.fit_bagging(X, y, 3, key=jax.random.key(0), max_depth=2, sample_weight=w),
    lambda X, y, w: trees.fit_adaboost(X, y, 3, sample_weight=w),
    lambda X, y, w: trees.fit_gradient_boosting(X, y, loss="logistic", n_estimators=3, sample_weight=w),
    lambda X, y, w: trees.fit_gradient_boosting(X, y, loss="logistic", second_order=True, n_estimators=3,
                                                sample_weight=w),
])
def test_empty_problem_is_a_value_error_naming_sample_weight(fit, bad):
    X, y = np.arange(4, dtype=np.float32)[:, None], np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="sample_weight"):
        fit(X, y, np.array(bad))


@pytest.mark.slow
@SETTINGS
@given(w=weights, missing=st.booleans())
def test_tree_with_many_zero_weights(w, missing):
    X, yc, yr = data(missing)
    w = np.array(w, np.float32)
    tree = trees.fit_tree(X, yc, max_depth=3, sample_weight=w, n_classes=3)
    check_proba(trees.predict_proba(tree, X), 3)
    check_proba(np.asarray(tree.value), 3)
    reg = trees.fit_tree(X, yr, task="regression", max_depth=3, sample_weight=w)
    check_regression_values(reg.value, yr, w)


@pytest.mark.slow
@SETTINGS
@given(w=sparse_weights, missing=st.booleans(), bagging=st.booleans(), seed=st.integers(0, 2**16))
def test_forest_with_many_zero_weights(w, missing, bagging, seed):
    X, yc, yr = data(missing)
    w = np.array(w, np.float32)
    fit = trees.fit_bagging if bagging else trees.fit_random_forest
    key = jax.random.key(seed)
    rf = fit(X, yc, 16, key=key, max_depth=2, sample_weight=w, n_classes=3)
    check_proba(trees.predict_proba(rf, X), 3)
    check_proba(np.asarray(rf.trees.value).reshape(-1, 3), 3)
    # An empty tree holds the weighted class prior in every leaf.
    prior = np.bincount(yc, weights=w, minlength=3) / w.sum()
    empty = np.asarray(rf.trees.weight)[:, 0] == 0
    np.testing.assert_allclose(np.asarray(rf.trees.value)[empty], np.broadcast_to(
        prior, np.asarray(rf.trees.value)[empty].shape), atol=1e-6)
    reg = fit(X, yr, 16, key=key, task="regression", max_depth=2, sample_weight=w)
    check_regression_values(reg.trees.value, yr, w)
    assert np.all(np.isfinite(np.asarray(trees.predict(reg, X))))


@pytest.mark.slow
@SETTINGS
@given(w=weights, missing=st.booleans(), lr=st.sampled_from([1.0, 10.0]))
def test_adaboost_with_many_zero_weights(w, missing, lr):
    X, yc, _ = data(missing)
    w = np.array(w, np.float32)
    ada = trees.fit_adaboost(X, yc, 8, max_depth=1, learning_rate=lr, sample_weight=w, n_classes=3)
    assert np.all(np.isfinite(np.asarray(ada.alpha)))
    check_proba(trees.predict_proba(ada, X), 3)
    pred = np.asarray(trees.predict(ada, X))
    assert np.all((pred >= 0) & (pred < 3))


def test_adaboost_without_any_vote_predicts_the_weighted_prior():
    """A first stump no better than chance (ε = 1 − 1/K, which needs a weighted tie between the
    classes) stops boosting with every α = 0: the weighted prior decides, not 0/0."""
    X = np.zeros((6, 1), np.float32)  # nothing to split on: the stump is a single leaf
    y = np.array([0, 1, 1, 0, 1, 1])
    ada = trees.fit_adaboost(X, y, 3, sample_weight=[3.0, 1.0, 1.0, 3.0, 2.0, 2.0])
    assert float(np.sum(ada.alpha)) == 0.0
    proba = np.asarray(trees.predict_proba(ada, X))
    check_proba(proba, 2)
    np.testing.assert_allclose(proba, 0.5, atol=1e-6)


@pytest.mark.slow
@SETTINGS
@given(w=weights, missing=st.booleans(), second_order=st.booleans(), subsample=st.sampled_from([1.0, 0.3]),
       reg_lambda=st.sampled_from([0.0, 1.0]))
def test_gradient_boosting_with_many_zero_weights(w, missing, second_order, subsample, reg_lambda):
    X, yc, yr = data(missing)
    w = np.array(w, np.float32)
    kw = dict(n_estimators=6, max_depth=2, sample_weight=w, second_order=second_order, subsample=subsample,
              key=jax.random.key(1), reg_lambda=reg_lambda, min_child_weight=0.0)
    clf = trees.fit_gradient_boosting(X, yc, loss="softmax", n_classes=3, **kw)
    check_proba(trees.predict_proba(clf, X), 3)
    reg = trees.fit_gradient_boosting(X, yr, loss="squared", **kw)
    F = np.asarray(trees.predict(reg, X))
    assert np.all(np.isfinite(F))
    # A round (or output) whose subsample has zero weight adds nothing: all its leaves are 0.
    for model in (reg,):
        values = np.asarray(model.trees.value)[..., 0]
        empty = np.asarray(model.trees.weight)[..., 0] == 0
        assert np.all(values[empty] == 0)
        assert np.all(np.isfinite(values))
