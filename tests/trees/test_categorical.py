"""Categorical features (issue 29): set splits found by sorting categories, routed by bitset.

Oracles: a brute force over every subset of categories (the prefix scan must find the best
one for variance and binary Gini), hand-built trees for the routing, scikit-learn's
``HistGradientBoostingClassifier(categorical_features=...)`` for accuracy.
"""

import itertools
import json

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingClassifier

from mlwork import trees
from mlwork.trees import sklearn as sk
from mlwork.trees.tree import Tree, in_category_set


def bits(*codes, words=8):
    out = np.zeros(words, np.uint32)
    for c in codes:
        out[c // 32] |= np.uint32(1) << np.uint32(c % 32)
    return out


# ----------------------------------------------------------------------------- routing
def test_routing_by_hand_on_a_tiny_tree():
    """Root: x0 in {1, 3, 40} goes left (NaN right); its left child: x1 <= 0.5 (numeric); its
    right child: x1 in {2} (NaN left). Leaves 0..3 in heap order."""
    cats = np.zeros((3, 8), np.uint32)
    cats[0], cats[2] = bits(1, 3, 40), bits(2)
    tree = Tree(feature=jnp.array([0, 1, 1]), threshold=jnp.array([np.nan, 0.5, np.nan], jnp.float32),
                missing_left=jnp.array([False, True, True]), gain=jnp.zeros(3), impurity=jnp.zeros(3),
                weight=jnp.ones(3), value=jnp.arange(4.0)[:, None], leaf_weight=jnp.ones(4),
                categories=jnp.asarray(cats), kind="regression", criterion="variance", n_features=2)
    X = np.array([[1, 0.0], [3, 1.0], [40, np.nan], [0, 2], [0, 7], [np.nan, 2], [np.nan, np.nan],
                  [1.5, 7], [-1, 7], [300, 7], [41, 0]], np.float32)
    # Non-codes (1.5, -1, 300) and codes outside the set (0, 41) go right; NaN as missing_left says.
    expect = [0, 1, 0, 2, 3, 2, 2, 3, 3, 3, 3]
    assert np.asarray(trees.tree_leaf(tree, jnp.asarray(X))).tolist() == expect
    assert np.asarray(trees.predict(tree, X)).tolist() == [float(e) for e in expect]
    text = trees.export_text(tree, feature_names=["a", "b"])
    assert "a in {1, 3, 40}  [" in text and "a not in that set or NaN" in text and "b <= 0.500 or NaN" in text


@given(codes=st.lists(st.integers(0, 255), max_size=20), x=st.lists(st.one_of(
    st.integers(-3, 260).map(float), st.floats(-3, 260, width=32), st.just(np.nan)), min_size=1, max_size=30))
def test_in_category_set_is_membership(codes, x):
    x = np.asarray(x, np.float32)
    got = np.asarray(in_category_set(jnp.broadcast_to(jnp.asarray(bits(*codes)), (x.size, 8)), jnp.asarray(x)))
    want = [bool(v == int(v) and int(v) in set(codes)) if np.isfinite(v) else False for v in x]
    assert got.tolist() == want


# ----------------------------------------------------------------------------- exactness
def best_subset_gain(codes, y, impurity):
    """Largest W_t i(t) - W_L i(L) - W_R i(R) over every split of the present categories."""
    present = np.unique(codes)
    total = len(y) * impurity(y)
    best = -np.inf
    for r in range(1, len(present)):
        for left in itertools.combinations(present, r):
            m = np.isin(codes, left)
            best = max(best, total - m.sum() * impurity(y[m]) - (~m).sum() * impurity(y[~m]))
    return best


def gini(y):
    p = np.mean(y)
    return 2 * p * (1 - p)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**16), k=st.integers(2, 7))
def test_the_prefix_scan_finds_the_best_subset(seed, k):
    """Regression (variance) and binary Gini: the sorted-prefix split is the best of all
    2^(K-1) - 1 subsets (Fisher 1958; Breiman et al. 1984, 9.4)."""
    rng = np.random.default_rng(seed)
    n = 40
    codes = rng.integers(0, k, n)
    effect = rng.normal(size=k)
    y = (effect[codes] + 0.5 * rng.normal(size=n)).astype(np.float32)
    X = codes[:, None].astype(np.float32)
    if np.unique(codes).size < 2:
        return
    reg = trees.fit_tree(X, y, max_depth=1, categorical_features=[0])
    want = best_subset_gain(codes, y.astype(np.float64), np.var)
    np.testing.assert_allclose(float(reg.gain[0]), want, rtol=2e-4, atol=1e-4)
    labels = (y > np.median(y)).astype(np.int32)
    if np.unique(labels).size == 2:
        cls = trees.fit_tree(X, labels, max_depth=1, categorical_features=[True])
        np.testing.assert_allclose(float(cls.gain[0]), best_subset_gain(codes, labels, gini), rtol=2e-4, atol=1e-5)


# ----------------------------------------------------------------------------- accuracy
def permuted_effect(seed, n, k=50):
    """A feature of ``k`` categories whose effect is a random permutation, plus a numeric one."""
    rng = np.random.default_rng(seed)
    effect = np.random.default_rng(123).permutation(k) / k
    c = rng.integers(0, k, n)
    x1 = rng.normal(size=n)
    logit = 6 * (effect[c] - 0.5) + 0.5 * x1
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int32)
    return np.stack([c, x1], 1).astype(np.float32), y


def one_hot(X, k=50):
    return np.concatenate([np.eye(k, dtype=np.float32)[X[:, 0].astype(int)], X[:, 1:]], axis=1)


def test_native_beats_one_hot_and_ordinal_at_equal_depth():
    X, y = permuted_effect(0, 2000)
    Xte, yte = permuted_effect(1, 2000)

    def acc(Xtr, Xt, **kw):
        model = trees.fit_gradient_boosting(Xtr, y, 20, max_depth=2, learning_rate=0.3, **kw)
        return float(np.mean(np.asarray(trees.predict(model, Xt)) == yte))

    native, ordinal, onehot = acc(X, Xte, categorical_features=[0]), acc(X, Xte), acc(one_hot(X), one_hot(Xte))
    assert native > max(ordinal, onehot) + 0.02, (native, ordinal, onehot)
    stump = trees.fit_tree(X, y, max_depth=1, categorical_features=[0])
    stump_ord = trees.fit_tree(X, y, max_depth=1)
    s_nat = np.mean(np.asarray(trees.predict(stump, Xte)) == yte)
    s_ord = np.mean(np.asarray(trees.predict(stump_ord, Xte)) == yte)
    assert s_nat > s_ord + 0.05, (s_nat, s_ord)


@pytest.mark.slow
def test_accuracy_close_to_sklearn_hist_gradient_boosting():
    X, y = permuted_effect(2, 3000)
    Xte, yte = permuted_effect(3, 3000)
    ours = sk.GradientBoostingClassifier(n_estimators=50, max_depth=3, learning_rate=0.2, second_order=True,
                                         reg_lambda=0.0, categorical_features=[0]).fit(X, y)
    ref = HistGradientBoostingClassifier(max_iter=50, max_depth=3, learning_rate=0.2, early_stopping=False,
                                         categorical_features=[0], random_state=0).fit(X, y)
    a_ours, a_ref = np.mean(ours.predict(Xte) == yte), np.mean(ref.predict(Xte) == yte)
    assert a_ours > 0.75 and abs(a_ours - a_ref) < 0.02, (a_ours, a_ref)


@pytest.mark.slow
def test_forest_and_estimators_take_categorical_features():
    X, y = permuted_effect(4, 600)
    yr = y.astype(np.float32)
    forest = trees.fit_random_forest(X, yr, 4, max_depth=3, max_features=None, categorical_features=[0])
    assert np.isnan(np.asarray(forest.trees.threshold)[:, 0]).all()  # every root splits the categories
    for est in (sk.DecisionTreeRegressor(max_depth=2, categorical_features=[True, False]),
                sk.RandomForestRegressor(n_estimators=2, max_depth=2, random_state=0, categorical_features=[0]),
                sk.GradientBoostingRegressor(n_estimators=2, categorical_features=[0])):
        model = est.fit(X, yr).model_
        assert np.isnan(np.asarray(model.trees.threshold if hasattr(model, "trees") else model.threshold)).any()


# ----------------------------------------------------------------------------- model file
def test_model_file_round_trips_the_category_sets(tmp_path):
    X, y = permuted_effect(5, 500)
    gb = trees.fit_gradient_boosting(X, y, 5, max_depth=2, categorical_features=[0])
    path = trees.save_model(tmp_path / "gb.npz", gb)
    back = trees.load_model(path)
    np.testing.assert_array_equal(np.asarray(back.trees.categories), np.asarray(gb.trees.categories))
    np.testing.assert_array_equal(np.asarray(trees.predict_proba(back, X)), np.asarray(trees.predict_proba(gb, X)))
    with np.load(path) as npz:
        header = json.loads(npz["__header__"].tobytes())
    assert header["version"] == 1 and header["minor_version"] == 1
    assert header["arrays"]["model.trees.categories"]["dtype"] == "<u4"


def edit(path, out, header_edit=None, drop=()):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k not in drop}
    header = json.loads(arrays.pop("__header__").tobytes())
    header_edit(header)
    np.savez(out, __header__=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    return out


def test_version_1_0_files_still_load_and_newer_minor_versions_are_refused(tmp_path):
    X, y = permuted_effect(6, 200)
    plain = trees.save_model(tmp_path / "plain.npz", trees.fit_tree(X, y, max_depth=2))
    v10 = edit(plain, tmp_path / "v10.npz", lambda h: h.pop("minor_version"))  # as 0.2's first writer wrote it
    loaded = trees.load_model(v10)
    assert loaded.categories is None
    np.testing.assert_array_equal(np.asarray(trees.predict(loaded, X)), np.asarray(trees.predict(trees.load_model(
        plain), X)))
    cat = trees.save_model(tmp_path / "cat.npz", trees.fit_tree(X, y, max_depth=2, categorical_features=[0]))
    with pytest.raises(ValueError, match="no arrays newer than its version 1.0"):
        trees.load_model(edit(cat, tmp_path / "bad.npz", lambda h: h.pop("minor_version")))
    with pytest.raises(ValueError, match=r"minor version 2 \(written by a newer mlwork"):
        trees.load_model(edit(cat, tmp_path / "v12.npz", lambda h: h.update(minor_version=2)))


# ----------------------------------------------------------------------------- errors
def test_bad_categorical_input_is_refused():
    X, y = permuted_effect(7, 100)
    yr = y.astype(np.float32)
    bad = X.copy()
    bad[3, 0] = 2.5
    with pytest.raises(ValueError, match=r"X\[:, 0\] is a categorical feature: .* integer codes in \[0, 255\)"):
        trees.fit_tree(bad, yr, categorical_features=[0])
    bad[3, 0] = -1
    with pytest.raises(ValueError, match=r"X\[:, 0\] is a categorical feature"):
        trees.fit_gradient_boosting(bad, yr, 2, categorical_features=[0])
    with pytest.raises(ValueError, match=r"integer codes in \[0, 16\)"):
        trees.fit_random_forest(X, yr, 2, max_bins=16, categorical_features=[0])
    with pytest.raises(ValueError, match="categorical_features must be distinct feature indices in"):
        trees.fit_tree(X, yr, categorical_features=[2])
    with pytest.raises(ValueError, match="categorical_features as a mask must have 2 values"):
        trees.fit_tree(X, yr, categorical_features=[True])
    with pytest.raises(ValueError, match="categorical_features needs two classes or regression"):
        trees.fit_tree(X, np.arange(100) % 3, categorical_features=[0])
    with pytest.raises(ValueError, match="monotonic_cst must be 0 for categorical features"):
        trees.fit_tree(X, yr, categorical_features=[0], monotonic_cst=[1, 0])
