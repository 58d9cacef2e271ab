"""Impurities: the deck's numbers, scipy/numpy oracles, finite gradients, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from mlwork import trees


def test_deck_numbers():
    # Deck section 16: Gini(0.7, 0.3) = 1 − (0.49 + 0.09) = 0.42; pure node 0; 50/50 entropy 1 bit.
    assert float(trees.gini_impurity(jnp.array([0.7, 0.3]))) == pytest.approx(0.42, abs=1e-6)
    assert float(trees.gini_impurity(jnp.array([70, 30]))) == pytest.approx(0.42, abs=1e-6)  # counts work too
    assert float(trees.gini_impurity(jnp.array([1.0, 0.0]))) == 0.0
    assert float(trees.entropy_impurity(jnp.array([1.0, 0.0]))) == 0.0
    assert float(trees.entropy_impurity(jnp.array([5, 5]))) == pytest.approx(1.0, abs=1e-6)


@given(st.lists(st.floats(0.0, 100.0), min_size=2, max_size=6).filter(lambda c: sum(c) > 1e-3))
def test_entropy_and_gini_match_scipy_and_numpy(counts):
    c = np.asarray(counts, np.float32)
    p = c / c.sum()
    assert float(trees.entropy_impurity(c)) == pytest.approx(scipy.stats.entropy(p, base=2), abs=2e-5)
    assert float(trees.gini_impurity(c)) == pytest.approx(1.0 - np.sum(p**2), abs=2e-6)


def test_batched_counts_and_finite_gradient_at_zero():
    batch = jnp.array([[1.0, 0.0], [1.0, 1.0], [1.0, 3.0]])
    np.testing.assert_allclose(trees.entropy_impurity(batch), [0.0, 1.0, scipy.stats.entropy([0.25, 0.75], base=2)],
                               atol=1e-6)
    g = jax.grad(lambda c: trees.entropy_impurity(c))(jnp.array([2.0, 0.0, 1.0]))
    assert np.all(np.isfinite(g))


def test_variance_and_information_gain_against_hand_formulas():
    rng = np.random.default_rng(0)
    y, w = rng.normal(size=20).astype(np.float32), rng.uniform(0.5, 2, 20).astype(np.float32)
    assert float(trees.variance_impurity(y)) == pytest.approx(np.var(y), rel=1e-5)
    mean = np.average(y, weights=w)
    assert float(trees.variance_impurity(y, w)) == pytest.approx(np.average((y - mean) ** 2, weights=w), rel=1e-5)
    # IG(S, A) = H(S) − Σ |S_v|/|S| H(S_v): parent 10/10, children (8, 2) and (2, 8).
    parent, children = np.array([10, 10]), np.array([[8, 2], [2, 8]])
    h = lambda c: scipy.stats.entropy(c / c.sum(), base=2)  # noqa: E731
    expected = h(parent) - 0.5 * h(children[0]) - 0.5 * h(children[1])
    assert float(trees.information_gain(parent, children)) == pytest.approx(expected, abs=1e-6)
    gini_gain = 0.5 - 0.5 * (1 - 0.64 - 0.04) * 2
    assert float(trees.information_gain(parent, children, "gini")) == pytest.approx(gini_gain, abs=1e-6)
    # An empty child contributes nothing.
    assert float(trees.information_gain([3, 1], [[3, 1], [0, 0]])) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("call, match", [
    (lambda: trees.gini_impurity(jnp.array([0.5, -0.1])), "non-negative"),
    (lambda: trees.entropy_impurity(jnp.array([0.0, 0.0])), "positive total"),
    (lambda: trees.gini_impurity(jnp.float32(1.0)), "class axis"),
    (lambda: trees.variance_impurity(jnp.zeros((2, 2))), "1-D"),
    (lambda: trees.information_gain([2, 2], [[1, 1], [1, 0]]), "add up"),
    (lambda: trees.information_gain([2, 2], [[1, 1], [1, 1]], "mse"), "criterion"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
