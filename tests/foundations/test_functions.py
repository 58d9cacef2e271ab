import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

from mlwork import foundations as fd

X = np.linspace(-2.0, 2.0, 9, dtype=np.float32)


def test_parametric_families_follow_their_formulas():
    np.testing.assert_allclose(fd.linear(X, {"m": 2.0, "b": -1.0}), 2 * X - 1, rtol=1e-6)
    coeffs = np.array([1.0, -3.0, 0.5, 2.0], np.float32)  # a_0 + a_1 x + a_2 x^2 + a_3 x^3
    np.testing.assert_allclose(fd.polynomial(X, {"a": coeffs}), np.polyval(coeffs[::-1], X), rtol=1e-5)
    np.testing.assert_allclose(fd.exponential(X, {"A": 1.5, "k": -0.7}), 1.5 * np.exp(-0.7 * X), rtol=1e-6)
    # The deck's a^x is A = 1, k = ln a.
    assert float(fd.exponential(3.0, {"A": 1.0, "k": math.log(2.0)})) == pytest.approx(8.0, rel=1e-6)
    np.testing.assert_allclose(
        fd.sinusoid(X, {"A": 2.0, "omega": 3.0, "phi": 0.5}), 2 * np.sin(3 * X + 0.5), atol=1e-6
    )
    np.testing.assert_allclose(fd.sigmoid_family(X, {"w": 4.0, "b": 1.0}), expit(4 * X + 1), rtol=1e-6)
    # The deck's evaluations f(3) = 9, g(-1) = -1.
    assert float(fd.polynomial(3.0, {"a": jnp.array([0.0, 0.0, 1.0])})) == 9.0
    assert float(fd.linear(-1.0, {"m": 2.0, "b": 1.0})) == -1.0


def test_families_are_differentiable_in_theta_and_x():
    # d/dm (m x + b) = x; d/dx sigma(w x + b) = w sigma (1 - sigma).
    g = jax.grad(lambda th: jnp.sum(fd.linear(X, th)))({"m": 1.0, "b": 0.0})
    assert float(g["m"]) == pytest.approx(float(X.sum()), abs=1e-5)
    assert float(g["b"]) == pytest.approx(len(X))
    dx = jax.grad(lambda x: fd.sigmoid_family(x, {"w": 2.0, "b": 0.5}))(0.3)
    s = expit(2 * 0.3 + 0.5)
    assert float(dx) == pytest.approx(2 * s * (1 - s), rel=1e-5)
    with pytest.raises(ValueError, match=r"theta must be a dict with keys \['m', 'b'\] for linear"):
        fd.linear(X, {"slope": 1.0, "b": 0.0})


def test_composition_order_matters():
    def f(x):
        return x**2

    def g(x):
        return x + 1

    fg, gf = fd.compose(f, g), fd.compose(g, f)
    assert float(fg(2.0)) == 9.0 and float(gf(2.0)) == 5.0  # (x + 1)^2 vs x^2 + 1
    assert float(jax.grad(fg)(2.0)) == 6.0  # chain rule: 2(x + 1)
    assert float(fd.compose()(4.0)) == 4.0
    three = fd.compose(jnp.sin, f, g)
    assert float(three(0.5)) == pytest.approx(math.sin(2.25), rel=1e-6)
    with pytest.raises(ValueError, match=r"fs\[1\] must be a callable"):
        fd.compose(f, 3)


@pytest.mark.parametrize(
    "f, exact, bracket, x0",
    [
        (lambda x: x + 3, lambda y: y - 3, (-20.0, 20.0), 0.0),
        (lambda x: 2 * x, lambda y: y / 2, (-20.0, 20.0), 0.0),
        (jnp.exp, np.log, (-10.0, 5.0), 1.0),
        (jnp.square, np.sqrt, (0.0, 10.0), 1.0),  # the branch x >= 0
    ],
    ids=["x+3", "2x", "exp", "square"],
)
def test_inverse_of_the_deck_pairs(f, exact, bracket, x0):
    y = np.array([0.5, 1.0, 4.0, 9.0], np.float32)
    np.testing.assert_allclose(fd.inverse(f, y, bracket), exact(y), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(fd.inverse(f, y, x0=x0, method="newton"), exact(y), rtol=2e-6, atol=1e-6)


def test_inverse_function_theorem_gradient_and_vmap():
    # d/dy ln y = 1/y, through the bisection solve of exp(x) = y.
    dlog = jax.grad(lambda y: fd.inverse(jnp.exp, y, (-10.0, 10.0)))(4.0)
    assert float(dlog) == pytest.approx(0.25, rel=1e-5)
    dsqrt = jax.grad(lambda y: fd.inverse(jnp.square, y, x0=1.0))(9.0)
    assert float(dsqrt) == pytest.approx(1 / 6, rel=1e-5)
    ys = jnp.array([1.0, 2.0, 3.0])
    out = jax.jit(jax.vmap(lambda y: fd.inverse(jnp.exp, y, (-10.0, 10.0))))(ys)
    np.testing.assert_allclose(out, np.log([1.0, 2.0, 3.0]), atol=1e-6)


def _cubic(t):
    return t**3 + t  # strictly increasing


@given(st.floats(-4.0, 4.0))
def test_inverse_undoes_f(x):
    # f^{-1}(f(x)) = x; one module-level f, so the bisection compiles once for all examples.
    y = np.float32(x) ** 3 + np.float32(x)
    assert float(fd.inverse(_cubic, y, (-5.0, 5.0))) == pytest.approx(x, abs=2e-5)


def test_inverse_bad_input():
    with pytest.raises(ValueError, match="bracket must be an interval enclosing a solution"):
        fd.inverse(jnp.exp, -1.0, (-5.0, 5.0))  # -1 is outside the range of exp
    with pytest.raises(ValueError, match="x0 must be a starting point for newton"):
        fd.inverse(jnp.exp, 2.0)
    with pytest.raises(ValueError, match="y must be a value that newton can reach"):
        fd.inverse(jnp.square, 4.0, x0=0.0)  # f'(0) = 0: the Newton step is undefined
    with pytest.raises(ValueError, match="y must be finite"):
        fd.inverse(jnp.exp, jnp.nan, (-5.0, 5.0))
    with pytest.raises(ValueError, match="method must be one of"):
        fd.inverse(jnp.exp, 1.0, (-5.0, 5.0), method="secant")


def test_fit_curve_recovers_least_squares_line():
    x = np.linspace(-1.0, 1.0, 32, dtype=np.float32)
    rng = np.random.default_rng(0)
    y = (1.7 * x - 0.4 + 0.1 * rng.standard_normal(32)).astype(np.float32)
    m_ls, b_ls = np.polyfit(x, y, 1)  # the closed-form least-squares answer
    result = fd.fit_curve(fd.linear, {"m": 0.0, "b": 0.0}, x, y, optax.sgd(0.5), steps=200)
    assert float(result.params["m"]) == pytest.approx(m_ls, abs=1e-4)
    assert float(result.params["b"]) == pytest.approx(b_ls, abs=1e-4)
    assert result.losses.shape == (201,)
    losses = np.asarray(result.losses)
    assert losses[0] == pytest.approx(np.mean(y**2), rel=1e-5)  # J(theta_0) with theta_0 = 0
    assert np.all(np.diff(losses) <= 1e-7)


def test_fit_curve_with_adam_is_jittable():
    x = jnp.linspace(0.0, 2.0, 20)
    y = 0.5 * jnp.exp(1.2 * x)

    @jax.jit
    def run(theta0):
        return fd.fit_curve(fd.exponential, theta0, x, y, optax.adam(0.05), steps=400)

    result = run({"A": 1.0, "k": 0.0})
    assert float(result.params["A"]) == pytest.approx(0.5, rel=2e-2)
    assert float(result.params["k"]) == pytest.approx(1.2, rel=1e-2)
    assert float(result.losses[-1]) < 1e-3 * float(result.losses[0])


@pytest.mark.parametrize("name, lr", [("momentum", 0.1), ("adam", 0.05)])
def test_fit_curve_with_mlwork_optim(name, lr):
    from mlwork import optim

    x = np.linspace(-1.0, 1.0, 32, dtype=np.float32)
    y = (2.5 * x + 0.3).astype(np.float32)
    m_ls, b_ls = np.polyfit(x, y, 1)
    result = fd.fit_curve(fd.linear, {"m": 0.0, "b": 0.0}, x, y, optim.optimizer(name, lr), steps=600)
    assert float(result.params["m"]) == pytest.approx(m_ls, abs=1e-3)
    assert float(result.params["b"]) == pytest.approx(b_ls, abs=1e-3)


def test_fit_curve_bad_input():
    x = jnp.linspace(-1.0, 1.0, 8)
    y = 3.0 * x
    theta = {"m": 0.0, "b": 0.0}
    with pytest.raises(ValueError, match="optimizer must be a step size under which the loss stays finite.*step"):
        fd.fit_curve(fd.linear, theta, x * 1e3, y * 1e3, optax.sgd(10.0), steps=100)
    with pytest.raises(ValueError, match="optimizer must be an optax.GradientTransformation"):
        fd.fit_curve(fd.linear, theta, x, y, "adam")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        fd.fit_curve(fd.linear, theta, x, y, optax.sgd(0.1), steps=0)
    with pytest.raises(ValueError, match="y must be finite"):
        fd.fit_curve(fd.linear, theta, x, y.at[0].set(jnp.inf), optax.sgd(0.1))
    with pytest.raises(ValueError, match="shape"):
        fd.fit_curve(fd.linear, theta, x, y[:4], optax.sgd(0.1))
