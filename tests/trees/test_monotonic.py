"""Monotonic constraints (issue 29): ``monotonic_cst`` for trees, forests and boosting.

The guarantee is checked directly (a prediction swept over a grid of one constrained feature,
the others fixed, never moves against the constraint, exactly), including on data whose true
relation runs the other way; the method is compared with scikit-learn's
``HistGradientBoostingRegressor`` and ``DecisionTreeRegressor``, which implement the same idea.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.tree import DecisionTreeRegressor as SkTree

from mlwork import trees
from mlwork.trees import sklearn as sk

N, D = 96, 3
CST = (1, -1, 0)
GRID = np.linspace(-3.5, 3.5, 29, dtype=np.float32)  # beyond the data's range on both sides


def sweep(predict, X, cst, grid=GRID, rows=8):
    """For each constrained feature ``j``: predictions ``(rows, len(grid))`` of the first
    ``rows`` rows of ``X`` with ``x_j`` set to each grid value, times the constraint's sign."""
    out = {}
    for j, c in enumerate(cst):
        if c == 0:
            continue
        Z = np.repeat(X[:rows], len(grid), axis=0)
        Z[:, j] = np.tile(grid, rows)
        out[j] = c * np.asarray(predict(Z), np.float64).reshape(rows, len(grid))
    return out


def assert_monotone(predict, X, cst):
    for j, p in sweep(predict, X, cst).items():
        steps = np.diff(p, axis=1)
        assert steps.min() >= 0.0, f"feature {j}: a step of {steps.min()} against constraint {cst[j]}"


def make_data(seed, coef, noise, missing):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D)).astype(np.float32)
    y = X @ np.asarray(coef, np.float32) + np.sin(3 * X[:, 0]) + noise * rng.normal(size=N).astype(np.float32)
    if missing:
        X[rng.random(X.shape) < 0.1] = np.nan
    return X, y.astype(np.float32)


coefs = st.lists(st.sampled_from([-2.0, -0.5, 0.0, 0.5, 2.0]), min_size=D, max_size=D)
FITS = {
    "tree": lambda X, y: trees.fit_tree(X, y, max_depth=5, monotonic_cst=CST),
    "forest": lambda X, y: trees.fit_random_forest(X, y, 4, max_depth=4, max_features=2, monotonic_cst=CST),
    "boost": lambda X, y: trees.fit_gradient_boosting(X, y, 8, max_depth=3, learning_rate=0.5,
                                                      monotonic_cst=CST),
    "xgb": lambda X, y: trees.fit_gradient_boosting(X, y, 8, max_depth=3, learning_rate=0.5, second_order=True,
                                                    reg_lambda=0.5, monotonic_cst=CST),
    "logistic": lambda X, y: trees.fit_gradient_boosting(X, (y > np.median(y)).astype(np.int32), 8,
                                                         max_depth=3, learning_rate=0.5, monotonic_cst=CST),
}


@pytest.mark.parametrize("fit", [pytest.param(k, marks=[pytest.mark.slow] if k in ("forest", "boost", "logistic")
                                               else []) for k in FITS])
@settings(max_examples=6)
@given(seed=st.integers(0, 2**16), coef=coefs, noise=st.sampled_from([0.0, 0.3, 3.0]), missing=st.booleans())
def test_predictions_are_monotone(fit, seed, coef, noise, missing):
    """Whatever the data (its relation with the same sign, none, or the opposite sign of the
    constraint), the prediction never moves against a constrained feature."""
    X, y = make_data(seed, coef, noise, missing)
    model = FITS[fit](X, y)
    predict = (lambda Z: trees.predict_proba(model, Z)[:, 1]) if fit == "logistic" else \
        (lambda Z: trees.predict(model, Z))
    assert_monotone(predict, X, CST)


def test_sign_matters():
    """+1 on an increasing relation follows it; -1 on it leaves the tree flat in that feature."""
    X, y = make_data(0, [2.0, 0.0, 0.0], 0.1, False)
    up = trees.fit_tree(X, y, max_depth=4, monotonic_cst=[1, 0, 0])
    down = trees.fit_tree(X, y, max_depth=4, monotonic_cst=[-1, 0, 0])
    free = trees.fit_tree(X, y, max_depth=4)
    rise_up = sweep(lambda Z: trees.predict(up, Z), X, (1, 0, 0))[0]
    rise_down = sweep(lambda Z: trees.predict(down, Z), X, (1, 0, 0))[0]
    assert np.all(rise_up[:, -1] - rise_up[:, 0] > 4.0)   # x0 from -3.5 to 3.5 at slope ~2
    np.testing.assert_array_equal(rise_down[:, -1], rise_down[:, 0])
    sse = {k: float(np.sum((np.asarray(trees.predict(m, X)) - y) ** 2)) for k, m in
           (("up", up), ("down", down), ("free", free))}
    assert sse["free"] <= sse["up"] < 0.5 * sse["down"]


def test_leaf_values_within_the_data_and_bounds():
    """Clipping keeps regression leaves inside the targets' range; on data that already is
    monotone a constraint in its direction changes no prediction of a depth-2 tree."""
    X = np.arange(8.0, dtype=np.float32)[:, None]
    y = np.array([0.0, 1.0, 1.0, 2.0, 5.0, 5.0, 6.0, 9.0], np.float32)
    free = trees.fit_tree(X, y, max_depth=2)
    up = trees.fit_tree(X, y, max_depth=2, monotonic_cst=[1])
    np.testing.assert_array_equal(np.asarray(trees.predict(up, X)), np.asarray(trees.predict(free, X)))
    # A dip: the constrained tree pools it (as isotonic regression would, locally).
    y_dip = np.array([0.0, 1.0, 2.0, 3.0, 2.5, 5.0], np.float32)
    pred = np.asarray(trees.predict(trees.fit_tree(X[:6], y_dip, max_depth=3, monotonic_cst=[1]), X[:6]))
    np.testing.assert_allclose(pred, [0.0, 1.0, 2.0, 2.75, 2.75, 5.0])
    down = np.asarray(trees.predict(trees.fit_tree(X[:6], y_dip, max_depth=3, monotonic_cst=[-1]), X[:6]))
    np.testing.assert_allclose(down, np.full(6, y_dip.mean()), rtol=1e-6)


def test_all_zero_is_unconstrained_bit_for_bit():
    X, y = make_data(1, [1.0, -1.0, 0.5], 0.5, True)
    for fit in (lambda **k: trees.fit_tree(X, y, max_depth=4, **k),
                lambda **k: trees.fit_gradient_boosting(X, y, 5, second_order=True, **k)):
        a, b = fit(), fit(monotonic_cst=[0, 0, 0])
        for u, v in zip(np.asarray(trees.predict(a, X)), np.asarray(trees.predict(b, X)), strict=True):
            assert u == v


def friedman_like(seed, n):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 2)).astype(np.float32)
    y = 2 * X[:, 0] + np.sin(4 * X[:, 0]) + X[:, 1] ** 2 + 0.3 * rng.normal(size=n)
    return X, y.astype(np.float32)


def r2(y, p):
    return 1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2)


@pytest.mark.slow
@pytest.mark.parametrize("cst", [[1, 0], [-1, 0]])
def test_agrees_with_sklearn_hist_gradient_boosting(cst):
    """Same constraint, same kind of model: both monotone, similar held-out R² (with the true
    direction), both nearly flat in x0 (against it)."""
    X, y = friedman_like(0, 600)
    Xte, yte = friedman_like(1, 400)
    ours = trees.fit_gradient_boosting(X, y, 60, max_depth=3, second_order=True, reg_lambda=0.0,
                                       min_child_weight=1e-3, min_samples_leaf=20, monotonic_cst=cst)
    hgb = HistGradientBoostingRegressor(max_iter=60, max_depth=3, learning_rate=0.1, l2_regularization=0.0,
                                        min_samples_leaf=20, early_stopping=False, monotonic_cst=cst).fit(X, y)
    assert_monotone(lambda Z: trees.predict(ours, Z), Xte, cst)
    assert_monotone(hgb.predict, Xte, cst)
    r_ours, r_hgb = r2(yte, np.asarray(trees.predict(ours, Xte))), r2(yte, hgb.predict(Xte))
    span_ours = np.ptp(sweep(lambda Z: trees.predict(ours, Z), Xte, cst)[0], axis=1).mean()
    span_hgb = np.ptp(sweep(hgb.predict, Xte, cst)[0], axis=1).mean()
    if cst[0] == 1:
        assert r_ours > 0.85 and abs(r_ours - r_hgb) < 0.03, (r_ours, r_hgb)
        assert span_ours == pytest.approx(span_hgb, rel=0.15)
    else:  # the data rise with x0: a decreasing fit can only stay (almost) flat in it
        assert r_ours < 0.4 and r_hgb < 0.4 and abs(r_ours - r_hgb) < 0.1, (r_ours, r_hgb)
        assert span_ours < 0.5 and span_hgb < 0.5, (span_ours, span_hgb)


def test_tree_agrees_with_sklearn_decision_tree():
    X, y = friedman_like(2, 600)
    Xte, yte = friedman_like(3, 400)
    ours = sk.DecisionTreeRegressor(max_depth=5, min_samples_leaf=5, monotonic_cst=[1, 0]).fit(X, y)
    ref = SkTree(max_depth=5, min_samples_leaf=5, monotonic_cst=[1, 0], random_state=0).fit(X, y)
    assert_monotone(ours.predict, Xte, [1, 0])
    assert abs(r2(yte, ours.predict(Xte)) - r2(yte, ref.predict(Xte))) < 0.03


@pytest.mark.slow
def test_sklearn_estimators_take_monotonic_cst():
    X, y = friedman_like(4, 200)
    for est in (sk.GradientBoostingRegressor(n_estimators=10, monotonic_cst=[-1, 0]),
                sk.RandomForestRegressor(n_estimators=3, max_depth=4, random_state=0, monotonic_cst=[-1, 0])):
        assert est.get_params()["monotonic_cst"] == [-1, 0]
        assert_monotone(est.fit(X, y).predict, X, [-1, 0])
    clf = sk.GradientBoostingClassifier(n_estimators=10, monotonic_cst=[1, 0]).fit(X, y > 0)
    assert_monotone(lambda Z: clf.predict_proba(Z)[:, 1], X, [1, 0])


def test_bad_monotonic_cst():
    X, y = make_data(0, [1.0, 0.0, 0.0], 0.1, False)
    labels3 = np.arange(N) % 3
    with pytest.raises(ValueError, match=r"monotonic_cst must have one entry per feature \(3\)"):
        trees.fit_tree(X, y, monotonic_cst=[1, 0])
    with pytest.raises(ValueError, match="monotonic_cst values must be -1, 0 or 1"):
        trees.fit_gradient_boosting(X, y, 2, monotonic_cst=[2, 0, 0])
    with pytest.raises(ValueError, match="monotonic_cst values must be -1, 0 or 1"):
        trees.fit_random_forest(X, y, 2, monotonic_cst=[0.5, 0, 0])
    with pytest.raises(ValueError, match="monotonic_cst values must be -1, 0 or 1"):
        trees.fit_tree(X, y, monotonic_cst=[True, False, False])
    with pytest.raises(ValueError, match="monotonic_cst needs a single-output loss"):
        trees.fit_gradient_boosting(X, labels3, 2, monotonic_cst=[1, 0, 0])
    with pytest.raises(ValueError, match="monotonic_cst needs a single-output loss"):
        sk.GradientBoostingClassifier(n_estimators=2, monotonic_cst=[1, 0, 0]).fit(X, labels3)
    with pytest.raises(ValueError, match="monotonic_cst needs task='regression'"):
        trees.fit_tree(X, labels3, monotonic_cst=[1, 0, 0])
    with pytest.raises(ValueError, match=r"monotonic_cst must have one entry per feature \(3\)"):
        sk.DecisionTreeRegressor(monotonic_cst=[[1, 0, 0]]).fit(X, y)


def test_constraints_categories_and_early_stopping_together(tmp_path):
    # The three features met only in the merge: a categorical feature with a permuted effect, one
    # feature constrained up and one down, and a validation split that stops the rounds early.
    rng = np.random.default_rng(0)
    n = 1500
    cat = rng.integers(0, 12, n)
    x1, x2 = rng.normal(size=(2, n))
    y = (rng.permutation(12)[cat] / 6 + 2 * x1 - x2 + rng.normal(scale=0.5, size=n)).astype(np.float32)
    X = np.stack([cat, x1, x2], 1).astype(np.float32)
    model = trees.fit_gradient_boosting(X, y, 300, loss="squared", max_depth=3, validation_fraction=0.2,
                                        n_iter_no_change=5, monotonic_cst=[0, 1, -1], categorical_features=[0])
    assert model.n_iter < 300 and model.trees.feature.shape[0] == model.best_iteration
    assert np.any(np.isnan(np.asarray(model.trees.threshold)[np.asarray(model.trees.feature) == 0]))  # set splits
    grid = np.linspace(-3, 3, 40, dtype=np.float32)
    for feature, sign in [(1, 1), (2, -1)]:
        Z = np.repeat(X[:100], grid.size, 0)
        Z[:, feature] = np.tile(grid, 100)
        p = np.asarray(trees.predict(model, Z)).reshape(100, grid.size)
        assert np.all(sign * np.diff(p, axis=1) >= 0), feature
    loaded = trees.load_model(trees.save_model(tmp_path / "model.npz", model))
    np.testing.assert_array_equal(trees.predict(loaded, X), trees.predict(model, X))
