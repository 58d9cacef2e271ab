import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from mlwork import nn

Z = np.linspace(-6.0, 6.0, 25, dtype=np.float32)


def test_values_match_the_deck_formulas():
    np.testing.assert_allclose(nn.sigmoid(Z), 1.0 / (1.0 + np.exp(-Z.astype(np.float64))), rtol=1e-6)
    np.testing.assert_allclose(nn.relu(Z), np.maximum(0.0, Z))
    e, em = np.exp(Z.astype(np.float64)), np.exp(-Z.astype(np.float64))
    np.testing.assert_allclose(nn.tanh(Z), (e - em) / (e + em), rtol=1e-6, atol=1e-7)
    logits = np.array([1.0, 2.0, 3.0], np.float32)
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(nn.softmax(logits), expected, rtol=1e-6)
    assert float(nn.sigmoid(jnp.float32(0.702))) == pytest.approx(0.669, abs=5e-4)


def test_derivatives_match_the_deck_and_jax_grad():
    s = 1.0 / (1.0 + np.exp(-Z.astype(np.float64)))
    np.testing.assert_allclose(nn.sigmoid_grad(Z), s * (1 - s), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(nn.tanh_grad(Z), 1 - np.tanh(Z.astype(np.float64)) ** 2, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(nn.relu_grad(Z), (Z > 0).astype(np.float32))
    for f, df in [(nn.sigmoid, nn.sigmoid_grad), (nn.tanh, nn.tanh_grad), (nn.relu, nn.relu_grad)]:
        # jax.grad(tanh) is 1 − tanh², which loses relative precision in the tails: compare in
        # absolute terms there (our form matches the float64 oracle above to rtol 1e-5).
        np.testing.assert_allclose(jax.vmap(jax.grad(f))(Z), df(Z), rtol=1e-5, atol=1e-6)
    # ReLU'(0) = 1_{z>0} = 0, as the deck writes it and as jax.grad gives.
    assert float(nn.relu_grad(jnp.float32(0.0))) == 0.0
    assert float(jax.grad(nn.relu)(jnp.float32(0.0))) == 0.0


def test_softmax_jacobian_and_vjp():
    z = jnp.array([0.3, -1.2, 2.0, 0.0], jnp.float32)
    np.testing.assert_allclose(nn.softmax_grad(z), jax.jacobian(nn.softmax)(z), rtol=1e-5, atol=1e-7)
    g = jnp.array([1.0, -2.0, 0.5, 3.0], jnp.float32)
    _, vjp = jax.vjp(nn.softmax, z)
    np.testing.assert_allclose(nn.softmax_vjp(nn.softmax(z), g), vjp(g)[0], rtol=1e-5, atol=1e-6)
    # Rows of the Jacobian sum to zero: softmax outputs always sum to 1.
    np.testing.assert_allclose(nn.softmax_grad(z).sum(axis=0), 0.0, atol=1e-6)


def test_stable_at_extremes():
    big = jnp.array([-100.0, 100.0], jnp.float32)
    assert np.all(np.isfinite(nn.sigmoid(big)))
    assert float(nn.sigmoid(big)[1]) == 1.0 and float(nn.sigmoid(big)[0]) < 1e-40
    assert np.all(np.isfinite(nn.sigmoid_grad(big)))
    assert np.all(np.isfinite(jax.vmap(jax.grad(nn.sigmoid))(big)))
    logits = jnp.array([1e4, -1e4, 0.0, 5e3], jnp.float32)
    p = nn.softmax(logits)
    assert np.all(np.isfinite(p)) and float(p.sum()) == pytest.approx(1.0)
    assert np.all(np.isfinite(nn.log_softmax(logits)))
    assert float(nn.log_softmax(logits)[1]) == pytest.approx(-2e4)
    assert np.all(np.isfinite(jax.jacobian(nn.softmax)(logits)))


def test_finite_difference_gradients():
    with jax.enable_x64(True):
        z = jnp.linspace(-3.0, 3.0, 7, dtype=jnp.float64) + 0.05  # avoid ReLU's kink at 0
        for f in (nn.sigmoid, nn.tanh, nn.relu, nn.softmax, nn.log_softmax):
            check_grads(f, (z,), order=2, modes=["rev"], eps=1e-4)


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="activation must be one of .*; got 'swish'"):
        nn.get_activation("swish")
    assert nn.get_activation(None)(jnp.float32(2.0)) == 2.0
    assert math.isclose(float(nn.get_activation("linear")(jnp.float32(-1.5))), -1.5)
