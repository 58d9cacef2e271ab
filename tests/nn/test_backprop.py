import math
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlwork import nn

COMBOS = [
    # (hidden activation, output activation, loss)
    ("relu", None, "mse"),
    ("sigmoid", None, "mse"),
    ("tanh", "sigmoid", "mse"),
    ("relu", "sigmoid", "binary_cross_entropy"),
    ("tanh", None, "binary_cross_entropy_with_logits"),
    ("relu", None, "softmax_cross_entropy"),
    ("sigmoid", "softmax", "categorical_cross_entropy"),
    ("tanh", "softmax", "mse"),
    ("identity", "tanh", "mse"),
]


def _targets(key, loss, batch, n_out):
    if loss == "softmax_cross_entropy":
        return jax.random.randint(key, (batch,), 0, n_out)
    if loss == "categorical_cross_entropy":
        return jax.nn.one_hot(jax.random.randint(key, (batch,), 0, n_out), n_out)
    if "binary" in loss:
        return jax.random.bernoulli(key, 0.5, (batch, n_out)).astype(jnp.float32)
    return jax.random.normal(key, (batch, n_out))


@pytest.mark.parametrize("hidden, output, loss", COMBOS)
@pytest.mark.parametrize("sizes", [(4, 7, 3), (5, 8, 6, 4, 3)])
def test_hand_written_backprop_equals_jax_grad(hidden, output, loss, sizes):
    # A fixed draw per case (zlib, not hash(): str hashes change per process). Probability-space
    # BCE is ill-conditioned where the sigmoid saturates (dL/da = 1/(1 − a) with 1 − a a few ulps),
    # so an unlucky draw there would compare rounding, not backprop.
    seed = zlib.crc32(repr((hidden, output, loss, sizes)).encode())
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    model = nn.mlp(sizes, activation=hidden, output_activation=output)
    params = model.init(k1, (sizes[0],))["params"]
    x = jax.random.normal(k2, (16, sizes[0]))
    y = _targets(k3, loss, 16, sizes[-1])

    def cost(p):
        return nn.LOSSES[loss](model.apply({"params": p, "state": {}}, x)[0], y)

    expected = jax.grad(cost)(params)
    got = nn.backprop(params, x, y, activation=hidden, output_activation=output, loss=loss)
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=1e-6)


def test_deck_single_neuron_example():
    # z = w·x + b, a = σ(z), L = (a − y)²; x = (0.5, 0.8, −0.3), w = (0.2, 0.4, −0.5), b = 0.1, y = 1.
    x, w, b, y = [0.5, 0.8, -0.3], [0.2, 0.4, -0.5], 0.1, 1.0
    z = sum(wi * xi for wi, xi in zip(w, x, strict=True)) + b
    a = 1 / (1 + math.exp(-z))
    dL_da, da_dz = 2 * (a - y), a * (1 - a)
    dL_dw = [dL_da * da_dz * xi for xi in x]
    dL_db = dL_da * da_dz
    assert z == pytest.approx(0.67)
    assert dL_db == pytest.approx(-0.1516, abs=1e-4)

    params = [{"W": jnp.array([w]), "b": jnp.array([b])}]
    grads = nn.backprop(params, jnp.array(x), jnp.array([y]), activation="relu",
                        output_activation="sigmoid", loss="mse")
    np.testing.assert_allclose(grads[0]["W"][0], dL_dw, rtol=1e-5)
    np.testing.assert_allclose(grads[0]["b"], [dL_db], rtol=1e-5)
    model = nn.mlp([3, 1], output_activation="sigmoid")
    auto = jax.grad(lambda p: nn.mse(model.apply({"params": p}, jnp.array(x))[0], jnp.array([y])))(params)
    np.testing.assert_allclose(auto[0]["W"][0], dL_dw, rtol=1e-5)


def test_backprop_bad_input():
    params = nn.mlp([3, 2]).init(jax.random.key(0))["params"]
    with pytest.raises(ValueError, match="loss must be one of 'mse'.*got 'hinge'"):
        nn.backprop(params, jnp.zeros((1, 3)), jnp.zeros((1, 2)), loss="hinge")
    with pytest.raises(ValueError, match="y must be of the network's output shape"):
        nn.backprop(params, jnp.zeros((4, 3)), jnp.zeros((4, 5)), loss="mse")
    with pytest.raises(ValueError, match="logits"):
        nn.backprop(params, jnp.zeros((4, 3)), jnp.zeros((4,), jnp.int32), output_activation="softmax",
                    loss="softmax_cross_entropy")
    # A gradient at infinite targets, inputs or weights is undefined: refused, not NaN (fuzzing
    # found MSE with y = +inf returning NaN gradients).
    for x, y, p, name in ((jnp.zeros((1, 3)), jnp.full((1, 2), jnp.inf), params, "y"),
                          (jnp.full((1, 3), -jnp.inf), jnp.zeros((1, 2)), params, "x"),
                          (jnp.zeros((1, 3)), jnp.zeros((1, 2)), [{"W": params[0]["W"].at[0, 0].set(jnp.inf),
                                                                   "b": params[0]["b"]}], "params"),
                          (jnp.zeros((1, 3)), jnp.full((1, 2), jnp.nan), params, "y")):
        with pytest.raises(ValueError, match=f"{name} must be finite"):
            nn.backprop(p, x, y, loss="mse")
