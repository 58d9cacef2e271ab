"""mlwork.theory.information against scipy, the deck's numbers and the identities of section 19."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.spatial.distance
import scipy.special
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st
from jax.test_util import check_grads

from mlwork.theory import information as it

# ---------------------------------------------------------------------------------------------
# Strategies: distributions as float32 vectors (with exact zeros sometimes) and joint tables.
# ---------------------------------------------------------------------------------------------

# Every drawn distribution is padded with zeros to one shape: zeros change no quantity here, and
# one shape means one compilation per primitive instead of one per size.
K_MAX, JOINT = 6, (4, 4)
weights = st.one_of(st.just(0.0), st.floats(1e-3, 1.0))


def _normalized(w):
    w = np.asarray(w, np.float64)
    return (w / w.sum()).astype(np.float32)


@st.composite
def distributions(draw, support=None, max_support=K_MAX):
    k = support if support is not None else draw(st.integers(1, max_support))
    w = np.zeros(K_MAX)
    w[:k] = draw(st.lists(weights, min_size=k, max_size=k))
    if w.sum() == 0:
        w[draw(st.integers(0, k - 1))] = 1.0
    return _normalized(w)


@st.composite
def positive_pairs(draw):
    """Two distributions positive on the same support (KL finite both ways)."""
    k = draw(st.integers(2, K_MAX))
    p, q = np.zeros(K_MAX), np.zeros(K_MAX)
    p[:k] = draw(st.lists(st.floats(1e-2, 1.0), min_size=k, max_size=k))
    q[:k] = draw(st.lists(st.floats(1e-2, 1.0), min_size=k, max_size=k))
    return _normalized(p), _normalized(q)


@st.composite
def joints(draw):
    nx, ny = draw(st.integers(1, JOINT[0])), draw(st.integers(1, JOINT[1]))
    table = np.zeros(JOINT)
    table[:nx, :ny] = np.reshape(draw(st.lists(weights, min_size=nx * ny, max_size=nx * ny)), (nx, ny))
    if table.sum() == 0:
        table[draw(st.integers(0, nx - 1)), draw(st.integers(0, ny - 1))] = 1.0
    return _normalized(table)


def random_distributions(rng, shape, zeros=True):
    w = rng.gamma(0.5, size=shape)
    if zeros:
        w[rng.uniform(size=shape) < 0.2] = 0.0
        w[..., 0] += 0.1  # never an all-zero row
    return (w / w.sum(-1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The deck's numbers
# ---------------------------------------------------------------------------------------------

def test_deck_information_examples():
    bits = it.information(jnp.array([1.0, 0.5, 0.01], jnp.float32))
    np.testing.assert_allclose(bits, [0.0, 1.0, 6.643856], atol=1e-5)
    assert round(float(bits[2]), 2) == 6.64
    assert float(bits[0]) == 0.0 and not np.signbit(bits[0])
    assert float(it.information(0.5, base=math.e)) == pytest.approx(math.log(2), rel=1e-6)
    assert float(it.information(0.0)) == math.inf


def test_deck_cross_entropy_loss_is_cross_entropy_in_nats():
    # L_CE = H(y, ŷ) for y = (0, 1, 0), ŷ = (0.1, 0.7, 0.2): −ln 0.7 ≈ 0.357 nats.
    y, y_hat = jnp.array([0.0, 1.0, 0.0]), jnp.array([0.1, 0.7, 0.2])
    assert float(it.cross_entropy(y, y_hat, base=math.e)) == pytest.approx(0.356675, abs=1e-6)
    assert float(it.entropy(y)) == 0.0


def test_entropy_extremes():
    assert float(it.entropy(jnp.full((8,), 1 / 8, jnp.float32))) == pytest.approx(3.0, abs=1e-6)
    assert float(it.entropy(jnp.array([0.0, 1.0, 0.0]))) == 0.0
    assert float(it.entropy(jnp.full((4,), 0.25), base=math.e)) == pytest.approx(math.log(4), rel=1e-6)


# ---------------------------------------------------------------------------------------------
# scipy oracles on random batched distributions (with zeros)
# ---------------------------------------------------------------------------------------------

def test_against_scipy_on_batches():
    rng = np.random.default_rng(0)
    p = random_distributions(rng, (4, 3, 7))
    q = random_distributions(rng, (4, 3, 7), zeros=False)
    p64, q64 = p.astype(np.float64), q.astype(np.float64)
    np.testing.assert_allclose(it.entropy(p), scipy.stats.entropy(p64, base=2, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(it.entropy(p, base=math.e), scipy.stats.entropy(p64, axis=-1), rtol=1e-5)
    kl_nats = scipy.special.rel_entr(p64, q64).sum(-1)
    np.testing.assert_allclose(it.kl_divergence(p, q, base=math.e), kl_nats, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(it.kl_divergence(p, q), scipy.stats.entropy(p64, q64, base=2, axis=-1),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(it.cross_entropy(p, q, base=10),
                               -(scipy.special.xlogy(p64, q64)).sum(-1) / math.log(10), rtol=1e-5)
    js = scipy.spatial.distance.jensenshannon(p64, q64, base=2, axis=-1) ** 2
    np.testing.assert_allclose(it.js_divergence(p, q), js, rtol=1e-4, atol=1e-6)
    assert it.entropy(p).shape == (4, 3)


def test_zero_conventions_match_scipy():
    p = np.array([0.5, 0.5, 0.0], np.float32)
    q = np.array([0.5, 0.0, 0.5], np.float32)
    assert float(it.kl_divergence(p, q)) == math.inf == scipy.stats.entropy(p, q)
    assert float(it.cross_entropy(p, q)) == math.inf
    # 0 log(0/q) = 0: KL(q || r) with r > 0 wherever q > 0 is finite.
    r = np.array([0.25, 0.0, 0.75], np.float32)
    assert float(it.kl_divergence(q, r, base=math.e)) == pytest.approx(
        scipy.special.rel_entr(q, r).sum(), rel=1e-5)
    assert float(it.js_divergence(p, q)) == pytest.approx(0.5, abs=1e-6)  # half the mass disjoint


def test_bernoulli_kl_against_rel_entr():
    q = np.array([0.0, 0.1, 0.5, 0.9, 1.0], np.float32)
    p = np.array([0.3, 0.4, 0.5, 0.2, 0.7], np.float32)
    oracle = scipy.special.rel_entr(q, p) + scipy.special.rel_entr(1 - q, 1 - p)
    np.testing.assert_allclose(it.bernoulli_kl(q, p, base=math.e), oracle, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="p must be probabilities"):
        it.bernoulli_kl(0.5, 1.5)


# ---------------------------------------------------------------------------------------------
# Identities (hypothesis)
# ---------------------------------------------------------------------------------------------

@given(positive_pairs())
def test_cross_entropy_is_entropy_plus_kl(pq):
    p, q = pq
    h_pq, h_p, kl = it.cross_entropy(p, q), it.entropy(p), it.kl_divergence(p, q)
    assert float(h_pq) == pytest.approx(float(h_p + kl), abs=2e-5)


@given(distributions(), distributions())
def test_gibbs_inequality_and_equality_iff_same(p, q):
    kl = float(it.kl_divergence(p, q))
    assert kl >= -1e-6
    assert abs(float(it.kl_divergence(p, p))) <= 1e-6
    if np.max(np.abs(p - q)) > 1e-2:
        assert kl > 1e-6


def test_kl_is_not_symmetric():
    p, q = jnp.array([0.9, 0.1]), jnp.array([0.5, 0.5])
    forward, reverse = float(it.kl_divergence(p, q)), float(it.kl_divergence(q, p))
    assert forward == pytest.approx(1 - scipy.stats.entropy([0.9, 0.1], base=2), rel=1e-5)
    assert reverse == pytest.approx(scipy.stats.entropy([0.5, 0.5], [0.9, 0.1], base=2), rel=1e-5)
    assert abs(forward - reverse) > 0.05


@given(joints())
def test_mutual_information_identities(p_xy):
    h_x = it.entropy(p_xy.sum(1))
    h_y = it.entropy(p_xy.sum(0))
    h_xy = it.joint_entropy(p_xy)
    mi = float(it.mutual_information(p_xy))
    assert mi == pytest.approx(float(h_x + h_y - h_xy), abs=3e-5)
    # I(X;Y) = KL(P_XY || P_X P_Y) with the generic KL on the flattened tables.
    product = np.outer(p_xy.sum(1), p_xy.sum(0)).astype(np.float32)
    assert mi == pytest.approx(float(it.kl_divergence(p_xy.ravel(), product.ravel(), normalize=True)),
                               abs=3e-5)
    assert mi >= -1e-6
    assert mi == pytest.approx(float(it.mutual_information(p_xy.T)), abs=1e-5)  # symmetric
    # H(Y|X) = H(X,Y) − H(X);  I = H(Y) − H(Y|X).
    h_y_given_x = float(it.conditional_entropy(p_xy))
    assert h_y_given_x == pytest.approx(float(h_xy - h_x), abs=3e-5)
    assert mi == pytest.approx(float(h_y) - h_y_given_x, abs=3e-5)


@given(distributions())
def test_information_of_a_variable_with_itself_is_its_entropy(p):
    p_xx = np.diag(p)
    assert float(it.mutual_information(p_xx)) == pytest.approx(float(it.entropy(p)), abs=2e-5)
    assert float(it.conditional_entropy(p_xx)) == pytest.approx(0.0, abs=1e-6)


@given(distributions(max_support=4), distributions(max_support=4))
def test_independent_variables_share_no_information(p, q):
    p, q = p[:4], q[:4]  # supported on the first four entries: still distributions
    p_xy = np.outer(p, q).astype(np.float32)
    assert abs(float(it.mutual_information(p_xy))) <= 1e-5
    assert float(it.joint_entropy(p_xy)) == pytest.approx(float(it.entropy(p) + it.entropy(q)), abs=3e-5)


def test_joint_quantities_on_a_worked_table():
    # X on rows: p(x=0) = 1/2, p(y=1) = 3/4. H(X,Y) = 1.5 bits, H(X) = 1, H(Y) = H(1/4, 3/4).
    p_xy = jnp.array([[0.25, 0.25], [0.0, 0.5]], jnp.float32)
    h_y = scipy.stats.entropy([0.25, 0.75], base=2)
    assert float(it.joint_entropy(p_xy)) == pytest.approx(1.5, abs=1e-6)
    assert float(it.conditional_entropy(p_xy)) == pytest.approx(0.5, abs=1e-6)
    assert float(it.mutual_information(p_xy)) == pytest.approx(1 + h_y - 1.5, abs=1e-6)
    batch = jnp.stack([p_xy, p_xy.T, jnp.full((2, 2), 0.25, jnp.float32)])
    np.testing.assert_allclose(it.mutual_information(batch), [1 + h_y - 1.5] * 2 + [0.0], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Logit forms
# ---------------------------------------------------------------------------------------------

def test_logit_forms_against_scipy():
    rng = np.random.default_rng(1)
    zp = rng.normal(size=(5, 6)).astype(np.float32) * 3
    zq = rng.normal(size=(5, 6)).astype(np.float32) * 3
    p, q = scipy.special.softmax(zp.astype(np.float64), -1), scipy.special.softmax(zq.astype(np.float64), -1)
    np.testing.assert_allclose(it.entropy_from_logits(zp), scipy.stats.entropy(p, base=2, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(it.kl_from_logits(zp, zq, base=math.e),
                               scipy.special.rel_entr(p, q).sum(-1), rtol=1e-4, atol=1e-6)


def test_logit_forms_stay_finite_for_huge_and_masked_logits():
    z = jnp.array([[1e4, -1e4, 0.0], [5e3, 5e3, -jnp.inf]], jnp.float32)
    h = it.entropy_from_logits(z)
    np.testing.assert_allclose(h, [0.0, 1.0], atol=1e-6)
    g = jax.grad(lambda z: jnp.sum(it.entropy_from_logits(z)))(z)
    assert np.all(np.isfinite(g))
    zq = jnp.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], jnp.float32)
    kl = it.kl_from_logits(z, zq)
    np.testing.assert_allclose(kl, [math.log2(3), math.log2(3) - 1.0], rtol=1e-5)
    g = jax.grad(lambda a, b: jnp.sum(it.kl_from_logits(a, b)), argnums=(0, 1))(z, zq)
    assert all(np.all(np.isfinite(x)) for x in g)
    # A class the student masks but the teacher does not: infinite divergence.
    assert float(it.kl_from_logits(jnp.zeros(2), jnp.array([0.0, -jnp.inf]))) == math.inf


# ---------------------------------------------------------------------------------------------
# Gaussians
# ---------------------------------------------------------------------------------------------

def test_gaussian_kl_against_numerical_integration():
    mp, sp, mq, sq = 0.3, 0.7, -0.5, 1.6
    p, q = scipy.stats.norm(mp, sp), scipy.stats.norm(mq, sq)
    integral, _ = scipy.integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -20, 20)
    assert float(it.gaussian_kl(mp, sp, mq, sq, base=math.e)) == pytest.approx(integral, rel=1e-5)
    # Diagonal vector Gaussians: the sum of per-dimension KLs; default prior N(0, 1) (the VAE term).
    mu = jnp.array([[0.0, 1.0], [2.0, -1.0]], jnp.float32)
    sigma = jnp.array([[1.0, 0.5], [2.0, 1.0]], jnp.float32)
    vae = -0.5 * np.sum(1 + np.log(np.square(sigma)) - np.square(mu) - np.square(sigma), axis=-1)
    np.testing.assert_allclose(it.gaussian_kl(mu, sigma, base=math.e), vae, rtol=1e-5)
    assert float(it.gaussian_kl(0.0, 1.0)) == 0.0
    g = jax.grad(lambda m, s: jnp.sum(it.gaussian_kl(m, s)), argnums=(0, 1))(mu, sigma)
    assert all(np.all(np.isfinite(x)) for x in g)


def test_gaussian_entropy_against_scipy():
    sigma = np.array([0.1, 1.0, 3.0], np.float32)
    assert float(it.gaussian_entropy(1.0, base=math.e)) == pytest.approx(scipy.stats.norm().entropy(), rel=1e-6)
    cov = np.diag(np.square(sigma.astype(np.float64)))
    assert float(it.gaussian_entropy(sigma, base=math.e)) == pytest.approx(
        scipy.stats.multivariate_normal(np.zeros(3), cov).entropy(), rel=1e-5)
    assert float(it.gaussian_entropy(0.01)) < 0  # differential entropy can be negative
    with pytest.raises(ValueError, match="sigma must be positive standard deviations"):
        it.gaussian_entropy(jnp.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="sigma_q must be positive standard deviations"):
        it.gaussian_kl(0.0, 1.0, 0.0, -1.0)


# ---------------------------------------------------------------------------------------------
# Gradients: finite wherever the value is, and correct (analytic / finite differences)
# ---------------------------------------------------------------------------------------------

def test_gradients_finite_at_zeros_and_correct():
    p = jnp.array([0.5, 0.5, 0.0], jnp.float32)
    q = jnp.array([0.25, 0.25, 0.5], jnp.float32)
    for f in (it.entropy, it.js_divergence, it.kl_divergence, it.cross_entropy):
        args = (p,) if f is it.entropy else (p, q)
        grads = jax.grad(f, argnums=tuple(range(len(args))))(*args)
        assert all(np.all(np.isfinite(g)) for g in grads), f.__name__
    # Cross-entropy is linear in p: ∂H/∂p = −log2 q exactly, also where p = 0.
    g_p, g_q = jax.grad(it.cross_entropy, argnums=(0, 1))(p, q)
    np.testing.assert_allclose(g_p, -np.log2(q), rtol=1e-6)
    np.testing.assert_allclose(g_q, -p / (q * math.log(2)), rtol=1e-6)
    g_joint = jax.grad(it.mutual_information)(jnp.array([[0.5, 0.0], [0.0, 0.5]], jnp.float32))
    assert np.all(np.isfinite(g_joint))


def test_gradients_match_finite_differences_in_the_interior():
    p = jnp.array([0.2, 0.3, 0.5], jnp.float32)
    q = jnp.array([0.4, 0.4, 0.2], jnp.float32)
    # check_grads perturbs p off the simplex: normalize=True keeps the functions defined there.
    for f in (it.entropy, it.kl_divergence, it.js_divergence, it.mutual_information):
        args = (p.reshape(1, 3) * q.reshape(3, 1),) if f is it.mutual_information else (
            (p,) if f is it.entropy else (p, q))
        check_grads(lambda *a, f=f: f(*a, normalize=True), args, order=1, modes=["rev"],
                    eps=1e-3, atol=2e-2, rtol=2e-2)


magnitudes = st.floats(-36.0, -0.31).map(lambda e: float(np.float32(10.0 ** e)))


@given(magnitudes, magnitudes)
def test_gradients_stay_finite_and_correct_for_tiny_probabilities(t, u):
    # p = (t, 1 - t), q = (u, 1 - u) with t, u down to 1e-36: JAX's own derivative of a / b is
    # -a·b⁻², and b² underflows below 1e-19 in float32 (gradients were NaN, or inf, there).
    p = jnp.array([t, 1.0 - t], jnp.float32)
    q = jnp.array([u, 1.0 - u], jnp.float32)
    p64, q64, ln2 = np.asarray(p, np.float64), np.asarray(q, np.float64), math.log(2.0)
    g_p, g_q = jax.grad(lambda a, b: it.kl_divergence(a, b, normalize=False), argnums=(0, 1))(p, q)
    # terms p ln(p/q) - p + q: derivatives ln(p/q) and 1 - p/q (nats; /ln 2 for bits)
    np.testing.assert_allclose(g_p, np.log(p64 / q64) / ln2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g_q, (1.0 - p64 / q64) / ln2, rtol=1e-4, atol=1e-5 * (1 + float(np.max(p64 / q64))))
    # kl(q || p) of Bernoulli's: derivatives ln(q/p) - ln((1-q)/(1-p)) and (1-q)/(1-p) - q/p
    b_q, b_p = jax.grad(it.bernoulli_kl, argnums=(0, 1))(jnp.float32(t), jnp.float32(u))
    q1, p1 = p64[0], q64[0]
    expected_q = (np.log(q1 / p1) - np.log1p(-q1) + np.log1p(-p1)) / ln2
    np.testing.assert_allclose(b_q, expected_q, rtol=1e-4, atol=1e-5 * (1 + abs(np.log(q1 / p1))))
    np.testing.assert_allclose(b_p, ((1 - q1) / (1 - p1) - q1 / p1) / ln2, rtol=1e-4, atol=1e-5 * (1 + q1 / p1))


@pytest.mark.parametrize("e", [1e-3, 1e-15, 1e-30])
def test_kl_hessians_are_the_analytic_ones_for_small_probabilities(e):
    # Second derivatives of Σ p ln(p/q) - p + q: 1/p in p and p/q² in q (diagonal), finite in
    # float32 however small p (they were NaN below p ~ 1e-19: the chain rule formed 1/p²).
    p = jnp.array([e, 1 - e], jnp.float32)
    q = jnp.array([2 * e, 1 - 2 * e], jnp.float32)
    p64, q64 = np.asarray(p, np.float64), np.asarray(q, np.float64)
    h_p = jax.hessian(lambda a: it.kl_divergence(a, q, normalize=False, base=math.e))(p)
    h_q = jax.hessian(lambda b: it.kl_divergence(p, b, normalize=False, base=math.e))(q)
    np.testing.assert_allclose(np.diag(h_p), 1 / p64, rtol=1e-5)
    np.testing.assert_allclose(np.diag(h_q), p64 / q64**2, rtol=1e-5)
    h_bern = jax.hessian(it.bernoulli_kl)(jnp.float32(e), jnp.float32(2 * e))  # in q: 1/q + 1/(1-q), bits
    np.testing.assert_allclose(h_bern, (1 / p64[0] + 1 / (1 - p64[0])) / math.log(2), rtol=1e-5)


@given(st.floats(-30.0, 0.0), st.floats(-8.0, 2.0), st.sampled_from([0.0, 1.0]))
def test_gaussian_kl_gradients_stay_finite_and_correct_for_tiny_sigmas(e_q, offset, shift):
    # σq down to 1e-30, σp/σq in [1e-8, 1e2] and μ in {0, σq}: every derivative below is finite
    s_p, s_q = np.float32(10.0 ** (e_q + offset)), np.float32(10.0 ** e_q)
    mu = float(np.float32(shift * s_q))
    g_p, g_q, g_mu = jax.grad(lambda a, b, m: it.gaussian_kl(m, a, 0.0, b), argnums=(0, 1, 2))(
        jnp.float32(s_p), jnp.float32(s_q), jnp.float32(mu))
    sp, sq, ln2 = float(s_p), float(s_q), math.log(2.0)
    # ln(σq/σp) + (σp² + μ²)/(2σq²) - 1/2: derivatives -1/σp + σp/σq², 1/σq - (σp² + μ²)/σq³, μ/σq²
    scale_p, scale_q = 1 / sp + sp / sq**2, 1 / sq + (sp**2 + mu**2) / sq**3
    np.testing.assert_allclose(g_p, (-1 / sp + sp / sq**2) / ln2, rtol=1e-4, atol=1e-5 * scale_p)
    np.testing.assert_allclose(g_q, (1 / sq - (sp**2 + mu**2) / sq**3) / ln2, rtol=1e-4, atol=1e-5 * scale_q)
    np.testing.assert_allclose(g_mu, mu / sq**2 / ln2, rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

def test_bad_distributions_raise():
    with pytest.raises(ValueError, match="p must be non-negative"):
        it.entropy(jnp.array([1.2, -0.2]))
    with pytest.raises(ValueError, match="must be a distribution summing to 1"):
        it.entropy(jnp.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="p has shape .* but q has shape"):
        it.kl_divergence(jnp.ones(3) / 3, jnp.ones(4) / 4)
    with pytest.raises(ValueError, match="q must be finite"):
        it.cross_entropy(jnp.array([0.5, 0.5]), jnp.array([jnp.nan, 0.5]))
    with pytest.raises(ValueError, match="p_xy must be a distribution given as a matrix"):
        it.mutual_information(jnp.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="p must be probabilities"):
        it.information(jnp.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="base must be"):
        it.entropy(jnp.array([0.5, 0.5]), base=1)
    with pytest.raises(ValueError, match="a distribution summing to 0"):
        it.entropy(jnp.zeros(3), normalize=True)


def test_normalize_and_jit_behaviour():
    w = jnp.array([1.0, 3.0], jnp.float32)
    assert float(it.entropy(w, normalize=True)) == pytest.approx(scipy.stats.entropy([1, 3], base=2), rel=1e-6)
    assert float(it.kl_divergence(w, w[::-1], normalize=True)) == pytest.approx(
        scipy.stats.entropy([1, 3], [3, 1], base=2), rel=1e-5)
    # Under jit values cannot be checked: invalid rows come out NaN, valid rows are unaffected.
    batch = jnp.array([[0.5, 0.5], [0.5, 0.6], [1.2, -0.2]], jnp.float32)
    np.testing.assert_array_equal(np.isnan(jax.jit(it.entropy)(batch)), [False, True, True])
    assert np.isnan(jax.jit(it.information)(jnp.float32(-0.5)))
    assert float(jax.jit(lambda w: it.entropy(w, normalize=True))(w)) == pytest.approx(0.811278, abs=1e-5)
    # vmap over a batch agrees with the batched call.
    np.testing.assert_allclose(jax.vmap(it.entropy)(batch[:1]), it.entropy(batch[:1]), rtol=1e-6)
