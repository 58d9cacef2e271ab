"""Single trees against scikit-learn's exact splitter, hand checks, NaN support and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris, make_classification
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlwork import trees
from mlwork.trees import tree as tree_module

DATA = {
    "iris": load_iris(return_X_y=True),
    "make_classification": make_classification(300, 6, random_state=0),
}


def heap_arrays(sk, depth):
    """scikit-learn's tree in our heap order: split feature, threshold, impurity decrease
    :math:`W_t i(t) - W_L i(L) - W_R i(R)` and NaN side per internal slot (−1 / inf / 0 / True
    where no split)."""
    t = sk.tree_
    size = 2**depth - 1
    feature, thr, gain = np.full(size, -1), np.full(size, np.inf), np.zeros(size)
    nan_left = np.ones(size, bool)
    w = t.weighted_n_node_samples

    def walk(i, h, level):
        if level == depth or t.children_left[i] == -1:
            return
        left, right = t.children_left[i], t.children_right[i]
        feature[h], thr[h], nan_left[h] = t.feature[i], t.threshold[i], t.missing_go_to_left[i]
        gain[h] = w[i] * t.impurity[i] - w[left] * t.impurity[left] - w[right] * t.impurity[right]
        walk(left, 2 * h + 1, level + 1)
        walk(right, 2 * h + 2, level + 1)

    walk(0, 0, 0)
    return feature, thr, gain, nan_left


def assert_same_tree(a, b, X, rtol=1e-6):
    """Trees grown by two different programs (or from equivalent data) are the same tree: they
    cut the rows of ``X`` into the same leaves (one-to-one), their float fields agree to float32
    round-off, and they predict the same. Which feature makes a cut where two features separate
    the rows alike is not compared: their gains tie, and another CPU may round the tie the other
    way."""
    leaves_a, leaves_b = np.asarray(trees.tree_leaf(a, X)), np.asarray(trees.tree_leaf(b, X))
    pairs = set(zip(leaves_a.tolist(), leaves_b.tolist(), strict=True))
    assert len(pairs) == len(set(leaves_a.tolist())) == len(set(leaves_b.tolist()))
    for name in ("gain", "impurity", "weight", "value", "leaf_weight"):
        np.testing.assert_allclose(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)), rtol=rtol,
                                   atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(np.asarray(trees.predict(a, X)), np.asarray(trees.predict(b, X)))


@pytest.fixture(scope="module")
def no_ties():
    """make_classification(random_state=3) has no tied splits at depth 4: same tree as sklearn."""
    X, y = make_classification(300, 6, random_state=3)
    return X, y, trees.fit_tree(X, y, max_depth=4, max_bins=None)


@pytest.mark.parametrize("criterion", ["gini", "entropy"])
@pytest.mark.parametrize("name", ["iris", "make_classification"])
def test_exact_mode_matches_sklearn_node_by_node(name, criterion):
    X, y = DATA[name]
    ours = trees.fit_tree(X, y, max_depth=8, criterion=criterion, max_bins=None)
    sk = DecisionTreeClassifier(criterion=criterion, random_state=0).fit(X, y)
    assert sk.get_depth() <= 8  # fully grown on both sides
    gain = heap_arrays(sk, 8)[2]
    # Every node's impurity decrease equals scikit-learn's, the root's included. This holds
    # even where two features tie for the best split and the trees pick different ones.
    np.testing.assert_allclose(np.asarray(ours.gain), gain, rtol=1e-4, atol=2e-3)
    assert float(ours.gain[0] / ours.weight[0]) == pytest.approx(gain[0] / len(y), rel=1e-5)
    assert np.mean(np.asarray(trees.predict(ours, X)) == y) == sk.score(X, y) == 1.0


def test_depth_limited_tree_is_sklearns_tree(no_ties):
    X, y, ours = no_ties
    sk = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    feature, thr, _, _ = heap_arrays(sk, 4)
    np.testing.assert_array_equal(np.asarray(ours.feature), feature)
    np.testing.assert_allclose(np.asarray(ours.threshold), thr.astype(np.float32), rtol=1e-6)
    X_new = np.random.default_rng(0).normal(size=(2000, 6)) * 2
    np.testing.assert_array_equal(np.asarray(trees.predict(ours, X_new)), sk.predict(X_new))
    np.testing.assert_allclose(np.asarray(trees.predict_proba(ours, X_new)), sk.predict_proba(X_new), atol=1e-6)
    np.testing.assert_allclose(np.asarray(trees.feature_importances(ours)), sk.feature_importances_, atol=1e-5)
    # NaN never seen in training goes to the heavier child, as in scikit-learn.
    X_nan = np.where(np.random.default_rng(1).random(X.shape) < 0.3, np.nan, X)
    np.testing.assert_array_equal(np.asarray(trees.predict(ours, X_nan)), sk.predict(X_nan))


def test_regression_tree_matches_sklearn():
    X, y = load_diabetes(return_X_y=True)
    ours = trees.fit_tree(X, y, task="regression", max_depth=3, max_bins=None)
    sk = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y)
    np.testing.assert_allclose(np.asarray(trees.predict(ours, X)), sk.predict(X), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ours.impurity[0]), sk.tree_.impurity[0], rtol=1e-5)
    with pytest.raises(ValueError, match="classification"):
        trees.predict_proba(ours, X)


def test_min_samples_leaf_and_integer_weights(no_ties):
    X, y, _ = no_ties
    ours = trees.fit_tree(X, y, max_depth=4, max_bins=None, min_samples_leaf=5)
    sk = DecisionTreeClassifier(max_depth=4, min_samples_leaf=5, random_state=0).fit(X, y)
    np.testing.assert_allclose(np.asarray(ours.gain), heap_arrays(sk, 4)[2], rtol=1e-4, atol=1e-3)
    assert np.asarray(ours.leaf_weight)[np.asarray(ours.leaf_weight) > 0].min() >= 5
    # Integer sample weights are the same as repeating rows.
    w = np.random.default_rng(0).integers(0, 3, len(y))
    weighted = trees.fit_tree(X, y, max_depth=4, max_bins=None, sample_weight=w)
    repeated = trees.fit_tree(np.repeat(X, w, axis=0), np.repeat(y, w), max_depth=4, max_bins=None)
    assert_same_tree(weighted, repeated, X[w > 0])


def test_nan_in_training_is_supported_like_sklearn(no_ties):
    X, y, _ = no_ties
    X_nan = np.where(np.random.default_rng(4).random(X.shape) < 0.15, np.nan, X)  # a mask without ties
    ours = trees.fit_tree(X_nan, y, max_depth=4, max_bins=None)
    sk = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X_nan, y)
    feature, _, gain, nan_left = heap_arrays(sk, 4)
    np.testing.assert_allclose(np.asarray(ours.gain), gain, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(ours.feature), feature)
    np.testing.assert_array_equal(np.asarray(ours.missing_left), nan_left)
    np.testing.assert_array_equal(np.asarray(trees.predict(ours, X_nan)), sk.predict(X_nan))


def test_hist_mode_equals_exact_mode_when_bins_suffice_and_text_rendering():
    X, y = DATA["iris"]
    exact = trees.fit_tree(X, y, max_depth=8, max_bins=None)
    hist = trees.fit_tree(X, y, max_depth=8, max_bins=64)  # iris has < 64 distinct values per feature
    assert_same_tree(exact, hist, X)
    text = trees.export_text(exact, feature_names=["sl", "sw", "pl", "pw"])
    assert text.splitlines()[0].startswith("|--- pl <= 2.450") and "class: 0" in text


def test_levels_unrolled_or_scanned_grow_the_same_tree(no_ties, monkeypatch):
    X, y, scanned = no_ties
    monkeypatch.setattr(tree_module, "UNROLL_MIN_VALUES", 0)
    unrolled = trees.fit_tree(X, y, max_depth=4, max_bins=None)
    assert_same_tree(scanned, unrolled, X)
    np.testing.assert_array_equal(np.asarray(scanned.feature), np.asarray(unrolled.feature))  # no ties here


def test_predict_under_jit_and_vmap_and_input_checks(no_ties):
    X, _, t = no_ties
    Xj = jnp.asarray(X, jnp.float32)
    np.testing.assert_array_equal(jax.jit(trees.predict)(t, Xj), trees.predict(t, X))
    stacked = jax.tree.map(lambda a: jnp.stack([a, a]), t)
    leaves = jax.vmap(trees.tree_leaf, in_axes=(0, None))(stacked, Xj)
    np.testing.assert_array_equal(leaves[0], leaves[1])
    with pytest.raises(ValueError, match="features"):
        trees.predict(t, X[:, :3])
    with pytest.raises(ValueError, match="inf"):
        trees.predict(t, np.full_like(X, np.inf))


@pytest.mark.parametrize("kwargs, match", [
    (dict(y=np.zeros(150, int)), "single class"),
    (dict(y=np.zeros(10, int)), r"X and y must be of the same length .*; got X with 150 rows and y with 10"),
    (dict(y=np.zeros((150, 2), int)), r"y must be a 1-D array of 150 targets"),
    (dict(max_depth=0), "max_depth"),
    (dict(max_depth=2.5), "max_depth"),
    (dict(X=np.full((150, 4), np.inf)), "inf"),
    (dict(X=np.zeros(150)), "2-D"),
    (dict(y=np.linspace(0, 1, 150), task="classification"), "integer class"),
    (dict(max_features=0), "max_features"),
    (dict(max_bins=1), "max_bins"),
    (dict(criterion="variance", task="classification"), "criterion"),
    (dict(task="regression", y=np.r_[np.nan, np.ones(149)]), "finite"),
    (dict(sample_weight=-np.ones(150)), "non-negative"),
])
def test_bad_input_raises_value_error(kwargs, match):
    X, y = DATA["iris"]
    args = dict(X=X, y=y, max_depth=3) | kwargs
    with pytest.raises(ValueError, match=match):
        trees.fit_tree(args.pop("X"), args.pop("y"), **args)
