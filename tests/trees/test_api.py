"""One calling convention for every fit (issue 29): ``fit_*(X, y, [n_estimators], *, key=None, ...)``,
defaults that follow the targets, errors that name the real mistake, and 0.1's key-first call
kept until 0.3 with a DeprecationWarning."""

import math
import warnings

import jax
import numpy as np
import pytest

from mlwork import trees

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3)).astype(np.float32)
Y_INT = (X[:, 0] > 0).astype(np.int64)
Y3 = np.digitize(X[:, 0], [-0.5, 0.5])
Y_FLOAT = (2 * X[:, 0] + X[:, 1]).astype(np.float32)


def same(a, b):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.mark.parametrize("make_key", [lambda: jax.random.key(3), lambda: jax.random.PRNGKey(3)],
                         ids=["typed", "raw"])
@pytest.mark.parametrize("fit", [trees.fit_random_forest, trees.fit_bagging])
def test_key_first_call_still_works_with_a_deprecation_warning(fit, make_key):
    key = make_key()
    new = fit(X, Y_INT, 4, key=key, max_depth=2)
    message = rf"{fit.__name__}\(key, X, y, \.\.\.\) is deprecated .*removed in 0\.3"
    with pytest.warns(DeprecationWarning, match=message):
        old = fit(key, X, Y_INT, 4, max_depth=2)
    same(old, new)


def test_key_keyword_alone_gives_no_warning_and_defaults_to_a_seeded_key():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default = trees.fit_random_forest(X, Y_INT, 3, max_depth=2)
        tree = trees.fit_tree(X, Y_INT, max_depth=2, max_features=1)  # no key needed
    same(default, trees.fit_random_forest(X, Y_INT, 3, key=jax.random.key(0), max_depth=2))
    same(tree, trees.fit_tree(X, Y_INT, max_depth=2, max_features=1, key=jax.random.key(0)))


def test_every_fit_takes_the_key_as_a_keyword_and_the_key_first_form_with_a_warning():
    key = jax.random.key(1)
    for fit, kw in [(trees.fit_tree, {}), (trees.fit_gradient_boosting, {"n_estimators": 2}),
                    (trees.fit_adaboost, {"n_estimators": 2})]:
        new = fit(X, Y_INT, key=key, max_depth=2, **kw)
        with pytest.warns(DeprecationWarning, match="removed in 0.3"):
            same(fit(key, X, Y_INT, max_depth=2, **kw), new)


def test_a_key_given_twice_is_refused():
    with pytest.raises(ValueError, match="key must be given once"):
        trees.fit_random_forest(jax.random.key(0), X, Y_INT, 3, key=jax.random.key(1), max_depth=2)


N_KEY = r"^n_estimators must be a positive integer; got a PRNG key"


@pytest.mark.parametrize("call, match", [
    (lambda k: trees.fit_random_forest(X, k, 3), r"^y must be a 1-D array of 40 targets.*; got a PRNG key"),
    (lambda k: trees.fit_random_forest(X, Y_INT, k, max_depth=2), N_KEY),
    (lambda k: trees.fit_gradient_boosting(X, Y_INT, k), N_KEY),
    (lambda k: trees.fit_tree(X=k, y=Y_INT), r"^X must be a 2-D numeric array .*; got a PRNG key \(pass the key as"),
])
def test_a_key_where_data_belongs_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call(jax.random.key(0))


@pytest.mark.parametrize("fit", [
    lambda X, y: trees.fit_tree(X, y),
    lambda X, y: trees.fit_random_forest(X, y, 2),
    lambda X, y: trees.fit_gradient_boosting(X, y, 2),
    lambda X, y: trees.fit_adaboost(X, y, 2),
])
def test_x_and_y_lengths_that_disagree_name_both(fit):
    message = r"^X and y must be of the same length .*; got X with 40 rows and y with 39 values$"
    with pytest.raises(ValueError, match=message):
        fit(X, Y_INT[:-1])


def test_default_depth_follows_the_data_as_the_sklearn_estimators_do():
    from mlwork.trees.sklearn import resolve_depth
    assert trees.fit_tree(X, Y_INT).depth == math.ceil(math.log2(40)) == resolve_depth(None, 40)
    assert trees.fit_random_forest(X, Y_INT, 2).trees.depth == 6
    assert trees.fit_tree(X[:3], Y_INT[:3] * 0 + np.array([0, 1, 1])).depth == 2
    big = np.zeros((5000, 1), np.float32)
    assert trees.fit_tree(big, np.arange(5000) % 2, max_bins=2).depth == 12  # capped at 4096 leaves
    assert trees.fit_tree(X, Y_INT, max_depth=3).depth == 3  # an explicit depth wins


def test_task_follows_the_targets_unless_given():
    assert trees.fit_tree(X, Y_INT, max_depth=2).kind == "classification"
    assert trees.fit_tree(X, Y_INT.astype(bool), max_depth=2).kind == "classification"
    assert trees.fit_tree(X, Y_FLOAT, max_depth=2).kind == "regression"
    assert trees.fit_random_forest(X, Y3, 2, max_depth=2).kind == "classification"
    assert trees.fit_bagging(X, Y_FLOAT, 2, max_depth=2).kind == "regression"
    # An explicit task or criterion wins over the dtype.
    assert trees.fit_tree(X, Y_INT.astype(np.float32), task="classification", max_depth=2).kind == "classification"
    assert trees.fit_tree(X, Y_INT, task="regression", max_depth=2).kind == "regression"
    assert trees.fit_tree(X, Y_INT, criterion="variance", max_depth=2).kind == "regression"
    assert trees.fit_tree(X, Y_INT.astype(np.float32), criterion="entropy", max_depth=2).kind == "classification"


def test_boosting_loss_follows_the_targets_unless_given():
    fit = trees.fit_gradient_boosting
    assert fit(X, Y_INT, 2, max_depth=1).loss == "logistic"
    assert fit(X, Y_INT.astype(bool), 2, max_depth=1).loss == "logistic"
    assert fit(X, Y3, 2, max_depth=1).loss == "softmax"
    assert fit(X, Y_INT, 2, max_depth=1, n_classes=3).loss == "softmax"
    assert fit(X, Y_FLOAT, 2, max_depth=1).loss == "squared"
    # Explicit losses win: integer targets regressed on purpose, 0/1 floats as labels.
    assert fit(X, Y_INT, 2, max_depth=1, loss="squared").loss == "squared"
    same(fit(X, Y_INT.astype(np.float32), 2, max_depth=1, loss="logistic"), fit(X, Y_INT, 2, max_depth=1))
    np.testing.assert_array_equal(trees.predict(fit(X, Y_INT, 5, max_depth=2), X), Y_INT)
    with pytest.raises(ValueError, match="single class"):
        fit(X, np.zeros(40, int), 2)
