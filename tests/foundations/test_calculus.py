import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from mlwork import foundations as fd


def _slope(hs, errors) -> float:
    """Slope of log(error) against log(h): the empirical order of convergence."""
    return float(np.polyfit(np.log(hs), np.log(errors), 1)[0])


# --------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------


def test_limit_of_the_deck_table():
    result = fd.limit(lambda x: 3 * x + 1, 2.0)
    assert result.exists and result.kind == "converges"
    assert result.value == pytest.approx(7.0, abs=1e-5)
    table = dict(result.table)  # the deck's x = 1.9, 1.99, 1.999, 2.001, 2.01, 2.1
    for x, fx in [(1.9, 6.7), (1.99, 6.97), (1.999, 6.997), (2.001, 7.003), (2.01, 7.03), (2.1, 7.3)]:
        key = min(table, key=lambda t, x=x: abs(t - x))
        assert key == pytest.approx(x, abs=1e-6) and table[key] == pytest.approx(fx, abs=1e-5)


def test_famous_limits():
    sinc = fd.limit(lambda x: jnp.sin(x) / x, 0.0)
    assert sinc.exists and sinc.value == pytest.approx(1.0, abs=1e-6)
    at_infinity = fd.limit(lambda x: (2 * x + 1) / x, math.inf)
    assert at_infinity.exists and at_infinity.value == pytest.approx(2.0, abs=1e-5)
    assert at_infinity.right is None
    assert fd.limit(lambda x: 1 / x, math.inf).value == pytest.approx(0.0, abs=1e-6)
    assert fd.limit(jax.nn.sigmoid, -math.inf).value == pytest.approx(0.0, abs=1e-6)
    root = fd.limit(jnp.sqrt, 0.0, side="right")  # error sqrt(h): slow, but geometric
    assert root.exists and root.value == pytest.approx(0.0, abs=1e-4) and root.left is None


def test_jump_divergence_and_oscillation_are_reported():
    step = fd.limit(lambda x: jnp.where(x >= 0, 1.0, 0.0), 0.0)
    assert not step.exists and step.kind == "jump" and math.isnan(step.value)
    assert step.left == 0.0 and step.right == 1.0
    assert fd.limit(lambda x: jnp.where(x >= 0, 1.0, 0.0), 0.0, side="right").value == 1.0
    pole = fd.limit(lambda x: 1 / x, 0.0)
    assert pole.kind == "diverges" and pole.left == -math.inf and pole.right == math.inf
    assert math.isnan(pole.value)
    assert fd.limit(lambda x: 1 / x**2, 0.0).value == math.inf
    assert fd.limit(lambda x: jnp.log(jnp.abs(x)), 0.0).value == -math.inf
    assert fd.limit(lambda x: jnp.sin(1 / x), 0.0).kind == "oscillates"
    assert fd.limit(jnp.sqrt, 0.0).kind == "undefined"  # NaN to the left of 0


def test_limit_bad_input():
    with pytest.raises(ValueError, match="side='right' is impossible"):
        fd.limit(jnp.exp, math.inf, side="right")
    with pytest.raises(ValueError, match="a must be a real number"):
        fd.limit(jnp.exp, math.nan)
    with pytest.raises(ValueError, match="side must be one of"):
        fd.limit(jnp.exp, 0.0, side="up")


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
    with pytest.raises(ValueError, match="gradient needs f to return a scalar"):
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
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        fd.nth_derivative(jnp.exp, -1)


# --------------------------------------------------------------------------------------------
# Integrals
# --------------------------------------------------------------------------------------------


def test_integral_of_x_squared_from_0_to_2():
    def sq(x):
        return x * x

    assert float(fd.simpson(sq, 0.0, 2.0, 2)) == pytest.approx(8 / 3, rel=1e-6)  # exact for cubics
    assert float(fd.trapezoid(sq, 0.0, 2.0, 400)) == pytest.approx(8 / 3, rel=1e-4)
    # Left sums under-, right sums over-estimate an increasing function; the exact gap is
    # (f(b) - f(a)) dx = 4 * 2/n.
    n = 64
    left, right = float(fd.riemann_sum(sq, 0.0, 2.0, n)), float(fd.riemann_sum(sq, 0.0, 2.0, n, "right"))
    assert left < 8 / 3 < right
    assert right - left == pytest.approx(8 / n, rel=1e-5)
    assert float(fd.riemann_sum(sq, 2.0, 0.0, n, "midpoint")) == pytest.approx(-8 / 3, rel=1e-3)


def test_quadrature_convergence_orders():
    ns = np.array([4, 8, 16, 32, 64])
    exact = math.e - 1.0  # int_0^1 e^x dx
    orders = {}
    for rule in ("left", "right", "midpoint"):
        errors = [abs(float(fd.riemann_sum(jnp.exp, 0.0, 1.0, int(n), rule)) - exact) for n in ns]
        orders[rule] = _slope(1 / ns, errors)
    errors = [abs(float(fd.trapezoid(jnp.exp, 0.0, 1.0, int(n))) - exact) for n in ns]
    orders["trapezoid"] = _slope(1 / ns, errors)
    simpson_ns = np.array([4, 8, 16, 32])
    errors = [abs(float(fd.simpson(jnp.sin, 0.0, math.pi, int(n))) - 2.0) for n in simpson_ns]
    orders["simpson"] = _slope(1 / simpson_ns, errors)
    expected = {"left": 1, "right": 1, "midpoint": 2, "trapezoid": 2, "simpson": 4}
    for rule, order in expected.items():
        assert orders[rule] == pytest.approx(order, abs=0.15), (rule, orders[rule])


def test_fundamental_theorem_of_calculus():
    # d/dx int_a^x f(t) dt = f(x), with jax.grad through the quadrature.
    area = fd.antiderivative(jnp.cos, 0.0)
    xs = jnp.array([0.3, 1.0, 2.5])
    np.testing.assert_allclose(jax.vmap(jax.grad(area))(xs), np.cos(np.asarray(xs)), atol=1e-5)
    np.testing.assert_allclose(jax.vmap(area)(xs), np.sin(np.asarray(xs)), atol=1e-5)
    # Integration by parts: int_0^x t e^t dt = e^x (x - 1) + 1.
    by_parts = fd.antiderivative(lambda t: t * jnp.exp(t), 0.0)
    for x in (0.5, 1.0, 2.0):
        assert float(by_parts(x)) == pytest.approx(math.exp(x) * (x - 1) + 1, rel=1e-5)
        assert float(jax.grad(by_parts)(x)) == pytest.approx(x * math.exp(x), rel=1e-4)
    # FTC part 2 on the deck's example, F(x) = x^3/3.
    assert float(fd.integrate(lambda t: t * t, 0.0, 2.0)) == pytest.approx(8 / 3, rel=1e-6)


def test_gaussian_density_integrates_to_one_and_gives_its_mean():
    mu, sigma = 1.5, 0.7

    def pdf(x):
        return jax.scipy.stats.norm.pdf(x, mu, sigma)

    inf = math.inf
    assert float(fd.integrate(pdf, -inf, inf)) == pytest.approx(1.0, abs=1e-5)
    assert float(fd.integrate(lambda x: x * pdf(x), -inf, inf)) == pytest.approx(mu, abs=1e-4)
    variance = fd.integrate(lambda x: (x - mu) ** 2 * pdf(x), -inf, inf)
    assert float(variance) == pytest.approx(sigma**2, abs=1e-4)
    assert float(fd.integrate(pdf, mu, inf)) == pytest.approx(0.5, abs=1e-5)
    assert float(fd.integrate(pdf, -inf, 1.0)) == pytest.approx(stats.norm.cdf(1.0, mu, sigma), abs=1e-5)
    assert float(fd.integrate(pdf, inf, -inf)) == pytest.approx(-1.0, abs=1e-5)
    # P(a <= X <= b) against scipy's CDF.
    prob = fd.integrate(pdf, 0.5, 2.0, n=64)
    expected = stats.norm.cdf(2.0, mu, sigma) - stats.norm.cdf(0.5, mu, sigma)
    assert float(prob) == pytest.approx(expected, abs=1e-6)


def test_quadrature_under_jit_and_grad_in_the_limits():
    def f(x):
        return x * x

    integral = jax.jit(lambda a, b: fd.simpson(f, a, b, 8))
    assert float(integral(1.0, 3.0)) == pytest.approx(26 / 3, rel=1e-6)
    d_da, d_db = jax.grad(integral, argnums=(0, 1))(1.0, 3.0)
    assert float(d_da) == pytest.approx(-1.0, rel=1e-5) and float(d_db) == pytest.approx(9.0, rel=1e-5)


def test_quadrature_bad_input():
    for bad_n in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            fd.riemann_sum(jnp.exp, 0.0, 1.0, bad_n)
    with pytest.raises(ValueError, match="n must be even"):
        fd.simpson(jnp.exp, 0.0, 1.0, 5)
    with pytest.raises(ValueError, match="a and b must be finite"):
        fd.trapezoid(jnp.exp, 0.0, jnp.inf, 10)
    with pytest.raises(ValueError, match="rule must be one of"):
        fd.riemann_sum(jnp.exp, 0.0, 1.0, 4, rule="upper")
    with pytest.raises(ValueError, match="a and b must be scalars"):
        fd.simpson(jnp.exp, jnp.zeros(2), 1.0, 4)
    with pytest.raises(ValueError, match="must not be NaN"):
        fd.integrate(jnp.exp, jnp.nan, 1.0)


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
