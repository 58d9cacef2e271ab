"""Loss-landscape slices against closed forms on a quadratic, and filter normalisation
against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlwork.train.diagnostics import filter_normalized_direction, interpolate, loss_along_line, loss_surface


def quadratic(params, centre):
    """J(θ) = Σ (θ − c)², leaf by leaf."""
    return sum(jnp.sum(jnp.square(p - c)) for p, c in zip(jax.tree.leaves(params), jax.tree.leaves(centre),
                                                          strict=True))


def _tree(seed):
    rng = np.random.default_rng(seed)
    return [{"W": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32), "b": jnp.asarray(rng.normal(size=3), jnp.float32)}]


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def test_line_matches_the_closed_form():
    a, b, c = _tree(0), _tree(1), _tree(2)
    alphas = np.array([-0.5, 0.0, 0.25, 1.0, 1.5], np.float32)
    got = np.asarray(loss_along_line(quadratic, a, b, alphas, c, chunk=2))
    fa, fb, fc = _flat(a), _flat(b), _flat(c)
    want = [np.sum(((1 - t) * fa + t * fb - fc) ** 2) for t in alphas.astype(np.float64)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(_flat(interpolate(a, b, 0.25)), 0.75 * fa + 0.25 * fb, rtol=1e-6)
    with pytest.raises(ValueError, match="same pytree structure"):
        loss_along_line(quadratic, a, {"x": 1.0}, alphas, c)


def test_surface_matches_the_closed_form_with_and_without_chunks():
    theta, d1, d2, c = _tree(3), _tree(4), _tree(5), _tree(6)
    alphas = np.linspace(-1, 1, 3, dtype=np.float32)
    betas = np.linspace(-0.5, 0.5, 4, dtype=np.float32)
    got = np.asarray(loss_surface(quadratic, theta, d1, d2, alphas, betas, c, chunk=5))
    assert got.shape == (4, 3)
    ft, f1, f2, fc = (_flat(t) for t in (theta, d1, d2, c))
    want = [[np.sum((ft + a * f1 + b * f2 - fc) ** 2) for a in alphas.astype(np.float64)]
            for b in betas.astype(np.float64)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(loss_surface(quadratic, theta, d1, d2, alphas, betas, c, chunk=None)),
                               got, rtol=1e-6)


def test_filter_normalised_directions_copy_each_filters_norm():
    rng = np.random.default_rng(7)
    params = {"mlp": [{"W": jnp.asarray(rng.normal(size=(5, 6)), jnp.float32), "b": jnp.ones(5)}],
              "Conv_0": {"kernel": jnp.asarray(rng.normal(size=(3, 3, 2, 4)), jnp.float32)}}
    d = filter_normalized_direction(jax.random.key(0), params)
    W, dW = np.asarray(params["mlp"][0]["W"]), np.asarray(d["mlp"][0]["W"])
    np.testing.assert_allclose(np.linalg.norm(dW, axis=1), np.linalg.norm(W, axis=1), rtol=1e-5)   # rows of W
    K, dK = np.asarray(params["Conv_0"]["kernel"]), np.asarray(d["Conv_0"]["kernel"])
    np.testing.assert_allclose(np.linalg.norm(dK.reshape(-1, 4), axis=0), np.linalg.norm(K.reshape(-1, 4), axis=0),
                               rtol=1e-5)                                                           # output channels
    assert not np.any(np.asarray(d["mlp"][0]["b"]))                                                 # biases stay put
    assert not np.allclose(dW / np.linalg.norm(dW), W / np.linalg.norm(W))                          # a random direction
    other = filter_normalized_direction(jax.random.key(1), params)
    assert not np.allclose(np.asarray(other["mlp"][0]["W"]), dW)


def test_a_changed_closure_is_seen_on_the_next_call():
    centre = {"c": 0.0}

    def loss(p):  # the same function object twice; what it closes over changes in between
        return (p["w"] - centre["c"]) ** 2

    a, b, alphas = {"w": jnp.array(0.0)}, {"w": jnp.array(2.0)}, jnp.array([0.0, 1.0])
    np.testing.assert_allclose(np.asarray(loss_along_line(loss, a, b, alphas)), [0.0, 4.0])
    centre["c"] = 2.0
    np.testing.assert_allclose(np.asarray(loss_along_line(loss, a, b, alphas)), [4.0, 0.0])
    d = {"w": jnp.array(1.0)}
    before = np.asarray(loss_surface(loss, a, d, d, jnp.array([0.0]), jnp.array([0.0])))
    centre["c"] = 3.0
    after = np.asarray(loss_surface(loss, a, d, d, jnp.array([0.0]), jnp.array([0.0])))
    assert before.ravel()[0] == pytest.approx(4.0) and after.ravel()[0] == pytest.approx(9.0)
