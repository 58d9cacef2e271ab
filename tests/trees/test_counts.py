"""Counts and sizes of the tree models (issue 25): integers of any type keep their value or are
refused by name, in the shared message pattern; never wrapped to int32 on the way to the device."""

import re

import jax
import numpy as np
import pytest

from mlwork import trees
from mlwork.trees import sklearn as mlsk
from mlwork.trees.binning import fit_bins

HUGE = np.int64(2**40)
WRAPS_TO_2 = np.int64(2**32 + 2)  # int32 wrap-around would make this 2
X = np.arange(40, dtype=np.float32).reshape(20, 2)
Y_CLASS = np.arange(20) % 2
Y_REG = np.linspace(0.0, 1.0, 20, dtype=np.float32)


def message(name: str, expected: str, got) -> str:
    return "^" + re.escape(f"{name} must be {expected}; got {got}") + "$"


INT32 = "an integer in [1, 2147483647]"


@pytest.mark.parametrize("fit, name, expected", [
    (lambda v: trees.fit_tree(X, Y_CLASS, max_depth=v), "max_depth", "an integer in [1, 20]"),
    (lambda v: trees.fit_tree(X, Y_CLASS, max_depth=2, min_samples_leaf=v), "min_samples_leaf", INT32),
    (lambda v: trees.fit_tree(X, Y_CLASS, max_depth=2, min_samples_split=v), "min_samples_split",
     "an integer in [2, 2147483647]"),
    (lambda v: trees.fit_tree(X, Y_CLASS, max_depth=2, max_bins=v), "max_bins", "an integer in [2, 255]"),
    (lambda v: trees.fit_tree(X, Y_CLASS, max_depth=2, n_classes=v), "n_classes",
     "an integer in [2, 2147483647]"),
    (lambda v: trees.fit_tree(X, Y_CLASS, max_depth=2, max_features=v, key=jax.random.key(0)), "max_features",
     "an integer in [1, 2]"),
    (lambda v: trees.fit_random_forest(X, Y_CLASS, v, key=jax.random.key(0), max_depth=2), "n_estimators", INT32),
    (lambda v: trees.fit_random_forest(X, Y_CLASS, 2, key=jax.random.key(0), max_depth=2, batch_size=v), "batch_size",
     INT32),
    (lambda v: trees.fit_gradient_boosting(X, Y_REG, n_estimators=v), "n_estimators", INT32),
    (lambda v: trees.fit_gradient_boosting(X, np.zeros((20, 2), np.float32), loss=lambda y, f: 0.5 * (y - f) @ (y - f),
                                           n_outputs=v), "n_outputs", INT32),
    (lambda v: trees.fit_adaboost(X, Y_CLASS, v), "n_estimators", INT32),
    (lambda v: fit_bins(X, v), "max_bins", "an integer in [2, 65535]"),
    (lambda v: mlsk.RandomForestRegressor(n_estimators=v, max_depth=2).fit(X, Y_REG), "n_estimators", INT32),
])
@pytest.mark.parametrize("value", [HUGE, WRAPS_TO_2, 2**63, -1])
def test_counts_out_of_range_are_refused_by_name(fit, name, expected, value):
    with pytest.raises(ValueError, match=message(name, expected, int(value))):
        fit(value)


@pytest.mark.parametrize("value", [True, 2.0, "3", None])
def test_counts_that_are_not_integers_are_refused_by_name(value):
    with pytest.raises(ValueError, match=message("n_estimators", INT32, f"{value!r} ({type(value).__name__})")):
        trees.fit_random_forest(X, Y_CLASS, value, key=jax.random.key(0), max_depth=2)


def test_numpy_integers_keep_their_value():
    tree = trees.fit_tree(X, Y_CLASS, max_depth=np.int64(3), min_samples_leaf=np.int32(2),
                          min_samples_split=np.uint8(4), n_classes=np.int64(3), max_bins=np.int16(8))
    assert tree.depth == 3 and tree.value.shape == (8, 3)
    forest = trees.fit_random_forest(X, Y_CLASS, np.int64(3), key=jax.random.key(0), max_depth=2,
                                     batch_size=np.uint64(2), max_features=np.int64(1))
    assert forest.trees.feature.shape == (3, 3)
    boost = trees.fit_gradient_boosting(X, Y_REG, n_estimators=np.int64(2), max_depth=np.int8(2))
    assert boost.trees.feature.shape[:2] == (2, 1)
    bins = fit_bins(np.arange(1000, dtype=np.float32)[:, None], np.int64(300))
    assert bins.max_bins == 300
    assert "<= " in trees.export_text(tree, decimals=np.int64(2))
    model = mlsk.RandomForestRegressor(n_estimators=np.int64(2), max_depth=np.int64(2)).fit(X, Y_REG)
    assert model.model_.trees.feature.shape == (2, 3)
