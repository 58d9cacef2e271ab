import cmath
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlwork import foundations as fd


def test_no_fraction_squares_to_two():
    # The deck's proof by contradiction, checked for every denominator up to 20,000.
    assert fd.sqrt_fractions(2, 20_000) == []
    assert fd.sqrt_fractions(3, 2_000) == []
    # A perfect square has exactly one answer in lowest terms; the search is not vacuous.
    assert fd.sqrt_fractions(9, 500) == [(3, 1)]
    assert fd.sqrt_fractions(1, 10) == [(1, 1)]


def test_decimal_truncations_of_sqrt2_are_rational_and_never_square_to_two():
    terms = fd.sqrt_convergents(2, 6)
    assert terms[:4] == [Fraction(1), Fraction(14, 10), Fraction(141, 100), Fraction(1414, 1000)]
    gaps = [abs(float(t) - math.sqrt(2)) for t in terms]
    assert all(g1 < g0 for g0, g1 in zip(gaps, gaps[1:], strict=False))
    assert all(t * t != 2 for t in terms)


@given(st.fractions(), st.fractions())
def test_midpoint_lies_strictly_between(a, b):
    if a == b:
        return
    lo, hi = min(a, b), max(a, b)
    m = fd.midpoint(lo, hi)
    assert isinstance(m, Fraction) and lo < m < hi


def test_rationals_between_are_distinct_and_inside():
    pts = fd.rationals_between("1/3", "1/2", 6)
    assert len(set(pts)) == 6 and pts == sorted(pts)
    assert all(Fraction(1, 3) < p < Fraction(1, 2) for p in pts)
    with pytest.raises(ValueError, match="a must be smaller than b"):
        fd.rationals_between(1, 1)
    with pytest.raises(ValueError, match="exact rational"):
        fd.midpoint(0.1, 1)


def test_closure_table_matches_the_deck():
    table = fd.closure_table()
    closed = {s: {op: c.closed for op, c in row.items()} for s, row in table.items()}
    assert closed == {
        "N": {"+": True, "-": False, "*": True, "/": False, "sqrt": False},
        "Z": {"+": True, "-": True, "*": True, "/": False, "sqrt": False},
        "Q": {"+": True, "-": True, "*": True, "/": True, "sqrt": False},
        "R": {"+": True, "-": True, "*": True, "/": True, "sqrt": False},
        "C": {"+": True, "-": True, "*": True, "/": True, "sqrt": True},
    }
    assert table["Q"]["sqrt"].counterexample.startswith("sqrt(")
    assert "i)" in table["R"]["sqrt"].counterexample  # sqrt of a negative real is imaginary
    assert table["N"]["+"].counterexample is None
    with pytest.raises(ValueError, match="systems"):
        fd.closure_table(systems=("H",))


def test_deck_complex_product_and_euler_identity():
    z = jnp.complex64(2 + 3j) * jnp.complex64(1 - 1j)
    assert complex(z) == 5 + 1j
    assert abs(complex(fd.euler(jnp.pi)) + 1) < 1e-6
    assert float(fd.modulus(3 + 4j)) == pytest.approx(5.0)
    assert float(fd.argument(-1.0)) == pytest.approx(math.pi)
    theta = jnp.linspace(-3.0, 3.0, 7)
    expected = np.cos(np.asarray(theta)) + 1j * np.sin(np.asarray(theta))
    np.testing.assert_allclose(np.asarray(fd.euler(theta)), expected, atol=1e-6)


def test_multiplying_by_i_rotates_by_90_degrees_and_powers_of_i_cycle():
    zs = jnp.array([1 + 0j, 2 + 3j, -1.5 - 0.5j], jnp.complex64)
    rotated = fd.rotate(zs, jnp.pi / 2)
    np.testing.assert_allclose(np.asarray(rotated), np.asarray(zs) * 1j, atol=1e-6)
    np.testing.assert_allclose(np.asarray(fd.modulus(rotated)), np.abs(np.asarray(zs)), rtol=1e-6)
    quarter = np.asarray(fd.argument(rotated) - fd.argument(zs)) % (2 * np.pi)
    np.testing.assert_allclose(quarter, np.pi / 2, atol=1e-6)
    powers = [complex(fd.rotate(1.0, k * jnp.pi / 2)) for k in range(9)]
    for k, p in enumerate(powers):
        assert abs(p - 1j**k) < 1e-6
        assert abs(p - powers[k % 4]) < 1e-6  # period 4


def test_polar_round_trip_jit_vmap_and_grad():
    r, theta = jnp.array([1.0, 2.5, 0.3]), jnp.array([0.3, -2.0, 3.0])
    z = jax.jit(fd.from_polar)(r, theta)
    np.testing.assert_allclose(np.asarray(fd.modulus(z)), np.asarray(r), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fd.argument(z)), np.asarray(theta), atol=1e-6)
    assert complex(fd.from_polar(2.0, 1.0)) == pytest.approx(cmath.rect(2.0, 1.0), abs=1e-6)
    # d|z|/da = a/|z| for z = a + 3i; darg/dtheta of a rotation is 1.
    g = jax.grad(lambda a: fd.modulus(jax.lax.complex(a, jnp.float32(3.0))))(jnp.float32(4.0))
    assert float(g) == pytest.approx(0.8, rel=1e-6)
    dtheta = jax.grad(lambda t: fd.argument(fd.rotate(1.0 + 1.0j, t)))(jnp.float32(0.2))
    assert float(dtheta) == pytest.approx(1.0, rel=1e-5)
    batched = jax.vmap(fd.rotate, in_axes=(0, None))(jnp.array([1j, -1 + 0j], jnp.complex64), jnp.pi)
    np.testing.assert_allclose(np.asarray(batched), [-1j, 1], atol=1e-6)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="theta must be finite"):
        fd.euler(jnp.array([0.0, jnp.inf]))
    with pytest.raises(ValueError, match="theta must be real"):
        fd.euler(1j)
    with pytest.raises(ValueError, match="z must be finite"):
        fd.rotate(complex(np.nan, 0), 1.0)
    with pytest.raises(ValueError, match="max_denominator must be a positive integer"):
        fd.sqrt_fractions(2, 0)
    with pytest.raises(ValueError, match="n must be"):
        fd.sqrt_fractions(-2)
