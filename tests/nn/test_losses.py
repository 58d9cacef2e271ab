import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from mlwork import nn


def test_deck_cross_entropy_example():
    # y = (0, 1, 0), ŷ = (0.1, 0.7, 0.2): L = −ln 0.7 ≈ 0.357.
    y = jnp.array([[0.0, 1.0, 0.0]])
    p = jnp.array([[0.1, 0.7, 0.2]])
    assert float(nn.categorical_cross_entropy(p, y)) == pytest.approx(-math.log(0.7), rel=1e-6)
    assert round(-math.log(0.7), 3) == 0.357
    # The same from logits with the integer label 1 and with one-hot targets.
    logits = jnp.log(p)
    assert float(nn.softmax_cross_entropy(logits, jnp.array([1]))) == pytest.approx(0.35667, abs=1e-5)
    assert float(nn.softmax_cross_entropy(logits, y)) == pytest.approx(0.35667, abs=1e-5)


def test_losses_against_hand_formulas():
    rng = np.random.default_rng(0)
    yhat = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=(8, 3)).astype(np.float32)
    assert float(nn.mse(yhat, y)) == pytest.approx(np.mean((yhat - y) ** 2), rel=1e-6)
    assert float(nn.mae(yhat, y)) == pytest.approx(np.mean(np.abs(yhat - y)), rel=1e-6)

    p = rng.uniform(0.05, 0.95, size=(16,)).astype(np.float32)
    t = (rng.uniform(size=16) > 0.5).astype(np.float32)
    bce = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    assert float(nn.binary_cross_entropy(p, t)) == pytest.approx(bce, rel=1e-5)
    z = np.log(p / (1 - p))
    assert float(nn.binary_cross_entropy_with_logits(z, t)) == pytest.approx(bce, rel=1e-5)

    logits = rng.normal(size=(10, 5)).astype(np.float32) * 3
    labels = rng.integers(0, 5, size=10)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -np.mean(logp[np.arange(10), labels])
    assert float(nn.softmax_cross_entropy(logits, labels)) == pytest.approx(ce, rel=1e-5)
    onehot = np.eye(5, dtype=np.float32)[labels]
    assert float(nn.softmax_cross_entropy(logits, onehot)) == pytest.approx(ce, rel=1e-5)
    assert float(nn.categorical_cross_entropy(np.exp(logp), onehot)) == pytest.approx(ce, rel=1e-5)


def test_probabilities_at_zero_and_one_give_finite_loss_and_gradient():
    p = jnp.array([0.0, 1.0, 0.0, 1.0], jnp.float32)
    t = jnp.array([1.0, 0.0, 0.0, 1.0], jnp.float32)
    loss, g = jax.value_and_grad(nn.binary_cross_entropy)(p, t)
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    # Wrong-and-certain predictions still get a gradient pushing the right way.
    assert float(g[0]) < 0 and float(g[1]) > 0
    probs = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], jnp.float32)
    onehot = jnp.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], jnp.float32)
    loss, g = jax.value_and_grad(nn.categorical_cross_entropy)(probs, onehot)
    assert np.isfinite(loss) and np.all(np.isfinite(g)) and float(g[0, 0]) < 0


def test_extreme_logits_give_finite_loss_and_gradient():
    logits = jnp.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], jnp.float32)
    labels = jnp.array([1, 0])
    loss, g = jax.value_and_grad(nn.softmax_cross_entropy)(logits, labels)
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    assert float(loss) == pytest.approx((2e4 + (1e4 + math.log(2) + 1e4)) / 2, rel=1e-6)
    z = jnp.array([1e4, -1e4, 1e4, -1e4], jnp.float32)
    t = jnp.array([0.0, 1.0, 1.0, 0.0], jnp.float32)
    loss, g = jax.value_and_grad(nn.binary_cross_entropy_with_logits)(z, t)
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    np.testing.assert_allclose(g, (np.array([1.0, 0.0, 1.0, 0.0]) - t) / 4)


def test_bce_gradient_wrt_logit_is_prediction_minus_label():
    # The deck: ∂L_BCE/∂z = ŷ − y ("the log cancels the exp").
    z = jnp.array([-2.0, 0.3, 1.7], jnp.float32)
    t = jnp.array([1.0, 0.0, 1.0], jnp.float32)
    g = jax.grad(lambda z: nn.binary_cross_entropy(nn.sigmoid(z), t) * 3)(z)
    np.testing.assert_allclose(g, nn.sigmoid(z) - t, rtol=1e-5)


def test_finite_difference_gradients():
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
        check_grads(lambda a: nn.mse(a, b), (a,), order=2, modes=["rev"])
        check_grads(lambda a: nn.mae(a, b), (a,), order=1, modes=["rev"])
        p, t = rng.uniform(0.1, 0.9, size=6), (rng.uniform(size=6) > 0.5).astype(float)
        check_grads(lambda p: nn.binary_cross_entropy(p, t), (p,), order=2, modes=["rev"], eps=1e-5)
        check_grads(lambda z: nn.binary_cross_entropy_with_logits(z, t), (a.ravel()[:6],), order=2,
                    modes=["rev"])
        logits, labels = rng.normal(size=(5, 4)), rng.integers(0, 4, size=5)
        check_grads(lambda z: nn.softmax_cross_entropy(z, labels), (logits,), order=2, modes=["rev"])
        q = rng.dirichlet(np.ones(4), size=5)
        onehot = np.eye(4)[labels]
        check_grads(lambda q: nn.categorical_cross_entropy(q, onehot), (q,), order=1, modes=["rev"],
                    eps=1e-6)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="shape"):
        nn.mse(jnp.zeros((3,)), jnp.zeros((4,)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        nn.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 3]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        nn.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.array([-1, 0]))
    with pytest.raises(ValueError, match="labels must be integer class indices of shape"):
        nn.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match="probabilities"):
        nn.binary_cross_entropy(jnp.array([1.5]), jnp.array([1.0]))
    with pytest.raises(ValueError, match="integer"):
        nn.softmax_cross_entropy(jnp.zeros((2, 3)), jnp.array([0.0, 1.0]))


def test_out_of_range_label_under_jit_is_nan_not_silent():
    f = jax.jit(nn.softmax_cross_entropy)
    assert np.isnan(f(jnp.zeros((2, 3)), jnp.array([0, 7])))
    assert np.isfinite(f(jnp.zeros((2, 3)), jnp.array([0, 2])))


def test_softmax_cross_entropy_with_masked_logits_and_soft_targets():
    # A −inf logit (the masking idiom) whose target is 0 adds 0·log 0 = 0, not NaN (fuzzing found
    # the NaN from 0·(−inf)); the row [0, 0] against [½, ½] costs log 2.
    logits = jnp.array([[-jnp.inf, 0.0], [0.0, 0.0]])
    targets = jnp.array([[0.0, 1.0], [0.5, 0.5]])
    assert float(nn.softmax_cross_entropy(logits, targets)) == pytest.approx(math.log(2) / 2, rel=1e-6)
    g = jax.grad(nn.softmax_cross_entropy)(logits, targets)
    np.testing.assert_allclose(g, [[0.0, 0.0], [0.0, 0.0]], atol=1e-7)  # softmax(z) − y, halved by the mean
    # A masked class that has target mass is infinitely wrong, honestly.
    assert float(nn.softmax_cross_entropy(logits, jnp.array([[0.5, 0.5], [0.5, 0.5]]))) == math.inf
    # Finite logits: the same as the integer-label form and as −Σ y log softmax written out.
    z = jax.random.normal(jax.random.key(3), (5, 4))
    y = jax.random.randint(jax.random.key(4), (5,), 0, 4)
    np.testing.assert_allclose(nn.softmax_cross_entropy(z, jax.nn.one_hot(y, 4)), nn.softmax_cross_entropy(z, y),
                               rtol=1e-6)
    soft = jax.nn.softmax(jax.random.normal(jax.random.key(5), (5, 4)))
    np.testing.assert_allclose(nn.softmax_cross_entropy(z, soft),
                               np.mean(-np.sum(np.asarray(soft) * np.asarray(jax.nn.log_softmax(z)), -1)), rtol=1e-6)
