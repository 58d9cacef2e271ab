"""Limits: the deck's tables, the textbook limits the float32 table lost, and precision loss
reported instead of a confident wrong value — against closed forms over whole families."""

import math

import jax
import jax.numpy as jnp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlwork import foundations as fd


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
    with pytest.raises(ValueError, match="side must be 'left' or 'both' at a=inf"):
        fd.limit(jnp.exp, math.inf, side="right")
    with pytest.raises(ValueError, match="a must be a real number"):
        fd.limit(jnp.exp, math.nan)
    with pytest.raises(ValueError, match="side must be one of"):
        fd.limit(jnp.exp, 0.0, side="up")


def test_the_issue_limits_that_cancellation_destroyed():
    # (1 - cos x)/x^2 is exactly 0 in float32 for |x| <= 1e-4: the limit is 1/2, and the values
    # that left the trend are reported, not trusted.
    r = fd.limit(lambda x: (1 - jnp.cos(x)) / x**2, 0.0)
    assert r.exists and r.value == pytest.approx(0.5, abs=1e-6) and r.precision_lost_at is not None
    for f, a, expected in [(lambda x: (jnp.exp(x) - 1) / x, 0.0, 1.0),
                           (lambda x: (2.0**x - 1) / x, 0.0, math.log(2)),
                           (lambda x: (1 + 1 / x) ** x, math.inf, math.e)]:
        r = fd.limit(f, a)
        assert r.exists and r.value == pytest.approx(expected, rel=1e-6) and r.error < 1e-6
        assert r.dtype == "float64"


_FAMILIES = {
    # name: (f(x; c), a, the limit as a function of c) — hand-derived
    "expm1": (lambda c: lambda x: (jnp.exp(c * x) - 1) / x, 0.0, lambda c: c),
    "power": (lambda c: lambda x: (c**x - 1) / x, 0.0, lambda c: math.log(c)),
    "sinc": (lambda c: lambda x: jnp.sin(c * x) / x, 0.0, lambda c: c),
    "one_minus_cos": (lambda c: lambda x: (1 - jnp.cos(c * x)) / x**2, 0.0, lambda c: c * c / 2),
    "compound": (lambda c: lambda x: (1 + c / x) ** x, math.inf, lambda c: math.exp(c)),
    "rational_at_infinity": (lambda c: lambda x: (c * x + 1) / (2 * x - 3), math.inf, lambda c: c / 2),
    "removable": (lambda c: lambda x: (x**2 - c**2) / (x - c), "c", lambda c: 2 * c),
    "difference_quotient": (lambda c: lambda h: ((c + h) ** 3 - c**3) / h, 0.0, lambda c: 3 * c * c),
    "continuous": (lambda c: lambda x: 3 * x + c, "c", lambda c: 4 * c),
}


@given(name=st.sampled_from(sorted(_FAMILIES)), c=st.floats(0.2, 5.0), sign=st.sampled_from([1.0, -1.0]))
def test_textbook_limits_are_found_to_the_tolerance(name, c, sign):
    make, a, limit_of = _FAMILIES[name]
    c = sign * c if name not in ("power", "compound") else (c if name == "power" else sign * c / 2)
    if name == "power" and sign < 0:
        c = 1 / c  # bases below 1 too
    a = c if a == "c" else a
    r = fd.limit(make(c), a)
    expected = limit_of(c)
    assert r.kind == "converges", (r.kind, r.value, r.error, r.table)
    assert abs(r.value - expected) <= 1e-3 * max(1.0, abs(expected)), (r.value, expected)
    assert r.error <= 1e-3 * max(1.0, abs(expected))


@given(name=st.sampled_from(sorted(_FAMILIES)), c=st.floats(0.2, 5.0))
def test_in_float32_a_converged_limit_is_right_and_lost_precision_is_reported(name, c):
    """A function that only computes in float32 (it closes over a float32 array, which strict
    promotion keeps from mixing with float64): limit falls back to float32, and whatever it
    calls converged is within the tolerance; otherwise it says imprecise, not a wrong value."""
    make, a, limit_of = _FAMILIES[name]
    c = c / 2 if name == "compound" else c
    a = c if a == "c" else a
    w = jnp.float32(c)
    r = fd.limit(make(w), a)
    assert r.dtype == "float32"
    expected = limit_of(c)
    if r.kind == "converges":
        assert abs(r.value - expected) <= 1e-3 * max(1.0, abs(expected)), (r.value, expected, r.table)
    else:
        assert r.kind in ("imprecise", "oscillates"), r.kind


def test_float32_cancellation_is_reported_as_imprecise():
    w = jnp.float32(1.0)
    r = fd.limit(lambda x: (1 - jnp.cos(w * x)) / (w * x) ** 2, 0.0)
    assert r.dtype == "float32" and r.kind == "imprecise" and not r.exists
    assert r.precision_lost_at is not None and r.precision_lost_at >= 1e-4
    assert abs(r.value - 0.5) <= r.error  # the estimate, with an honest error
