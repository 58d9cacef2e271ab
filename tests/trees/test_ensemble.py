"""Bagging and random forests against scikit-learn; bootstrap, OOB, feature sampling, devices."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlwork import trees


def split(name):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    strat = None if name == "diabetes" else y
    return train_test_split(X.astype(np.float32), y, test_size=0.3, random_state=0, stratify=strat)


def r2(y, p):
    return 1 - np.sum((y - p) ** 2) / np.sum((y - np.mean(y)) ** 2)


def numpy_leaf_values(tree, X):
    """Independent oracle: walk one tree in NumPy, NaN-free input."""
    feature, thr, value = (np.asarray(a) for a in (tree.feature, tree.threshold, tree.value))
    depth = int(np.log2(feature.size + 1))
    node = np.zeros(len(X), int)
    for _ in range(depth):
        f = np.maximum(feature[node], 0)
        node = 2 * node + 1 + (X[np.arange(len(X)), f] > thr[node])
    return value[node - (2**depth - 1)]


@pytest.mark.parametrize("name, seeds", [("breast_cancer", 4), pytest.param("diabetes", 12, marks=pytest.mark.slow)])
def test_random_forest_held_out_score_within_1_5_points_of_sklearn(name, seeds):
    # A forest's test score moves with its seed by about the tolerance on these small test
    # sets (R² on diabetes by ~2 points), so both sides are averaged over the same seeds.
    Xtr, Xte, ytr, yte = split(name)
    task = "regression" if name == "diabetes" else "classification"
    cls = RandomForestRegressor if task == "regression" else RandomForestClassifier
    scores = []
    for seed in range(seeds):
        f = trees.fit_random_forest(Xtr, ytr, 40, key=jax.random.key(seed), task=task, max_depth=8)
        sk = cls(40, max_depth=8, max_features=1 / 3 if task == "regression" else "sqrt", oob_score=True,
                 random_state=seed).fit(Xtr, ytr)
        pred = np.asarray(trees.predict(f, Xte))
        ours = r2(yte, pred) if task == "regression" else np.mean(pred == yte)
        scores.append((ours, sk.score(Xte, yte), float(f.oob_score), sk.oob_score_))
    ours, theirs, oob_ours, oob_theirs = np.mean(scores, axis=0)
    assert abs(ours - theirs) < 0.015
    assert abs(oob_ours - oob_theirs) < 0.03


def test_bootstrap_counts_are_a_multinomial_sample():
    n = 1000
    keys = jax.random.split(jax.random.key(0), 64)
    counts = np.asarray(jax.vmap(lambda k: trees.bootstrap_counts(k, n))(keys))
    assert np.all(counts.sum(axis=1) == n)
    # P(sample left out) = (1 − 1/n)^n ≈ e^{-1}; 64 000 draws put the mean within ±0.006.
    assert np.mean(counts == 0) == pytest.approx((1 - 1 / n) ** n, abs=0.006)


def test_bagging_uses_every_feature_and_forest_samples_features_per_node():
    # Only feature 0 carries the label: bagged trees always split on it at the root; a forest
    # with one feature per node picks a root feature uniformly among the 5.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    bag = trees.fit_bagging(X, y, 32, key=jax.random.key(0), max_depth=2, compute_oob=False)
    assert np.all(np.asarray(bag.trees.feature)[:, 0] == 0)
    rf = trees.fit_random_forest(X, y, 32, key=jax.random.key(0), max_depth=2, max_features=1, compute_oob=False)
    roots = np.asarray(rf.trees.feature)[:, 0]
    assert len(set(roots)) >= 4 and 0.05 < np.mean(roots == 0) < 0.5
    # Soft vote: predict_proba is the mean of the trees' leaf distributions (NumPy oracle).
    per_tree = [numpy_leaf_values(jax.tree.map(lambda a, t=t: a[t], rf.trees), X) for t in range(32)]
    np.testing.assert_allclose(np.asarray(trees.predict_proba(rf, X)), np.mean(per_tree, axis=0), atol=1e-6)
    stages = np.asarray(trees.staged_predict(rf, X))
    # The last stage is the forest's vote, summed another way: the same class wherever the vote
    # is not a tie to float32 round-off (there either class is right, and the CPU decides).
    proba = np.sort(np.asarray(trees.predict_proba(rf, X)), axis=1)
    clear = proba[:, -1] - proba[:, -2] > 1e-5
    np.testing.assert_array_equal(stages[-1][clear], np.asarray(trees.predict(rf, X))[clear])


def fit_pair(Xtr, ytr):
    """A forest and a boosted model whose programs other tests compile too (shared jit cache)."""
    rf = trees.fit_random_forest(Xtr, ytr, 40, key=jax.random.key(0), max_depth=8)
    gb = trees.fit_gradient_boosting(Xtr, ytr, loss="logistic", n_estimators=30, max_depth=3, second_order=True,
                                     reg_lambda=1.0, min_child_weight=1e-3)
    return rf, gb


@pytest.mark.slow
def test_two_devices_and_vmapped_trees_give_the_same_models(tmp_path):
    # Forests split their trees across devices, boosting splits each tree's feature search.
    script = textwrap.dedent("""
        import sys, jax, numpy as np
        sys.path.insert(0, sys.argv[2])
        from test_ensemble import fit_pair, split
        assert len(jax.devices()) == 2
        Xtr, _, ytr, _ = split("breast_cancer")
        np.savez(sys.argv[1], *[np.asarray(a) for a in jax.tree.leaves(fit_pair(Xtr, ytr))])
    """)
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    path = tmp_path / "two.npz"
    subprocess.run([sys.executable, "-c", script, str(path), os.path.dirname(__file__)], check=True, env=env,
                   timeout=300)
    Xtr, _, ytr, _ = split("breast_cancer")
    rf, gb = fit_pair(Xtr, ytr)
    two = np.load(path)
    for i, a in enumerate(jax.tree.leaves((rf, gb))):
        np.testing.assert_allclose(two[f"arr_{i}"], np.asarray(a), rtol=1e-5, atol=1e-5)
    # One device, 8 trees per vmap instead of one tree at a time: the same forest.
    batched = trees.fit_random_forest(Xtr, ytr, 40, key=jax.random.key(0), max_depth=8, batch_size=8)
    for a, b in zip(jax.tree.leaves(rf), jax.tree.leaves(batched), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_estimators=0), "n_estimators"),
    (dict(bootstrap="yes"), "bootstrap"),
    (dict(max_features=1.5), "max_features"),
    (dict(batch_size=0), "batch_size"),
])
def test_forest_bad_input(kwargs, match):
    X, y = datasets.load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=match):
        trees.fit_random_forest(X, y, key=jax.random.key(0), **({"max_depth": 3} | kwargs))
    with pytest.raises(ValueError, match="max_features"):
        trees.fit_bagging(X, y, 3, key=jax.random.key(0), max_depth=2, max_features=2)



@pytest.mark.parametrize("name", ["breast_cancer", "wine", "digits", "diabetes"])
def test_single_tree_held_out_score_within_1_5_points_of_sklearn(name):
    # A depth-4 tree with the default quantile bins against scikit-learn's exact splitter. One
    # split's test set is too small to compare on (wine's 54 examples: one is 1.9 points, and
    # scikit-learn's own score there moves from 85% to 96% with the random_state that breaks
    # its tied splits), so both sides are averaged over the same 40 seeded 70/30 splits.
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    task = "regression" if name == "diabetes" else "classification"
    cls = DecisionTreeRegressor if task == "regression" else DecisionTreeClassifier
    ours, theirs = [], []
    for seed in range(40):
        Xtr, Xte, ytr, yte = train_test_split(X.astype(np.float32), y, test_size=0.3, random_state=seed,
                                              stratify=None if task == "regression" else y)
        model = trees.fit_tree(Xtr, ytr, task=task, criterion="variance" if task == "regression" else "gini",
                               max_depth=4)
        pred = np.asarray(trees.predict(model, Xte))
        ours.append(r2(yte, pred) if task == "regression" else np.mean(pred == yte))
        theirs.append(cls(max_depth=4, random_state=seed).fit(Xtr, ytr).score(Xte, yte))
    assert abs(np.mean(ours) - np.mean(theirs)) < 0.015
