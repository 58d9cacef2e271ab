"""Permutation importance (issue 29): scikit-learn's definition, every feature and repeat in one
compiled program; exact against a hand-made permutation, close to scikit-learn's on data with
clearly informative and pure-noise features."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import datasets, inspection, metrics

from mlwork import trees
from mlwork.trees import inspection as ours_module
from mlwork.trees import sklearn as sk

# 3 informative features first, then 3 of pure noise (shuffle=False keeps that order).
XC, YC = datasets.make_classification(n_samples=600, n_features=6, n_informative=3, n_redundant=0,
                                      shuffle=False, random_state=0)
ROWS = np.random.default_rng(0).permutation(len(YC))  # shuffle=False also sorts the rows by class
XC, YC = XC[ROWS].astype(np.float32), YC[ROWS]
XR, YR = datasets.make_friedman1(n_samples=400, n_features=7, random_state=0)  # features 5, 6: noise
XR, YR = XR.astype(np.float32), YR.astype(np.float32)


def hand_made(model, X, y, key, n_repeats, score):
    """The definition, one permutation at a time in NumPy, with the documented permutations."""
    perms = [np.asarray(jax.random.permutation(k, X.shape[0])) for k in jax.random.split(key, n_repeats)]
    base = score(y, np.asarray(trees.predict(model, X)))
    out = np.zeros((X.shape[1], n_repeats))
    for j in range(X.shape[1]):
        for r, perm in enumerate(perms):
            Xp = X.copy()
            Xp[:, j] = X[perm, j]
            out[j, r] = base - score(y, np.asarray(trees.predict(model, Xp)))
    return out


def test_exact_against_a_hand_made_permutation_classification():
    model = trees.fit_random_forest(XC[:400], YC[:400], 10, max_depth=6)
    key = jax.random.key(7)
    result = trees.permutation_importance(model, XC[400:], YC[400:], n_repeats=3, key=key)
    expected = hand_made(model, XC[400:], YC[400:], key, 3, metrics.accuracy_score)
    np.testing.assert_allclose(np.asarray(result.importances), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(result.importances_mean), expected.mean(1), atol=1e-6)
    np.testing.assert_allclose(np.asarray(result.importances_std), expected.std(1), atol=1e-6)


def test_exact_against_a_hand_made_permutation_regression_r2():
    model = trees.fit_gradient_boosting(XR[:300], YR[:300], 20, max_depth=3)
    key = jax.random.key(1)
    result = trees.permutation_importance(model, XR[300:], YR[300:], n_repeats=2, key=key)
    expected = hand_made(model, XR[300:], YR[300:], key, 2, metrics.r2_score)
    np.testing.assert_allclose(np.asarray(result.importances), expected, atol=2e-5)


@pytest.mark.parametrize("problem", ["classification", "regression"])
def test_close_to_sklearn_on_informative_and_noise_features(problem):
    if problem == "classification":
        X, y, n_informative = XC, YC, 3
        est = sk.RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0)
    else:
        X, y, n_informative = XR, YR, 5
        est = sk.GradientBoostingRegressor(n_estimators=60, max_depth=3, random_state=0)
    half = X.shape[0] // 2
    est.fit(X[:half], y[:half])
    theirs = inspection.permutation_importance(est, X[half:], y[half:], n_repeats=20, random_state=0)
    mine = trees.permutation_importance(est.model_, X[half:], y[half:], n_repeats=20, key=jax.random.key(0))
    mean, their_mean = np.asarray(mine.importances_mean), theirs.importances_mean
    # Different permutations: agree within a few standard errors of the mean (plus a small floor).
    se = np.sqrt((np.asarray(mine.importances_std) ** 2 + theirs.importances_std**2) / 20)
    assert np.all(np.abs(mean - their_mean) <= 4 * se + 0.01), (mean, their_mean)
    # The informative features clearly matter, the noise features do not, for both.
    for m in (mean, their_mean):
        assert m[:n_informative].min() > 0.05 and np.abs(m[n_informative:]).max() < 0.02
    np.testing.assert_allclose(np.asarray(mine.importances_std), theirs.importances_std, atol=0.03)


def test_one_compiled_program_for_every_feature_and_repeat():
    model = trees.fit_tree(XC[:200], YC[:200], max_depth=3)
    ours_module._scores.clear_cache()
    trees.permutation_importance(model, XC[200:300], YC[200:300], n_repeats=4)
    assert ours_module._scores._cache_size() == 1
    trees.permutation_importance(model, XC[200:300], YC[200:300], n_repeats=4, key=jax.random.key(5))
    assert ours_module._scores._cache_size() == 1  # a new key reuses it
    # Chunked evaluation (batch_size) is the same computation.
    full = trees.permutation_importance(model, XC[200:300], YC[200:300], n_repeats=4)
    chunked = trees.permutation_importance(model, XC[200:300], YC[200:300], n_repeats=4, batch_size=5)
    np.testing.assert_allclose(np.asarray(full.importances), np.asarray(chunked.importances), atol=1e-7)


def test_scorings_by_name_and_callable():
    model = trees.fit_gradient_boosting(XC[:300], YC[:300], 10, max_depth=2)  # logistic (integer labels)
    X, y = XC[300:], YC[300:]
    acc = trees.permutation_importance(model, X, y, n_repeats=2)
    same = trees.permutation_importance(model, X, y, n_repeats=2, scoring="accuracy")
    custom = trees.permutation_importance(
        model, X, y, n_repeats=2, scoring=lambda m, X, y: jnp.mean((trees.predict(m, X) == y).astype(jnp.float32)))
    np.testing.assert_array_equal(np.asarray(acc.importances), np.asarray(same.importances))
    np.testing.assert_allclose(np.asarray(acc.importances), np.asarray(custom.importances), atol=1e-7)
    key = jax.random.key(0)
    log = trees.permutation_importance(model, X, y, n_repeats=2, scoring="neg_log_loss", key=key)
    perms = [np.asarray(jax.random.permutation(k, len(y))) for k in jax.random.split(key, 2)]
    proba = lambda X: (p := np.asarray(trees.predict_proba(model, X), np.float64)) / p.sum(1, keepdims=True)  # noqa: E731
    base = -metrics.log_loss(y, proba(X))
    Xp = X.copy()
    Xp[:, 0] = X[perms[1], 0]
    drop = base + metrics.log_loss(y, proba(Xp))
    np.testing.assert_allclose(float(log.importances[0, 1]), drop, atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(scoring="f1"), r"^scoring must be None, one of 'accuracy', 'r2', .* or a callable; got 'f1'$"),
    (dict(n_repeats=0), r"^n_repeats must be an integer in \[1, 2147483647\]; got 0$"),
    (dict(batch_size=0), r"^batch_size must be an integer in \[1, 2147483647\]; got 0$"),
    (dict(y=np.full(50, 3)), r"^y must be class indices in \[0, 1\] for a 2-class model; got values in \[3, 3\]$"),
    (dict(y=np.zeros(49, int)), r"^X and y must be of the same length"),
    (dict(X=np.zeros((50, 5), np.float32)), "5 features but the model was fit on 6"),
    (dict(model={"not": "a model"}), r"^model must be a Tree, Forest, AdaBoost or GradientBoosting; got dict$"),
])
def test_bad_input_is_named(kwargs, match):
    args = dict(model=trees.fit_tree(XC[:100], YC[:100], max_depth=2), X=XC[:50], y=YC[:50]) | kwargs
    with pytest.raises(ValueError, match=match):
        trees.permutation_importance(args.pop("model"), args.pop("X"), args.pop("y"), **args)
