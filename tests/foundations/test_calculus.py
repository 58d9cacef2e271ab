import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlwork import foundations as fd


def _slope(hs, errors) -> float:
    """Slope of log(error) against log(h): the empirical order of convergence."""
    return float(np.polyfit(np.log(hs), np.log(errors), 1)[0])


# --------------------------------------------------------------------------------------------
# Derivatives
# --------------------------------------------------------------------------------------------


def test_derivatives_of_the_deck_examples():
    xs = jnp.array([-2.0, 0.5, 3.0])
    np.testing.assert_allclose(fd.derivative(jnp.square, xs), 2 * xs, rtol=1e-3, atol=1e-3)
    assert float(fd.derivative(jnp.square, 3.0, method="forward")) == pytest.approx(6.0, abs=1e-2)
    d = fd.nth_derivative
    # Power rule: d/dx x^n = n x^(n-1), incl. x^100, x^-1, sqrt x and the constant rule.
    x = 1.3
    cases = [
        (lambda t: t**3, 3 * x**2),
        (lambda t: t**5, 5 * x**4),
        (lambda t: t**100, 100 * x**99),
        (lambda t: 1 / t, -1 / x**2),
        (jnp.sqrt, 0.5 / math.sqrt(x)),
        (lambda t: jnp.ones_like(t), 0.0),
    ]
    for k, (f, exact) in enumerate(cases):
        assert float(d(f, 1)(x)) == pytest.approx(exact, rel=1e-5)
        # x^100 has f'''/f' ~ 10^4, so its central difference needs a smaller step than the
        # default (tuned for f''' ~ f): the O(h^2) term is h^2 f'''/6.
        h = 1e-4 if k == 2 else None
        assert float(fd.derivative(f, x, h)) == pytest.approx(exact, rel=2e-3, abs=1e-6)
    # Chain rule: d/dx (x^2 + 1)^3 = 6x (x^2 + 1)^2.
    for t in (0.5, -1.2, 2.0):
        assert float(d(lambda u: (u**2 + 1) ** 3, 1)(t)) == pytest.approx(6 * t * (t**2 + 1) ** 2, rel=1e-5)
    # Higher derivatives: (x^3)'' = 6x, sin'''' = sin, e^x is its own derivative.
    assert float(d(lambda t: t**3, 2)(2.0)) == pytest.approx(12.0)
    assert float(d(jnp.sin, 4)(0.7)) == pytest.approx(math.sin(0.7), rel=1e-5)
    assert float(d(jnp.exp, 1)(1.0)) == pytest.approx(math.e, rel=1e-6)
    assert float(d(jnp.exp, 0)(1.0)) == pytest.approx(math.e, rel=1e-6)


def test_partial_derivatives_gradient_and_hessian():
    def f(x, y):
        return x**2 * y + 3 * x * y**2

    x, y = 1.5, -2.0
    assert float(fd.partial(f, 0)(x, y)) == pytest.approx(2 * x * y + 3 * y**2)  # 2xy + 3y^2
    assert float(fd.partial(f, 1)(x, y)) == pytest.approx(x**2 + 6 * x * y)  # x^2 + 6xy

    def fv(v):
        return f(v[0], v[1])

    v = jnp.array([x, y])
    np.testing.assert_allclose(fd.gradient(fv)(v), [2 * x * y + 3 * y**2, x**2 + 6 * x * y], rtol=1e-6)
    hand = [[2 * y, 2 * x + 6 * y], [2 * x + 6 * y, 6 * x]]
    np.testing.assert_allclose(fd.hessian(fv)(v), hand, rtol=1e-6)
    # The gradient points uphill: a small step along it increases f.
    g = fd.gradient(fv)(v)
    assert float(fv(v + 1e-3 * g)) > float(fv(v))
    with pytest.raises(ValueError, match="f must be a scalar-valued function for gradient"):
        fd.gradient(lambda v: v * 2)(v)


def test_finite_difference_errors_fall_as_h_and_h_squared_until_round_off():
    x0 = jnp.float32(0.5)
    exact = math.exp(0.5)  # f = exp, f' = exp
    forward_h = np.logspace(-1, -2.5, 7)
    central_h = np.logspace(-0.5, -1.5, 7)
    err_fwd = [abs(float(fd.derivative(jnp.exp, x0, h, "forward")) - exact) for h in forward_h]
    err_ctr = [abs(float(fd.derivative(jnp.exp, x0, h, "central")) - exact) for h in central_h]
    assert _slope(forward_h, err_fwd) == pytest.approx(1.0, abs=0.1)
    assert _slope(central_h, err_ctr) == pytest.approx(2.0, abs=0.1)
    # ...until round-off (about eps |f| / h) takes over: at h = 1e-7, a step of one or two
    # float32 ulps, both are far worse than at the moderate steps above.
    for method, errors in (("forward", err_fwd), ("central", err_ctr)):
        tiny = abs(float(fd.derivative(jnp.exp, x0, 1e-7, method)) - exact)
        assert tiny > 10 * min(errors), method
    # jax.grad has no truncation error at all.
    assert float(jax.grad(jnp.exp)(x0)) == pytest.approx(exact, rel=1e-6)


def test_derivative_bad_input():
    with pytest.raises(ValueError, match="h must be positive"):
        fd.derivative(jnp.exp, 1.0, 0.0)
    with pytest.raises(ValueError, match="h must be positive"):
        fd.derivative(jnp.exp, 1.0, -1e-3)
    with pytest.raises(ValueError, match="x must be finite"):
        fd.derivative(jnp.exp, jnp.inf)
    with pytest.raises(ValueError, match="method must be one of"):
        fd.derivative(jnp.exp, 1.0, method="backward")
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        fd.nth_derivative(jnp.exp, -1)


def test_a_step_out_of_the_domain_raises_naming_x_and_h():
    # The cases: the old default step (5e-3) left the domain and returned NaN.
    with pytest.raises(ValueError, match=r"x and h must be such that f\(x - h\) is finite.*x=0.001, h=0.005"):
        fd.derivative(jnp.log, 1e-3, h=5e-3)
    with pytest.raises(ValueError, match=r"f\(x \+ h\) is finite.*x=0.999"):
        fd.derivative(jnp.arccos, 0.999, h=5e-3, method="forward")
    with pytest.raises(ValueError, match=r"x and h must be such that f\(x ± h\) is finite for some step"):
        fd.derivative(jnp.sqrt, 0.0)  # no central step stays in the domain
    assert float(fd.derivative(jnp.sqrt, 1e-3)) == pytest.approx(0.5 / math.sqrt(1e-3), rel=1e-3)
    # Under jit no check can run: NaN marks the failure.
    assert math.isnan(float(jax.jit(lambda x: fd.derivative(jnp.sqrt, x))(0.0)))


def _log_uniform(low, high):
    return st.floats(math.log10(low), math.log10(high)).map(lambda t: 10.0**t)


def _near_one():  # 1 - 10^-t: up to 1e-6 from the edge of arccos's domain
    return st.floats(0.1, 6.0).map(lambda t: 1.0 - 10.0**-t)


#: Smooth functions and points of their domains, near the edges included; the derivative's
#: scale where it can vanish (sin, x^3) for an absolute tolerance.
_SMOOTH = {
    "log": (jnp.log, _log_uniform(1e-8, 1e6), 0.0),
    "sqrt": (jnp.sqrt, _log_uniform(1e-8, 1e6), 0.0),
    "arccos": (jnp.arccos, _near_one(), 0.0),
    "arcsin": (lambda x: jnp.arcsin(-x), _near_one(), 0.0),
    "log1p": (jnp.log1p, _near_one().map(lambda x: -x), 0.0),
    "exp": (jnp.exp, st.floats(-20.0, 20.0), 0.0),
    "sin": (jnp.sin, st.floats(-1e4, 1e4), 1.0),
    "tanh": (jnp.tanh, st.floats(-4.0, 4.0), 0.0),
    "cube": (lambda x: x**3, st.floats(-1e3, 1e3), 1e-6),
    "reciprocal": (lambda x: 1 / x, _log_uniform(1e-6, 1e6), 0.0),
    "sigmoid": (jax.nn.sigmoid, st.floats(-10.0, 10.0), 0.0),
}


@given(data=st.data(), name=st.sampled_from(sorted(_SMOOTH)))
def test_the_default_step_is_within_one_percent_of_jax_grad(data, name):
    """Central differences with the chosen step against jax.grad (exact to rounding) on smooth
    functions, at points where some step stays in the domain: within 1%; forward differences
    within 2% (on functions whose values are not much larger than their derivative's)."""
    f, points, scale = _SMOOTH[name]
    x = np.float32(data.draw(points))
    exact = float(jax.grad(f)(jnp.float32(x)))
    got = float(fd.derivative(f, x))
    assert abs(got - exact) <= 1e-2 * abs(exact) + 1e-4 * scale, (x, got, exact)
    if abs(float(f(jnp.float32(x)))) <= 100 * (abs(exact) + scale):  # f not much larger than f'
        forward = float(fd.derivative(f, x, method="forward"))
        assert abs(forward - exact) <= 2e-2 * abs(exact) + 1e-3 * scale, (x, forward, exact)


# --------------------------------------------------------------------------------------------
# Gradient descent
# --------------------------------------------------------------------------------------------


def test_gradient_descent_path_matches_the_closed_form():
    # f(x) = (x - 3)^2: x_k = 3 + (x_0 - 3)(1 - 2 eta)^k.
    eta, steps = 0.1, 25
    result = fd.gradient_descent(lambda x: (x - 3.0) ** 2, 0.0, eta, steps)
    k = np.arange(steps + 1)
    expected = 3.0 + (0.0 - 3.0) * (1 - 2 * eta) ** k
    np.testing.assert_allclose(result.path, expected, rtol=1e-5)
    np.testing.assert_allclose(result.values, (expected - 3.0) ** 2, rtol=1e-4, atol=1e-9)
    # vmap over learning rates: eta = 0.5 jumps to the minimum in one step, 1.0 oscillates.
    etas = jnp.array([0.05, 0.5, 1.0])
    paths = jax.vmap(lambda lr: fd.gradient_descent(lambda x: (x - 3.0) ** 2, 0.0, lr, 4).path)(etas)
    np.testing.assert_allclose(paths[1], [0.0, 3.0, 3.0, 3.0, 3.0])
    np.testing.assert_allclose(paths[2], [0.0, 6.0, 0.0, 6.0, 0.0])


def test_gradient_descent_on_a_pytree():
    def bowl(p):
        return jnp.sum((p["w"] - 1.0) ** 2) + 2.0 * (p["b"] + 0.5) ** 2

    result = fd.gradient_descent(bowl, {"w": jnp.zeros(3), "b": 0.0}, 0.1, 100)
    assert result.path["w"].shape == (101, 3) and result.path["b"].shape == (101,)
    np.testing.assert_allclose(result.path["w"][-1], 1.0, atol=1e-5)
    assert float(result.path["b"][-1]) == pytest.approx(-0.5, abs=1e-5)
    assert np.all(np.diff(np.asarray(result.values)) <= 0)
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        fd.gradient_descent(bowl, {"w": jnp.zeros(3), "b": 0.0}, -0.1, 10)
    with pytest.raises(ValueError, match="x0 must be finite"):
        fd.gradient_descent(bowl, {"w": jnp.full(3, jnp.nan), "b": 0.0}, 0.1, 10)
