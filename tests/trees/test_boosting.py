"""AdaBoost (SAMME) and gradient boosting against scikit-learn and hand-derived formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import datasets
from sklearn.ensemble import (
    AdaBoostClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from mlwork import trees
from mlwork.trees.boosting import boosting_scores


def split(name):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    strat = None if name == "diabetes" else y
    return train_test_split(X.astype(np.float32), y, test_size=0.3, random_state=0, stratify=strat)


def held_out(model, Xte, yte, regression=False):
    pred = np.asarray(trees.predict(model, Xte))
    if regression:
        return 1 - np.sum((yte - pred) ** 2) / np.sum((yte - yte.mean()) ** 2)
    return np.mean(pred == yte)


def test_adaboost_matches_sklearn_samme():
    # Binary stumps, exact splits: the same learners, so the same weights round by round.
    Xtr, Xte, ytr, yte = split("breast_cancer")
    ours = trees.fit_adaboost(Xtr, ytr, 20, max_depth=1, max_bins=None)
    sk = AdaBoostClassifier(DecisionTreeClassifier(max_depth=1), n_estimators=20, random_state=0).fit(Xtr, ytr)
    np.testing.assert_allclose(np.asarray(ours.alpha), sk.estimator_weights_, rtol=2e-3)
    # The deck's binary AdaBoost: α_deck = ½ ln((1 − ε)/ε) is half of SAMME's α for K = 2.
    eps = sk.estimator_errors_
    np.testing.assert_allclose(np.asarray(ours.alpha), 2 * 0.5 * np.log((1 - eps) / eps), rtol=2e-3)
    np.testing.assert_allclose(np.asarray(trees.predict_proba(ours, Xte)), sk.predict_proba(Xte), atol=2e-3)
    assert held_out(ours, Xte, yte) == sk.score(Xte, yte)


def test_multiclass_adaboost_within_1_5_points_of_sklearn():
    # Depth-2 learners on weighted data: tied splits make the rounds drift apart after a few.
    Xtr, Xte, ytr, yte = split("digits")
    ours = trees.fit_adaboost(Xtr, ytr, 30, max_depth=3)
    sk = AdaBoostClassifier(DecisionTreeClassifier(max_depth=3), n_estimators=30, random_state=0).fit(Xtr, ytr)
    np.testing.assert_allclose(np.asarray(ours.alpha[:2]), sk.estimator_weights_[:2], rtol=2e-3)
    assert abs(held_out(ours, Xte, yte) - sk.score(Xte, yte)) < 0.015
    proba = np.asarray(trees.predict_proba(ours, Xte))
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)


def test_first_order_boosting_matches_sklearn_gradient_boosting():
    Xtr, Xte, ytr, yte = split("diabetes")
    ours = trees.fit_gradient_boosting(Xtr, ytr, loss="squared", n_estimators=40, max_depth=3, max_bins=None)
    sk = GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=0).fit(Xtr, ytr)
    # Squared loss: F0 = mean(y); every round fits the residuals y − F, as in the deck.
    assert float(ours.init[0]) == pytest.approx(np.mean(ytr), rel=1e-5)
    assert abs(held_out(ours, Xte, yte, True) - sk.score(Xte, yte)) < 0.015
    Xtr, Xte, ytr, yte = split("digits")
    ours = trees.fit_gradient_boosting(Xtr, ytr, loss="softmax", n_estimators=20, max_depth=3)
    sk = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(Xtr, ytr)
    assert abs(held_out(ours, Xte, yte) - sk.score(Xte, yte)) < 0.015


@pytest.mark.parametrize("name, loss", [("breast_cancer", "logistic"), ("digits", "softmax"),
                                        ("diabetes", "squared")])
def test_second_order_boosting_matches_hist_gradient_boosting(name, loss):
    Xtr, Xte, ytr, yte = split(name)
    ours = trees.fit_gradient_boosting(Xtr, ytr, loss=loss, n_estimators=30, max_depth=3, second_order=True,
                                       reg_lambda=1.0, min_child_weight=1e-3)
    cls = HistGradientBoostingRegressor if loss == "squared" else HistGradientBoostingClassifier
    with threadpool_limits(1):  # OpenMP spin-waiting is slow on a busy 2-core machine
        sk = cls(max_iter=30, max_depth=3, max_leaf_nodes=None, min_samples_leaf=1, l2_regularization=1.0,
                 early_stopping=False).fit(Xtr, ytr)
    assert abs(held_out(ours, Xte, yte, loss == "squared") - sk.score(Xte, yte)) < 0.015
    if loss != "squared":
        gap = np.abs(np.asarray(trees.predict_proba(ours, Xte)) - sk.predict_proba(Xte))
        assert gap.mean() < 0.02


def test_gradients_hessians_and_initial_scores_from_autodiff():
    y = jnp.array([0.0, 1.0, 1.0])
    F = jnp.array([[-1.0], [0.5], [2.0]])
    g, h = trees.grad_hess("logistic", y, F)
    p = 1 / (1 + np.exp(-np.asarray(F)))
    np.testing.assert_allclose(g, p - np.asarray(y)[:, None], rtol=1e-6)
    np.testing.assert_allclose(h, p * (1 - p), rtol=1e-6)
    labels = jnp.array([0, 2])
    logits = jnp.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.0]])
    g, h = trees.grad_hess("softmax", labels, logits)
    q = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(g, q - np.eye(3)[[0, 2]], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(h, q * (1 - q), rtol=1e-5)
    # A callable loss gets F0 by Newton steps and its derivatives by autodiff: the logistic
    # loss written out gives the built-in model (F0 = log-odds, same first tree).
    X = np.arange(20, dtype=np.float32)[:, None]
    yb = (np.arange(20) % 4 == 0).astype(int)
    custom = trees.fit_gradient_boosting(X, yb.astype(np.float32), loss=lambda t, f: jax.nn.softplus(f) - t * f,
                                         n_estimators=2, second_order=True)
    builtin = trees.fit_gradient_boosting(X, yb, loss="logistic", n_estimators=2, second_order=True)
    assert float(custom.init[0]) == pytest.approx(np.log(0.25 / 0.75), abs=1e-4)
    assert float(builtin.init[0]) == pytest.approx(np.log(0.25 / 0.75), abs=1e-6)
    np.testing.assert_allclose(np.asarray(trees.predict(custom, X)),
                               np.asarray(boosting_scores(builtin, jnp.asarray(X)))[:, 0], rtol=1e-4, atol=1e-5)


def test_xgboost_leaf_weights_and_gain_by_hand():
    # One round, one split, learning rate 1, squared loss: g = F0 − y, h = 1.
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]], np.float32)
    y = np.array([1.0, 1.0, 2.0, 6.0, 7.0, 7.0], np.float32)
    lam = 2.0
    model = trees.fit_gradient_boosting(X, y, n_estimators=1, learning_rate=1.0, max_depth=1,
                                        second_order=True, reg_lambda=lam, min_child_weight=0.0)
    g = np.mean(y) - y
    left, right = g[:3], g[3:]  # the best split is between 2 and 3
    w_left, w_right = -left.sum() / (3 + lam), -right.sum() / (3 + lam)
    pred = np.asarray(trees.predict(model, X))
    np.testing.assert_allclose(pred, np.mean(y) + np.r_[[w_left] * 3, [w_right] * 3], rtol=1e-5)
    gain = 0.5 * (left.sum() ** 2 / (3 + lam) + right.sum() ** 2 / (3 + lam) - g.sum() ** 2 / (6 + lam))
    assert float(model.trees.gain[0, 0, 0]) == pytest.approx(gain, rel=1e-5)
    assert float(model.trees.threshold[0, 0, 0]) == pytest.approx(2.5)
    # γ above the gain: no split, every prediction is the root weight.
    flat = trees.fit_gradient_boosting(X, y, n_estimators=1, learning_rate=1.0, max_depth=1,
                                       second_order=True, reg_lambda=lam, gamma=gain * 1.01)
    np.testing.assert_allclose(np.asarray(trees.predict(flat, X)), np.full(6, np.mean(y)), rtol=1e-5)
    with pytest.raises(ValueError, match="predict_proba"):
        trees.predict_proba(flat, X)


def test_importances_and_staged_predictions():
    X, y = datasets.make_classification(400, 8, n_informative=2, n_redundant=0, shuffle=False, random_state=0)
    model = trees.fit_gradient_boosting(X, y, loss="logistic", n_estimators=15, max_depth=2, subsample=0.8,
                                        key=jax.random.key(0))
    imp = np.asarray(trees.feature_importances(model))
    assert imp.sum() == pytest.approx(1.0, abs=1e-5) and np.all(imp >= 0)
    assert set(np.argsort(imp)[-2:]) == {0, 1}  # the two informative columns come first
    stages = np.asarray(trees.staged_predict(model, X))
    assert stages.shape == (15, 400)
    # The last stage is the model's score summed another way: the same class wherever the score
    # is not 0 to float32 round-off (there either class is right, and the CPU decides).
    clear = np.abs(np.asarray(boosting_scores(model, jnp.asarray(X, jnp.float32)))[:, 0]) > 1e-5
    np.testing.assert_array_equal(stages[-1][clear], np.asarray(trees.predict(model, X))[clear])
    assert np.mean(stages[-1] == y) > np.mean(stages[0] == y) - 0.05


@pytest.mark.parametrize("kwargs, match", [
    (dict(loss="logistic", y=np.arange(30) % 3), "logistic"),
    (dict(loss="hinge"), "loss"),
    (dict(subsample=0.0), "subsample"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(reg_lambda=-1.0), "reg_lambda"),
    (dict(max_depth=0), "max_depth"),
    (dict(second_order="yes"), "second_order"),
])
def test_boosting_bad_input(kwargs, match):
    X = np.arange(60, dtype=np.float32).reshape(30, 2)
    args = dict(y=np.arange(30) % 2) | kwargs
    with pytest.raises(ValueError, match=match):
        trees.fit_gradient_boosting(X, args.pop("y"), **args)


def test_predict_proba_needs_a_classification_loss_and_adaboost_checks():
    X = np.arange(60, dtype=np.float32).reshape(30, 2)
    with pytest.raises(ValueError, match="n_estimators"):
        trees.fit_adaboost(X, np.arange(30) % 2, 0)
    with pytest.raises(ValueError, match="single class"):
        trees.fit_adaboost(X, np.zeros(30, int), 3)


def test_a_callable_loss_is_traced_as_it_is_now_on_every_fit_and_call():
    """A closure whose captured value changed between two calls with the same function object must
    not be served the program compiled for the old value (jit keys static arguments on identity)."""
    X = np.linspace(0.0, 1.0, 32, dtype=np.float32)[:, None]
    y = np.zeros(32, np.float32)
    shift = {"value": 0.0}

    def loss(t, f):  # squared error towards t + shift: the fit's constant F0 is the shifted mean
        return 0.5 * (f - (t + shift["value"])) ** 2

    first = trees.fit_gradient_boosting(X, y, loss=loss, n_estimators=2, max_depth=1)
    shift["value"] = 10.0
    second = trees.fit_gradient_boosting(X, y, loss=loss, n_estimators=2, max_depth=1)
    assert float(first.init[0]) == pytest.approx(0.0, abs=1e-4)
    assert float(second.init[0]) == pytest.approx(10.0, abs=1e-3)
    g, _ = trees.grad_hess(loss, jnp.zeros(3), jnp.zeros((3, 1)))
    np.testing.assert_allclose(np.asarray(g).ravel(), -10.0)
    shift["value"] = -2.0
    g, _ = trees.grad_hess(loss, jnp.zeros(3), jnp.zeros((3, 1)))
    np.testing.assert_allclose(np.asarray(g).ravel(), 2.0)
