"""mlwork.theory.bounds: bound formulas against hand-computed values, shattering, argument checks."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special
from hypothesis import given
from hypothesis import strategies as st

from mlwork.theory import bounds

# ---------------------------------------------------------------------------------------------
# Bound formulas: hand-computed numbers (worked on paper, then to 6 digits with a calculator)
# ---------------------------------------------------------------------------------------------


def test_finite_class_bound_hand_value():
    # R̂ = 0.05, |H| = 1000, n = 10 000, δ = 0.05:
    # (ln 1000 + ln 20) / 20 000 = (6.907755 + 2.995732) / 20 000 = 4.951744e-4 -> √ = 0.0222525.
    assert float(bounds.finite_class_bound(0.05, 1000, 10_000, 0.05)) == pytest.approx(0.0722525, abs=1e-6)
    same = bounds.finite_class_bound(0.05, n=10_000, delta=0.05, log_n_hypotheses=math.log(1000))
    assert float(same) == pytest.approx(0.0722525, abs=1e-6)


def test_finite_class_bound_for_a_class_too_large_for_a_float():
    # |H| = 2^(32 W) for W = 1000 float32 weights: ln|H| = 32 000 ln 2 = 22 180.71.
    # With n = 10^6, δ = 0.05: √((22 180.71 + 2.995732) / 2e6) = √0.01109185 = 0.105318.
    value = bounds.finite_class_bound(0.0, 2 ** 32_000, 10 ** 6, 0.05)
    assert float(value) == pytest.approx(0.105318, abs=2e-6)


def test_vc_bound_hand_value_and_deck_implications():
    # d = 3, n = 1000, δ = 0.05: 3 (ln 666.667 + 1) + ln 80 = 3 (6.502290 + 1) + 4.382027
    # = 26.888897; / 1000 -> √ = 0.163979; plus R̂ = 0.1.
    assert float(bounds.vc_bound(0.1, 3, 1000, 0.05)) == pytest.approx(0.263979, abs=1e-6)
    # Vectorised over a grid: larger d -> larger gap, larger n -> smaller gap.
    grid = bounds.vc_bound(0.0, jnp.array([[1.0], [10.0], [100.0]]), jnp.array([1e3, 1e4, 1e5]), 0.05)
    assert grid.shape == (3, 3)
    g = np.asarray(grid)
    assert np.all(np.diff(g, axis=0) > 0) and np.all(np.diff(g, axis=1) < 0)


def test_sample_complexities_hand_values():
    # VC: ε = 0.05, δ = 0.01, d = 10: 20 (10 ln 20 + ln 100) = 20 (29.957323 + 4.605170) = 691.25 -> 692.
    assert float(bounds.vc_sample_complexity(0.05, 0.01, 10)) == 692.0
    # Finite: ε = 0.1, δ = 0.05, |H| = 1000: 10 (6.907755 + 2.995732) = 99.03 -> 100.
    assert float(bounds.finite_class_sample_complexity(0.1, 0.05, 1000)) == 100.0
    assert float(bounds.finite_class_sample_complexity(0.1, 0.05, log_n_hypotheses=math.log(1000))) == 100.0
    m = bounds.vc_sample_complexity(jnp.array([0.1, 0.01]), 0.05, jnp.array([[1.0], [100.0]]))
    assert m.shape == (2, 2) and np.all(np.diff(np.asarray(m), axis=1) > 0)


def test_pac_bayes_mcallester_hand_value():
    # R̂ = 0.1, KL = 10 nats, n = 1000, δ = 0.05: ln(2√1000 / 0.05) = ln 1264.911 = 7.142756.
    # √((10 + 7.142756) / 2000) = √0.008571378 = 0.0925818 -> 0.1925818.
    assert float(bounds.pac_bayes_bound(0.1, 10.0, 1000, 0.05)) == pytest.approx(0.1925818, abs=1e-6)


def test_pac_bayes_with_a_negative_budget_is_the_training_error_with_finite_gradients():
    # n = 1/32, delta = 0.5: ln(2 sqrt(n) / delta) < 0, so B is clamped at 0 (found by fuzzing: NaN).
    for form in bounds.PAC_BAYES_FORMS:
        assert float(bounds.pac_bayes_bound(0.2, 0.0, 0.03125, 0.5, form=form)) == pytest.approx(0.2, abs=1e-5)
        g = jax.grad(bounds.pac_bayes_bound, argnums=(0, 1))(0.2, 0.0, 0.03125, 0.5, form=form)
        assert all(np.isfinite(float(v)) for v in g)


def test_subnormal_arguments_are_judged_as_the_computation_sees_them():
    # 1e-38 is a float32 subnormal: XLA on CPU flushes it to 0, so a "positive" VC dimension of
    # 1e-38 used to pass the check and come back as NaN (found by fuzzing).
    with pytest.raises(ValueError, match=r"vc_dim must be .*got 1e-38 \(a subnormal float"):
        bounds.vc_bound(0.0, 1e-38, 1.0, 0.5)
    assert float(bounds.vc_bound(1e-38, 3.0, 1000.0)) == pytest.approx(float(bounds.vc_bound(0.0, 3.0, 1000.0)))


def test_pac_bayes_kl_form_inverts_the_binary_kl():
    r, kl, n, delta = 0.1, 10.0, 1000, 0.05
    c = (kl + math.log(2 * math.sqrt(n) / delta)) / n
    # Oracle: scipy's root finder on kl(r || p) = c over p ∈ (r, 1).
    def binkl(p):
        return scipy.special.rel_entr(r, p) + scipy.special.rel_entr(1 - r, 1 - p) - c
    oracle = scipy.optimize.brentq(binkl, r + 1e-12, 1 - 1e-12, xtol=1e-12)
    value = float(bounds.pac_bayes_bound(r, kl, n, delta, form="kl"))
    assert value == pytest.approx(oracle, abs=1e-6)
    assert value < float(bounds.pac_bayes_bound(r, kl, n, delta))  # tighter than McAllester (Pinsker)
    # Edge cases of kl^{-1}: c = 0 gives q; a huge budget gives 1; q = 1 gives 1.
    np.testing.assert_allclose(bounds.kl_inverse(jnp.array([0.0, 0.3, 0.3, 1.0]),
                                                 jnp.array([0.0, 0.0, 50.0, 0.1])),
                               [0.0, 0.3, 1.0, 1.0], atol=1e-6)
    # At q = 0: kl(0 || p) = −ln(1 − p) = c  ->  p = 1 − e^{−c}.
    assert float(bounds.kl_inverse(0.0, 0.2)) == pytest.approx(1 - math.exp(-0.2), abs=1e-6)


def test_kl_inverse_gradient_matches_finite_differences():
    q, c = 0.2, 0.05
    g_q, g_c = jax.grad(bounds.kl_inverse, argnums=(0, 1))(q, c)
    h = 1e-3
    fd_q = (float(bounds.kl_inverse(q + h, c)) - float(bounds.kl_inverse(q - h, c))) / (2 * h)
    fd_c = (float(bounds.kl_inverse(q, c + h)) - float(bounds.kl_inverse(q, c - h))) / (2 * h)
    assert float(g_q) == pytest.approx(fd_q, rel=1e-2)
    assert float(g_c) == pytest.approx(fd_c, rel=1e-2)
    g = jax.jit(jax.vmap(jax.grad(bounds.pac_bayes_bound, argnums=1)))(
        jnp.array([0.05, 0.1]), jnp.array([5.0, 20.0]), jnp.array([1000.0, 1000.0]), jnp.array([0.05, 0.05]))
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g) > 0)


def test_vacuous_bounds_are_returned_unclipped_and_flagged():
    # d = 1000, n = 2000: 1000 (ln 4 + 1) + ln 80 = 2390.676; / 2000 = 1.195338 -> √ = 1.093315; + 0.1.
    b = bounds.vc_bound(0.1, 1000, 2000, 0.05)
    assert float(b) == pytest.approx(1.193315, abs=1e-5)
    assert bool(bounds.is_vacuous(b))
    # n < d: the class can shatter the sample; no bound follows (+inf, vacuous).
    assert float(bounds.vc_bound(0.1, 1000, 500, 0.05)) == math.inf
    assert not bool(bounds.is_vacuous(bounds.vc_bound(0.1, 3, 1000, 0.05)))
    flags = bounds.is_vacuous(jnp.array([0.3, 0.999, np.nextafter(np.float32(1), np.float32(0)), 1.0, 7.5]))
    np.testing.assert_array_equal(flags, [False, False, True, True, True])
    # A kl-form bound with a hopeless budget rounds to just below 1: still flagged.
    assert bool(bounds.is_vacuous(bounds.pac_bayes_bound(0.5, 1e5, 1000, 0.05, form="kl")))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: bounds.vc_bound(0.1, 3, 1000, 0.0), "delta"),
        (lambda: bounds.vc_bound(0.1, 3, 1000, 1.0), "delta"),
        (lambda: bounds.vc_bound(0.1, 3, 0, 0.05), "n"),
        (lambda: bounds.vc_bound(0.1, 0, 100, 0.05), "vc_dim"),
        (lambda: bounds.vc_bound(1.5, 3, 100, 0.05), "train_error"),
        (lambda: bounds.finite_class_bound(-0.1, 10, 100, 0.05), "train_error"),
        (lambda: bounds.finite_class_bound(0.1, 0, 100, 0.05), "n_hypotheses"),
        (lambda: bounds.finite_class_bound(0.1, 10, None, 0.05), "n"),
        (lambda: bounds.vc_sample_complexity(1.0, 0.05, 3), "epsilon"),
        (lambda: bounds.vc_sample_complexity(0.1, 0.05, -2), "vc_dim"),
        (lambda: bounds.finite_class_sample_complexity(0.0, 0.05, 10), "epsilon"),
        (lambda: bounds.pac_bayes_bound(0.1, -1.0, 100, 0.05), "kl"),
        (lambda: bounds.pac_bayes_bound(0.1, 1.0, 100, 0.05, form="catoni"), "form"),
        (lambda: bounds.vc_bound(0.1, 3, jnp.array([100.0, -5.0]), 0.05), "n"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        call()


def test_bad_arguments_under_jit_give_nan():
    f = jax.jit(bounds.vc_bound)
    out = f(jnp.array([0.1, 0.1, 0.1]), 3.0, jnp.array([1000.0, -1.0, 1000.0]), jnp.array([0.05, 0.05, 2.0]))
    np.testing.assert_array_equal(np.isnan(out), [False, True, True])
    assert float(out[0]) == pytest.approx(0.263979, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# VC dimension and shattering
# ---------------------------------------------------------------------------------------------

def test_vc_dimensions_of_the_deck_classes():
    assert bounds.vc_dimension("linear", 2) == 3
    assert bounds.vc_dimension("linear", 784) == 785
    assert bounds.vc_dimension("interval") == 2
    assert bounds.vc_dimension("rectangle") == 4
    assert bounds.vc_dimension("rectangle", 3) == 6
    with pytest.raises(ValueError, match="hypothesis_class must be one of"):
        bounds.vc_dimension("circle", 2)
    with pytest.raises(ValueError, match="dim must be the dimension of the input space"):
        bounds.vc_dimension("linear")
    with pytest.raises(ValueError, match="dim must be 1 for 'interval'"):
        bounds.vc_dimension("interval", 2)


TRIANGLE = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
XOR = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
DIAMOND = [[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]]


def test_lines_shatter_three_points_but_not_xor():
    assert bounds.shatters(TRIANGLE, "linear")
    assert not bounds.shatters(XOR, "linear")
    assert not bounds.realizes(XOR, [1, 1, 0, 0], "linear")  # the XOR labelling
    assert bounds.realizes(XOR, [1, 0, 1, 0], "linear")
    assert not bounds.shatters([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], "linear")  # collinear
    # No 4 points in the plane are shattered (VC = 3): a convex quadrilateral fails too.
    assert not bounds.shatters([[0.0, 0.0], [3.0, 0.0], [3.0, 1.0], [0.0, 2.0]], "linear")
    # In R^3 planes shatter the 4 vertices of a simplex (VC = d + 1 = 4) but not 5 points.
    simplex = np.vstack([np.zeros(3), np.eye(3)])
    assert bounds.shatters(simplex, "linear")
    assert not bounds.shatters(np.vstack([simplex, [[0.3, 0.3, 0.3]]]), "linear")


def test_rectangles_shatter_a_diamond_but_not_five_points():
    assert bounds.shatters(DIAMOND, "rectangle")
    assert not bounds.shatters(DIAMOND + [[0.0, 0.0]], "rectangle")
    assert not bounds.shatters(DIAMOND + [[5.0, 5.0]], "rectangle")
    assert not bounds.shatters([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]], "rectangle")  # a line
    # The labelling that defeats the 5th point: the bounding box of the 4 extremes covers it.
    assert not bounds.realizes(DIAMOND + [[0.0, 0.0]], [1, 1, 1, 1, 0], "rectangle")


def test_intervals_shatter_two_points_but_not_three():
    assert bounds.shatters([0.0, 1.0], "interval")
    assert bounds.shatters([[2.0], [-1.0]], "interval")
    assert not bounds.shatters([0.0, 1.0, 2.0], "interval")
    assert not bounds.realizes([0.0, 1.0, 2.0], [1, 0, 1], "interval")
    assert bounds.realizes([0.0, 1.0, 2.0], [0, 1, 1], "interval")
    assert not bounds.shatters([1.0, 1.0], "interval")  # equal points cannot be told apart


def test_shattering_agrees_with_the_vc_dimension_on_random_points():
    rng = np.random.default_rng(0)
    for d in (1, 2):
        vc = bounds.vc_dimension("linear", d)
        pts = rng.normal(size=(vc, d))
        assert bounds.shatters(pts, "linear")
        assert not bounds.shatters(rng.normal(size=(vc + 1, d)), "linear")


def test_bad_points_raise():
    with pytest.raises(ValueError, match="points must be of shape"):
        bounds.shatters(np.zeros((2, 2, 2)), "linear")
    with pytest.raises(ValueError, match="points must be on the line for intervals"):
        bounds.shatters(np.zeros((3, 2)), "interval")
    with pytest.raises(ValueError, match="points must be at most 16 points"):
        bounds.shatters(np.zeros((17, 2)), "rectangle")
    with pytest.raises(ValueError, match="labels must be 3 booleans"):
        bounds.realizes(TRIANGLE, [1, 0], "linear")


# --------------------------------------------------------------------------------------------
# Counts of every integer type and size: the bound for the value given, never a wrapped one
# --------------------------------------------------------------------------------------------

_INTEGER_TYPES = {
    "python": int,
    "int64": np.int64,
    "uint64": np.uint64,
    "int32": np.int32,
    "array_int64": lambda v: np.array([v], np.int64),
}


def _typed(value, kind):
    """value as an integer of the given type, or None where the type cannot hold it."""
    limits = {"int64": 2**63 - 1, "array_int64": 2**63 - 1, "uint64": 2**64 - 1, "int32": 2**31 - 1}
    return None if value > limits.get(kind, math.inf) else _INTEGER_TYPES[kind](value)


def _binary_kl(q, p):
    """kl(q || p) in nats, float64 (0 log 0 = 0)."""
    out = 0.0
    if q > 0:
        out += q * math.log(q / p)
    if q < 1:
        out += (1 - q) * math.log((1 - q) / (1 - p))
    return out


def _kl_inverse_oracle(q, c):
    lo, hi = q, 1.0
    if _binary_kl(q, 1.0 - 1e-15) <= c:
        return 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _binary_kl(q, mid) <= c else (lo, mid)
    return lo


@given(log2_n=st.floats(0.0, 70.0), log2_d=st.floats(0.0, 40.0), kind=st.sampled_from(sorted(_INTEGER_TYPES)),
       r=st.floats(0.0, 0.5), delta=st.floats(0.001, 0.5), kl=st.floats(0.0, 1e4))
def test_every_bound_is_the_bound_for_the_count_given(log2_n, log2_d, kind, r, delta, kl):
    """Sample sizes, VC dimensions and class sizes of every integer type and any size — a NumPy
    int64 above 2**32, a Python int above 2**63 — give the hand-derived float64 bound (to float32
    rounding) or, where a type cannot hold the value, are not drawn. (Through jnp.asarray they
    wrapped: np.int64(2**32 + 1000) became 1000.)"""
    n, d = int(2**log2_n), int(2**log2_d)
    tn, td = _typed(n, kind), _typed(d, kind)
    if tn is None or td is None:
        return
    def first(x):
        return float(np.asarray(x).reshape(-1)[0])

    close = dict(rel=2e-5, abs=1e-6)
    expected = r + math.sqrt((math.log(n) + math.log(1 / delta)) / (2 * n))
    assert first(bounds.finite_class_bound(r, tn, tn, delta)) == pytest.approx(expected, **close)
    vc = r + math.sqrt((d * (math.log(2 * n / d) + 1) + math.log(4 / delta)) / n) if n >= d else math.inf
    assert first(bounds.vc_bound(r, td, tn, delta)) == pytest.approx(vc, **close)
    budget = max(kl + math.log(2 * math.sqrt(n) / delta), 0.0)
    assert first(bounds.pac_bayes_bound(r, kl, tn, delta)) == pytest.approx(r + math.sqrt(budget / (2 * n)), **close)
    seeger = _kl_inverse_oracle(r, budget / n)
    assert first(bounds.pac_bayes_bound(r, kl, tn, delta, form="kl")) == pytest.approx(seeger, rel=1e-4, abs=1e-5)
    m = math.ceil((math.log(n) - math.log(delta)) / 0.05)
    assert first(bounds.finite_class_sample_complexity(0.05, delta, tn)) == pytest.approx(m, rel=1e-6, abs=1)
    m = math.ceil((d * math.log(1 / 0.05) - math.log(delta)) / 0.05)
    assert first(bounds.vc_sample_complexity(0.05, delta, td)) == pytest.approx(m, rel=1e-6, abs=1)


def test_counts_beyond_float32_or_not_positive_raise_naming_the_argument():
    with pytest.raises(ValueError, match=r"^n must be at most 3.4e\+38 in magnitude \(the largest float32\); got 1e"):
        bounds.vc_bound(0.1, 3, 10**39)
    with pytest.raises(ValueError, match=r"^n must be positive; got -5"):
        bounds.vc_bound(0.1, 3, np.int64(-5))
    with pytest.raises(ValueError, match=r"^n_hypotheses must be a positive integer; got 0"):
        bounds.finite_class_bound(0.1, 0, 100)
    with pytest.raises(ValueError, match=r"^n_hypotheses must be at least 1"):
        bounds.finite_class_bound(0.1, np.array([2, 0], np.int64), 100)
    # A class size beyond float32 keeps its logarithm (computed on the host in float64).
    big = np.array([2.0**200], np.float64)
    expected = 0.1 + math.sqrt((200 * math.log(2) + math.log(20)) / 2000)
    assert float(bounds.finite_class_bound(0.1, big, 1000)[0]) == pytest.approx(expected, rel=1e-5)
