"""Documented signs and identities of mlwork.theory.information hold exactly at the edges (issue 17):
nearly equal and equal distributions in float32 and float64, batched and unbatched, with scipy
(float64) as the oracle for the values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.spatial.distance
import scipy.special
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from mlwork.theory import information as it

LN2 = math.log(2.0)
E = math.e


# ---------------------------------------------------------------------------------------------
# The values quoted in issue 17
# ---------------------------------------------------------------------------------------------

def test_issue_golden_values():
    p = np.array([0.5810178518295288, 0.4189821481704712], np.float32)
    q = np.array([0.5809810757637024, 0.4190189242362976], np.float32)
    oracle = scipy.special.rel_entr(p.astype(np.float64), q.astype(np.float64)).sum()
    assert oracle == pytest.approx(2.78e-9, rel=1e-2)
    kl = float(it.kl_divergence(p, q, base=E))
    assert kl >= 0.0                                       # was -5.96e-8
    assert kl == pytest.approx(oracle, rel=1e-3)
    js = it.js_divergence(p, q, base=E)
    assert 0.0 <= float(js) <= LN2 and np.isfinite(np.sqrt(js))
    js_oracle = scipy.spatial.distance.jensenshannon(p.astype(np.float64), q.astype(np.float64)) ** 2
    assert float(js) == pytest.approx(js_oracle, rel=1e-3)
    assert float(it.kl_from_logits(np.log(p), np.log(q), base=E)) >= 0.0
    # Accepted "within tolerance" means normalised: exactly 0, not -8e-5.
    assert float(it.kl_divergence([.5, .5], [.50004, .50004], base=E)) == 0.0
    # KL(P‖P) = 0 exactly for every row of a batched call (was [-1.28e-8, 9.3e-10, ...]).
    rows = np.random.default_rng(17).dirichlet(np.ones(7), size=64).astype(np.float32)
    np.testing.assert_array_equal(it.kl_divergence(rows, rows), 0.0)
    np.testing.assert_array_equal(it.js_divergence(rows, rows), 0.0)


# ---------------------------------------------------------------------------------------------
# Property tests: Dirichlet rows and 1-100 ulp perturbations, float32 and float64
# ---------------------------------------------------------------------------------------------

def _perturb(p, rng, max_ulp=100):
    """``p`` moved by 1..max_ulp ulps per entry (random direction), then renormalised."""
    q = p.copy()
    steps = rng.integers(1, max_ulp + 1, size=p.shape)
    up = rng.uniform(size=p.shape) < 0.5
    for _ in range(max_ulp):
        move = steps > 0
        q = np.where(move, np.nextafter(q, np.where(up, np.inf, 0.0).astype(p.dtype)), q)
        steps -= 1
    return (q / q.sum(-1, keepdims=True)).astype(p.dtype)


@st.composite
def near_pairs(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    k = draw(st.integers(2, 8))
    batch = draw(st.sampled_from([(), (1,), (5,)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    alpha = draw(st.sampled_from([0.3, 1.0, 10.0]))
    p = rng.dirichlet(np.full(k, alpha), size=batch).astype(dtype)
    p = np.maximum(p, np.finfo(dtype).tiny)  # no subnormals: the CPU flushes them
    p = (p / p.sum(-1, keepdims=True)).astype(dtype)
    return p, _perturb(p, rng, draw(st.sampled_from([1, 4, 100])))


def _x64(dtype):
    return jax.enable_x64(dtype == np.float64)


def _rows_equal_unbatched(fn, *arrays, event_ndim=1):
    """Each row of the batched result is bit-equal to the call on that row alone."""
    batched = np.asarray(fn(*arrays))
    if arrays[0].ndim == event_ndim:
        return
    for i in range(arrays[0].shape[0]):
        assert np.asarray(fn(*(a[i] for a in arrays))) == batched[i]


def _kl_oracle(p, q):
    """KL in nats from scipy in float64, as ``Σ kl_div(p, q) = Σ p ln(p/q) − p + q`` of the
    normalised inputs: every term is >= 0 and the −p + q parts cancel the ulp by which the sums
    miss 1. (``scipy.stats.entropy`` sums terms of both signs: for pairs a few ulp apart its
    float64 noise, ~eps64, is larger than the divergence itself.)"""
    p, q = p.astype(np.float64), q.astype(np.float64)
    p, q = p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)
    return scipy.special.kl_div(p, q).sum(-1)


def _js_oracle(p, q):
    p, q = p.astype(np.float64), q.astype(np.float64)
    p, q = p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)
    m = 0.5 * (p + q)
    return 0.5 * (scipy.special.kl_div(p, m).sum(-1) + scipy.special.kl_div(q, m).sum(-1))


def _oracle_is_right(oracle, dtype=np.float64):
    """Where a value comparison is meaningful: scipy's float64 terms carry noise of ~eps64 each
    (so values below ~1e-13 are compared on sign and zero only), and a divergence ~d² of inputs
    d apart is known to relative ~eps/d in the working precision (so below ~1e4·eps²)."""
    return np.abs(oracle) > max(1e-13, 1e4 * float(np.finfo(dtype).eps) ** 2)


def _kl_tolerance(p, q, eps):
    # Normalising in the working precision moves p - q by ~eps·p: KL moves by ~eps·Σ|p - q| at
    # first order and ~eps²·Σ p²/q at second (the oracle's own float64 noise is below both).
    p, q = p.astype(np.float64), q.astype(np.float64)
    return 8 * eps * np.abs(p - q).sum(-1) + 8 * eps**2 * (p * p / q).sum(-1)


@given(pq=near_pairs())
def test_divergence_signs_and_exact_zeros(pq):
    p, q = pq
    eps = float(np.finfo(p.dtype).eps)
    with _x64(p.dtype):
        kl, kl_pp, kl_qq = (np.asarray(it.kl_divergence(a, b, base=E)) for a, b in ((p, q), (p, p), (q, q)))
        assert np.all(kl >= 0.0)
        assert np.all(kl_pp == 0.0) and np.all(kl_qq == 0.0)
        oracle = _kl_oracle(p, q)
        sure = _oracle_is_right(oracle)
        assert np.all((np.abs(kl - oracle) <= _kl_tolerance(p, q, eps) + 1e-3 * np.abs(oracle))[sure])

        js = np.asarray(it.js_divergence(p, q, base=E))
        assert np.all((js >= 0.0) & (js <= LN2)) and np.all(np.isfinite(np.sqrt(js)))
        assert np.all(np.asarray(it.js_divergence(p, p)) == 0.0)
        js_oracle = _js_oracle(p, q)
        sure = _oracle_is_right(js_oracle)
        assert np.all((np.abs(js - js_oracle) <= _kl_tolerance(p, q, eps) + 1e-3 * np.abs(js_oracle))[sure])

        h_p, ce = np.asarray(it.entropy(p)), np.asarray(it.cross_entropy(p, q))
        assert np.all(h_p >= 0.0) and np.all(ce >= h_p)
        assert np.all(np.asarray(it.cross_entropy(p, p)) >= h_p)

        zp, zq = np.log(p), np.log(q)
        assert np.all(np.asarray(it.kl_from_logits(zp, zq)) >= 0.0)
        assert np.all(np.asarray(it.kl_from_logits(zp, zp)) == 0.0)
        assert np.all(np.asarray(it.entropy_from_logits(zp)) >= 0.0)

        for fn in (it.kl_divergence, it.js_divergence, it.cross_entropy, it.kl_from_logits):
            args = (zp, zq) if fn is it.kl_from_logits else (p, q)
            _rows_equal_unbatched(fn, *args)
        _rows_equal_unbatched(it.entropy, p)
        _rows_equal_unbatched(it.entropy_from_logits, zp)


def _row_cases():
    """(name, function, arguments of 130 rows, event ndim) for every function of the module."""
    rng = np.random.default_rng(1717)
    p = rng.dirichlet(np.ones(5), size=130)
    q = np.stack([_perturb(row, rng, 100) for row in p])
    joint = rng.dirichlet(np.ones(12), size=130).reshape(130, 3, 4)
    sigma = rng.lognormal(0.0, 1.0, size=(130, 3))
    return [
        ("entropy", it.entropy, (p,), 1), ("cross_entropy", it.cross_entropy, (p, q), 1),
        ("kl_divergence", it.kl_divergence, (p, q), 1), ("js_divergence", it.js_divergence, (p, q), 1),
        ("entropy_from_logits", it.entropy_from_logits, (np.log(p),), 1),
        ("kl_from_logits", it.kl_from_logits, (np.log(p), np.log(q)), 1),
        ("joint_entropy", it.joint_entropy, (joint,), 2),
        ("conditional_entropy", it.conditional_entropy, (joint,), 2),
        ("mutual_information", it.mutual_information, (joint,), 2),
        ("information", it.information, (p[:, 0],), 0),
        ("bernoulli_kl", it.bernoulli_kl, (p[:, 0], q[:, 0]), 0),
        ("gaussian_kl", lambda s, t: it.gaussian_kl(0.0 * s, s, 0.0 * s, t), (sigma, sigma * 1.0001), 1),
        ("gaussian_entropy", it.gaussian_entropy, (sigma,), 1),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", _row_cases(), ids=lambda c: c[0])
def test_a_rows_value_does_not_depend_on_its_batch(case, dtype):
    # Alone, at any position of batches of 7 and 130 (which crosses the 64-row padding), and in
    # a 2-d batch: the same bits. (conditional_entropy differed in float64's last ulp, and
    # float32 log differed between XLA's vectorised and scalar loops, before rows were padded.)
    _, fn, args, event_ndim = case
    with _x64(dtype):
        args = tuple(np.asarray(a, dtype) for a in args)
        full = np.asarray(fn(*args))
        assert full.shape == (130,)
        grid = np.asarray(fn(*(a[:120].reshape(10, 12, *a.shape[1:]) for a in args))).reshape(-1)
        np.testing.assert_array_equal(grid, full[:120])
        for i in (0, 1, 6, 63, 64, 100, 129):
            np.testing.assert_array_equal(np.asarray(fn(*(a[i] for a in args))), full[i])
            start = min(i, 123)
            window = np.asarray(fn(*(a[start:start + 7] for a in args)))
            np.testing.assert_array_equal(window[i - start], full[i])


def test_rows_are_padded_only_where_it_is_cheap_and_can_help():
    seen = []

    def kernel(x):
        seen.append(x.shape)
        return x.sum(-1)

    def padded_to(*shape):
        seen.clear()
        it._by_rows(kernel, [jnp.ones(shape, jnp.float32)], 1)
        return seen[0][0]

    assert padded_to(5) == 64 and padded_to(50, 5) == 64 and padded_to(130, 5) == 192
    assert padded_to(4096) == 1  # one long row: 64 copies would be 64 times the work
    assert padded_to(50, 4096) == 64  # ... but 50 of them grow by 28% only
    seen.clear()
    jax.vmap(lambda row: it._by_rows(kernel, [row], 1))(jnp.ones((8, 5), jnp.float32))
    assert seen == [(1, 5)]  # under vmap every mapped row would be padded 64-fold
    seen.clear()
    jax.jit(lambda x: it._by_rows(kernel, [x], 1))(jnp.ones((3, 5), jnp.float32))
    assert seen == [(3, 5)]


@given(pq=near_pairs())
def test_far_pairs_against_scipy_and_bounds(pq):
    p, _ = pq
    q = np.roll(p, 1, axis=-1)  # a different distribution on the same support
    with _x64(p.dtype):
        kl = np.asarray(it.kl_divergence(p, q, base=E))
        oracle = scipy.stats.entropy(p.astype(np.float64), q.astype(np.float64), axis=-1)
        np.testing.assert_allclose(kl, oracle, rtol=200 * float(np.finfo(p.dtype).eps), atol=1e-6)
        js = np.asarray(it.js_divergence(p, q, base=E))
        assert np.all((js >= 0.0) & (js <= LN2))
        # Disjoint supports: JS is its maximum, ln 2 (to the rounding of Σ p), never above.
        disjoint = np.concatenate([p, np.zeros_like(p)], -1), np.concatenate([np.zeros_like(p), p], -1)
        js_max = np.asarray(it.js_divergence(*disjoint, base=E))
        assert np.all(js_max <= LN2)
        np.testing.assert_allclose(js_max, LN2, rtol=4 * float(np.finfo(p.dtype).eps))


@st.composite
def joint_tables(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    nx, ny = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    batch = draw(st.sampled_from([(), (3,)]))
    kind = draw(st.sampled_from(["dirichlet", "independent", "diagonal"]))
    if kind == "dirichlet":
        t = rng.dirichlet(np.ones(nx * ny), size=batch).reshape(*batch, nx, ny)
    elif kind == "independent":  # I = 0 up to a few ulps of perturbation
        px, py = rng.dirichlet(np.ones(nx), size=batch), rng.dirichlet(np.ones(ny), size=batch)
        t = px[..., :, None] * py[..., None, :]
    else:  # Y = X: I = H(X) = H(Y)
        d = rng.dirichlet(np.ones(nx), size=batch)
        t = d[..., :, None] * np.eye(nx)
    t = np.maximum(t, 0.0).astype(dtype)
    t = np.where(t < np.finfo(dtype).tiny, 0.0, t).astype(dtype)
    flat = t.reshape(*batch, -1)
    flat = flat / flat.sum(-1, keepdims=True)
    if kind != "diagonal":
        flat = _perturb(flat.astype(dtype), rng, draw(st.sampled_from([1, 100])))
    return flat.astype(dtype).reshape(t.shape)


@given(p_xy=joint_tables())
def test_joint_quantities_signs_and_bounds(p_xy):
    with _x64(p_xy.dtype):
        h_x = np.asarray(it.entropy(p_xy.sum(-1), normalize=True))
        h_y = np.asarray(it.entropy(p_xy.sum(-2), normalize=True))
        mi = np.asarray(it.mutual_information(p_xy))
        assert np.all(mi >= 0.0)
        assert np.all(mi <= np.minimum(h_x, h_y) * (1 + 4 * np.finfo(p_xy.dtype).eps))
        h_y_given_x = np.asarray(it.conditional_entropy(p_xy))
        assert np.all(h_y_given_x >= 0.0)
        assert np.all(h_y_given_x <= h_y * (1 + 4 * np.finfo(p_xy.dtype).eps))
        assert np.all(np.asarray(it.joint_entropy(p_xy)) >= 0.0)
        p64 = p_xy.astype(np.float64).reshape(*p_xy.shape[:-2], -1)
        p64 = p64 / p64.sum(-1, keepdims=True)
        prod = (p_xy.astype(np.float64).sum(-1)[..., :, None] * p_xy.astype(np.float64).sum(-2)[..., None, :])
        oracle = scipy.stats.entropy(p64, prod.reshape(p64.shape), base=2, axis=-1)
        np.testing.assert_allclose(mi, oracle, rtol=1e-3, atol=64 * float(np.finfo(p_xy.dtype).eps))
        _rows_equal_unbatched(it.mutual_information, p_xy, event_ndim=2)
        _rows_equal_unbatched(it.conditional_entropy, p_xy, event_ndim=2)


def test_mutual_information_of_a_variable_with_itself_is_at_most_its_entropy():
    rows = np.random.default_rng(3).dirichlet(np.ones(6), size=200).astype(np.float32)
    mi = np.asarray(it.mutual_information(rows[:, :, None] * np.eye(6, dtype=np.float32)))
    h = np.asarray(it.entropy(rows))
    # I <= H(X) holds exactly against the entropy of the joint's own marginal (the clamp in the
    # kernel); entropy(rows) normalises the rows separately, which can move the last ulp.
    assert np.all(mi <= h * (1 + 2 * float(np.finfo(np.float32).eps)))
    np.testing.assert_allclose(mi, h, rtol=1e-6)


@given(dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1),
       ulps=st.sampled_from([1, 4, 100]), batch=st.sampled_from([(), (4,)]))
def test_gaussian_and_bernoulli_kl_signs(dtype, seed, ulps, batch):
    rng = np.random.default_rng(seed)
    with _x64(dtype):
        sigma = rng.lognormal(0.0, 2.0, size=(*batch, 3)).astype(dtype)
        mu = rng.normal(size=(*batch, 3)).astype(dtype)
        sigma_q = _perturb(sigma, rng, ulps) * sigma.sum(-1, keepdims=True)  # ulp-close, not normalised
        sigma_q = sigma_q.astype(dtype)
        kl = np.asarray(it.gaussian_kl(mu, sigma, mu, sigma_q, base=E))  # nats, as the oracle
        assert np.all(kl >= 0.0)
        assert np.all(np.asarray(it.gaussian_kl(mu, sigma, mu, sigma)) == 0.0)
        s64, q64 = sigma.astype(np.float64), sigma_q.astype(np.float64)
        oracle = np.sum(np.log(q64 / s64) + s64**2 / (2 * q64**2) - 0.5, axis=-1)
        sure = _oracle_is_right(oracle, dtype)
        # h(d) + d²/2 with an exact d: a few ulp relative (the former ½(expm1(2s) − 2s) lost
        # log2(1/s) bits, ~1% in float32 at 100 ulp).
        np.testing.assert_allclose(kl[sure], oracle[sure], rtol=1e-4)
        _rows_equal_unbatched(lambda m, a, b: it.gaussian_kl(m, a, m, b), mu, sigma, sigma_q)

        qb = rng.uniform(size=(*batch, 5)).astype(dtype)
        pb = _perturb(qb, rng, ulps) * qb.sum(-1, keepdims=True)
        pb = np.clip(pb, 0.0, 1.0).astype(dtype)
        bkl = np.asarray(it.bernoulli_kl(qb, pb, base=E))
        assert np.all(bkl >= 0.0)
        assert np.all(np.asarray(it.bernoulli_kl(qb, qb)) == 0.0)
        q64, p64 = qb.astype(np.float64), pb.astype(np.float64)
        b_oracle = scipy.special.kl_div(q64, p64) + scipy.special.kl_div(1 - q64, 1 - p64)
        sure = _oracle_is_right(b_oracle, dtype)
        np.testing.assert_allclose(bkl[sure], b_oracle[sure], rtol=1e-2)


@pytest.mark.slow  # a subprocess compiling at XLA's default level (24-33 s); the default tier keeps to 10 minutes
@pytest.mark.parametrize("cases", ["where_rows_differed", "all"])
def test_rows_are_batch_independent_at_xlas_default_optimisation_too(cases):
    # The default test run compiles at XLA's -O0 (tests/conftest.py), but whether a row's bits
    # depend on its batch is a question of how XLA optimises and vectorises: run the test above
    # again in a fresh process at XLA's default level, as users compile. The default tier takes
    # the functions where rows differed before padding (log in float32, conditional_entropy's
    # last float64 ulp) and two divergences; the slow tier takes every case.
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import FAST_TIER_XLA_FLAG

    flags = os.environ.get("XLA_FLAGS", "").replace(FAST_TIER_XLA_FLAG, "").strip()
    env = {**os.environ, "XLA_FLAGS": flags, "MLWORK_TEST_XLA_DEFAULT_OPT": "1"}
    root = Path(__file__).resolve().parents[2]
    names = (["entropy", "kl_divergence", "conditional_entropy", "gaussian_kl", "bernoulli_kl"]
             if cases == "where_rows_differed" else [case[0] for case in _row_cases()])
    ids = [f"{__file__}::test_a_rows_value_does_not_depend_on_its_batch[{name}-{dtype}]"
           for name in names for dtype in ("float32", "float64")]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "-m", "", *ids],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and f"{len(ids)} passed" in proc.stdout, proc.stdout[-3000:]
