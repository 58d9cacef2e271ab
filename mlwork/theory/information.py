r"""Information theory of deck section 19, as pure ``jax.numpy`` functions.

Conventions shared by every function here:

* **Units** are set by ``base``: ``2`` (the default) gives bits, ``math.e`` gives nats,
  ``10`` gives hartleys. ``base`` is a static Python number (not traced).
* **Shapes.** A distribution is a vector over its **last axis** (a joint distribution
  :math:`p(x, y)` is a matrix over its **last two** axes, :math:`X` on rows); leading axes are
  batch axes and the result has the batch shape.
* **Zeros.** :math:`0 \log 0 = 0` and :math:`0 \log(0/q) = 0`, as in information theory and
  :func:`scipy.stats.entropy`. Where :math:`p > 0` and :math:`q = 0`, cross-entropy and KL are
  :math:`+\infty` (as :func:`scipy.special.rel_entr`).
* **Gradients** are finite wherever the value is. At :math:`p_i = 0` the one-sided derivative of
  :math:`p \log p` is :math:`-\infty`; there the gradient is taken as ``0`` (the convention of
  :func:`jax.scipy.special.rel_entr` and ``tf.math.xlogy``), via the double-``where`` trick.
* **Validation.** Inputs that are not distributions (negative or non-finite entries, a
  distribution not summing to 1 within ``max(1e-4, K·eps)``, mismatched shapes) raise
  ``ValueError`` when the values are concrete. ``normalize=True`` divides by the sum instead
  (negative entries still raise). Shapes are static, so shape errors raise under ``jit`` too.
  **Under** ``jit`` / ``grad`` / ``vmap`` the values are abstract and cannot raise: a
  distribution that fails the checks gives ``NaN`` for its result instead of a silent number.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import rel_entr

from mlwork._validate import check_finite_number, check_same_shape, concrete

Array = jax.Array

__all__ = [
    "information", "entropy", "cross_entropy", "kl_divergence", "js_divergence",
    "joint_entropy", "conditional_entropy", "mutual_information", "entropy_from_logits",
    "kl_from_logits", "gaussian_kl", "gaussian_entropy", "bernoulli_kl",
]


# --------------------------------------------------------------------------------------------
# Validation (host side, on concrete values) and the traceable validity masks
# --------------------------------------------------------------------------------------------
#
# Each public function checks its arguments in Python (shapes always, values when concrete),
# then calls one module-level jitted kernel: eager calls cost one dispatch and one compilation
# per shape, and under an outer jit/vmap/grad the kernel simply inlines. Kernels recompute the
# validity of their inputs and return NaN where it fails, which only matters under tracing
# (concrete inputs that fail have already raised).

def _log_base(base) -> float:
    """``ln(base)``, the divisor that converts nats to the requested unit."""
    b = check_finite_number(base, "base")
    if b <= 0.0 or b == 1.0:
        raise ValueError(f"base must be positive and different from 1 (2 = bits, e = nats), got {b}")
    return math.log(b)


def _as_float(x) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def _sum_tolerance(size: int, dtype) -> float:
    return max(1e-4, size * float(jnp.finfo(dtype).eps))


def _check_distribution(p, name: str, normalize: bool, n_axes: int = 1) -> Array:
    """``p`` as a float array; raises unless it is a distribution over its last ``n_axes`` axes
    (values are checked only when concrete; with ``normalize`` only positivity of the sums)."""
    p = _as_float(p)
    if p.ndim < n_axes:
        what = "a vector over its last axis" if n_axes == 1 else "a matrix over its last two axes"
        raise ValueError(f"{name} must be a distribution given as {what}; got shape {p.shape}")
    axes = tuple(range(-n_axes, 0))
    size = math.prod(p.shape[-n_axes:])
    if size == 0:
        raise ValueError(f"{name} has an empty event axis (shape {p.shape})")
    values = concrete(p)
    if values is None:
        return p
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains non-finite values")
    if values.size and values.min() < 0.0:
        raise ValueError(f"{name} must be non-negative (a probability distribution); "
                         f"its smallest entry is {values.min():.4g}")
    sums = values.sum(axis=axes, dtype=np.float64)
    if normalize:
        # Subnormal masses count as 0: the CPU flushes them, so a row of them cannot be normalised.
        tiny = float(np.finfo(values.dtype).tiny)
        flushed = np.where(values < tiny, 0.0, values).sum(axis=axes, dtype=np.float64)
        if np.any(flushed < tiny):
            raise ValueError(f"{name} has a distribution summing to 0; cannot normalize it")
        return p
    tol = _sum_tolerance(size, p.dtype)
    worst = float(np.max(np.abs(sums - 1.0))) if sums.size else 0.0
    if worst > tol:
        raise ValueError(
            f"{name} must sum to 1 over its last {'axis' if n_axes == 1 else f'{n_axes} axes'} "
            f"(within {tol:.1e}); found a sum off by {worst:.3g}. Pass normalize=True to "
            "normalize instead"
        )
    return p


def _check_pair(p, q, normalize: bool, n_axes: int = 1) -> tuple[Array, Array]:
    p_arr, q_arr = jnp.asarray(p), jnp.asarray(q)
    check_same_shape(p_arr, q_arr, "p", "q")
    p = _check_distribution(p_arr, "p", normalize, n_axes)
    q = _check_distribution(q_arr, "q", normalize, n_axes)
    if p.dtype != q.dtype:
        dtype = jnp.promote_types(p.dtype, q.dtype)
        p, q = p.astype(dtype), q.astype(dtype)
    return p, q


def _prepare(p: Array, normalize: bool, n_axes: int = 1) -> tuple[Array, Array]:
    """Traceable: ``(p, valid)`` with ``p`` normalised if asked and ``valid`` of the batch shape."""
    axes = tuple(range(-n_axes, 0))
    sums = jnp.sum(p, axis=axes)
    valid = jnp.all((p >= 0.0) & jnp.isfinite(p), axis=axes)
    if normalize:
        return p / jnp.expand_dims(sums, axes), valid & (sums > 0.0)
    tol = _sum_tolerance(math.prod(p.shape[-n_axes:]), p.dtype)
    return p, valid & (jnp.abs(sums - 1.0) <= tol)


def _units(nats: Array, valid: Array, ln_b) -> Array:
    """Nats in the requested unit, NaN where the input was invalid."""
    return jnp.where(valid, nats / ln_b, jnp.nan)


@partial(jax.jit, static_argnames=("nats_fn", "normalize", "n_axes"))
def _one(nats_fn, p, ln_b, normalize, n_axes):
    """Kernel for a quantity of one distribution (over the last ``n_axes`` axes)."""
    p, valid = _prepare(p, normalize, n_axes)
    return _units(nats_fn(p), valid, ln_b)


@partial(jax.jit, static_argnames=("nats_fn", "normalize"))
def _two(nats_fn, p, q, ln_b, normalize):
    """Kernel for a quantity of two distributions over the last axis."""
    (p, valid_p), (q, valid_q) = _prepare(p, normalize), _prepare(q, normalize)
    return _units(nats_fn(p, q), valid_p & valid_q, ln_b)


def _neg_plogp(p: Array) -> Array:
    """:math:`-p \\ln p` with ``0 ln 0 = 0`` and a zero gradient at ``p = 0``."""
    return -rel_entr(p, jnp.ones_like(p))


def _plogq(p: Array, q: Array) -> Array:
    """:math:`p \\ln q` with ``0 ln q = 0`` (also for ``q = 0``), ``-inf`` where ``p > 0 = q``.

    Gradients: ``(ln q, p / q)`` wherever ``q > 0`` (so exactly ``ln q`` in ``p`` even at
    ``p = 0``), and ``(0, 0)`` at ``p = q = 0``.
    """
    both_zero = (p == 0.0) & (q == 0.0)
    safe_q = jnp.where(both_zero, jnp.ones_like(q), q)
    return p * jnp.log(safe_q)


# --------------------------------------------------------------------------------------------
# Discrete distributions
# --------------------------------------------------------------------------------------------

def information(p, *, base: float = 2.0) -> Array:
    r"""Self-information (surprise) of an event of probability :math:`p`, elementwise:

    .. math:: I(x) = -\log_b p(x)

    ``p = 1`` gives 0 bits, ``p = 0.5`` gives 1 bit, ``p = 0.01`` gives 6.64 bits (the deck's
    examples); ``p = 0`` gives ``+inf``. Values outside ``[0, 1]`` raise ``ValueError`` when
    concrete and give ``NaN`` under ``jit``.

    Reference: C. E. Shannon, "A Mathematical Theory of Communication", 1948, §6.
    """
    return _information(_check_probabilities(p, "p"), _log_base(base))


def _check_probabilities(x, name: str) -> Array:
    x = _as_float(x)
    values = concrete(x)
    if values is not None and values.size:
        if not np.all(np.isfinite(values)) or values.min() < 0.0 or values.max() > 1.0:
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                span = "non-finite values only"
            elif finite.size < values.size:
                span = f"[{finite.min():.4g}, {finite.max():.4g}] and non-finite values"
            else:
                span = f"[{values.min():.4g}, {values.max():.4g}]"
            raise ValueError(f"{name} must be probabilities in [0, 1]; got {span}")
    return x


@jax.jit
def _information(p, ln_b):
    # 0.0 - log(1) = +0.0, so p = 1 gives 0 bits rather than -0.
    return _units(0.0 - jnp.log(p), (p >= 0.0) & (p <= 1.0), ln_b)


def entropy(p, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Shannon entropy over the last axis:

    .. math:: H(P) = -\sum_x p(x) \log_b p(x) = \mathbb{E}_{x\sim P}[-\log_b p(x)]

    :math:`0 \le H(P) \le \log_b K`: zero for a deterministic distribution, maximal for the
    uniform one. Agrees with ``scipy.stats.entropy(p, base=base, axis=-1)``.

    Example::

        entropy(jnp.array([0.5, 0.25, 0.125, 0.125]))       # 1.75 bits
        entropy(jnp.full((2, 4), 0.25), base=math.e)         # [ln 4, ln 4] nats, one per row

    Reference: Shannon (1948), §6; Cover & Thomas, *Elements of Information Theory*, 2nd ed.,
    eq. (2.1).
    """
    return _one(_entropy_nats, _check_distribution(p, "p", normalize), _log_base(base), normalize, 1)


def _entropy_nats(p):
    return jnp.sum(_neg_plogp(p), axis=-1)


def cross_entropy(p, q, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Cross-entropy of :math:`Q` relative to :math:`P` over the last axis:

    .. math:: H(P, Q) = -\sum_x p(x) \log_b q(x) = H(P) + D_{\mathrm{KL}}(P \| Q)

    the expected code length for data from :math:`P` under a code optimised for :math:`Q`. With
    one-hot :math:`P` (labels) and :math:`Q = \hat y` this is the classification loss (in nats with
    ``base=math.e``). ``+inf`` where some :math:`p(x) > 0 = q(x)`.

    Reference: Cover & Thomas (2006), §2.3 and eq. (5.57).
    """
    return _two(_cross_entropy_nats, *_check_pair(p, q, normalize), _log_base(base), normalize)


def _cross_entropy_nats(p, q):
    return -jnp.sum(_plogq(p, q), axis=-1)


def kl_divergence(p, q, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Kullback-Leibler divergence of :math:`Q` from :math:`P` over the last axis:

    .. math:: D_{\mathrm{KL}}(P \| Q) = \sum_x p(x) \log_b \frac{p(x)}{q(x)}
              = H(P, Q) - H(P) \;\ge\; 0

    zero iff :math:`P = Q`, not symmetric, ``+inf`` where some :math:`p(x) > 0 = q(x)`. Agrees with
    ``scipy.special.rel_entr(p, q).sum(-1)`` (nats) and ``scipy.stats.entropy(p, q, base=base)``.

    Example::

        p, q = jnp.array([0.9, 0.1]), jnp.array([0.5, 0.5])
        kl_divergence(p, q), kl_divergence(q, p)              # 0.531 vs 0.737 bits: not symmetric

    Reference: S. Kullback and R. A. Leibler, "On Information and Sufficiency", Ann. Math.
    Statist. 22 (1951); Cover & Thomas (2006), eq. (2.26).
    """
    return _two(_kl_nats, *_check_pair(p, q, normalize), _log_base(base), normalize)


def _kl_nats(p, q):
    return jnp.sum(rel_entr(p, q), axis=-1)


def js_divergence(p, q, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Jensen-Shannon divergence over the last axis:

    .. math:: \mathrm{JS}(P, Q) = \tfrac12 D_{\mathrm{KL}}(P\|M) + \tfrac12 D_{\mathrm{KL}}(Q\|M),
              \qquad M = \tfrac12 (P + Q)

    symmetric, always finite, :math:`0 \le \mathrm{JS} \le 1` bit; its square root is a metric
    (``scipy.spatial.distance.jensenshannon`` returns that square root).

    Reference: J. Lin, "Divergence measures based on the Shannon entropy", IEEE Trans. Inf.
    Theory 37 (1991).
    """
    return _two(_js_nats, *_check_pair(p, q, normalize), _log_base(base), normalize)


def _js_nats(p, q):
    m = 0.5 * (p + q)
    return 0.5 * _kl_nats(p, m) + 0.5 * _kl_nats(q, m)


def _bernoulli_kl_nats(q: Array, p: Array) -> Array:
    """kl(q || p) in nats, accurate when p is close to q.

    Written as ``-q log1p((p - q)/q) - (1 - q) log1p((q - p)/(1 - q))``: the two first-order terms
    cancel in size ``|p - q|`` rather than in size ``~1`` (as in ``q log(q/p) + ...``), so the
    small values near ``p = q`` that PAC-Bayes bisection compares against keep their precision.
    """
    d = p - q
    has_q, has_not_q = q > 0.0, q < 1.0
    safe_q = jnp.where(has_q, q, 1.0)
    safe_nq = jnp.where(has_not_q, 1.0 - q, 1.0)
    first = jnp.where(has_q, -safe_q * jnp.log1p(d / safe_q), 0.0)
    second = jnp.where(has_not_q, -safe_nq * jnp.log1p(-d / safe_nq), 0.0)
    return first + second


def bernoulli_kl(q, p, *, base: float = 2.0) -> Array:
    r"""KL divergence between Bernoulli distributions with success probabilities :math:`q`, :math:`p`,
    elementwise (broadcasting):

    .. math:: \mathrm{kl}(q \| p) = q \log_b \frac{q}{p} + (1 - q) \log_b \frac{1 - q}{1 - p}

    the "small kl" of PAC-Bayes bounds (:func:`mlwork.theory.bounds.kl_inverse`). Arguments
    outside ``[0, 1]`` raise when concrete and give ``NaN`` under ``jit``.

    Reference: Cover & Thomas (2006), eq. (2.26) for two outcomes.
    """
    q, p = _check_probabilities(q, "q"), _check_probabilities(p, "p")
    q, p = _broadcast(q, p, names=("q", "p"))
    return _bernoulli_kl(q, p, _log_base(base))


@jax.jit
def _bernoulli_kl(q, p, ln_b):
    q, p = jnp.broadcast_arrays(q, p)
    valid = (q >= 0.0) & (q <= 1.0) & (p >= 0.0) & (p <= 1.0)
    return _units(_bernoulli_kl_nats(q, p), valid, ln_b)


# --------------------------------------------------------------------------------------------
# Joint distributions p(x, y): X on rows (axis -2), Y on columns (axis -1)
# --------------------------------------------------------------------------------------------

def _marginals(p_xy: Array) -> tuple[Array, Array]:
    return jnp.sum(p_xy, axis=-1), jnp.sum(p_xy, axis=-2)


def joint_entropy(p_xy, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Joint entropy of a joint distribution given as a matrix over the last two axes:

    .. math:: H(X, Y) = -\sum_{x, y} p(x, y) \log_b p(x, y)

    Reference: Cover & Thomas (2006), eq. (2.8).
    """
    return _one(_joint_entropy_nats, _check_distribution(p_xy, "p_xy", normalize, 2), _log_base(base),
                normalize, 2)


def _joint_entropy_nats(p_xy):
    return jnp.sum(_neg_plogp(p_xy), axis=(-2, -1))


def conditional_entropy(p_xy, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Conditional entropy :math:`H(Y \mid X)` of a joint distribution (:math:`X` on rows):

    .. math:: H(Y \mid X) = -\sum_{x, y} p(x, y) \log_b \frac{p(x, y)}{p(x)} = H(X, Y) - H(X)

    computed term by term (each term is :math:`\ge 0`) rather than as a difference of entropies.
    For :math:`H(X \mid Y)` pass the transpose, ``jnp.swapaxes(p_xy, -1, -2)``.

    Reference: Cover & Thomas (2006), eqs. (2.10)-(2.14).
    """
    return _one(_conditional_entropy_nats, _check_distribution(p_xy, "p_xy", normalize, 2),
                _log_base(base), normalize, 2)


def _conditional_entropy_nats(p_xy):
    p_x, _ = _marginals(p_xy)
    return -jnp.sum(rel_entr(p_xy, jnp.broadcast_to(p_x[..., :, None], p_xy.shape)), axis=(-2, -1))


def mutual_information(p_xy, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Mutual information of a joint distribution (:math:`X` on rows, :math:`Y` on columns):

    .. math:: I(X; Y) = D_{\mathrm{KL}}\big(P_{XY} \,\|\, P_X P_Y\big)
              = H(X) + H(Y) - H(X, Y) = H(X) - H(X \mid Y)

    :math:`\ge 0`, symmetric, zero iff :math:`X` and :math:`Y` are independent, and
    :math:`I(X; X) = H(X)`. Computed in the KL form, which stays accurate when :math:`I` is
    small (the difference of entropies cancels).

    Example::

        mutual_information(jnp.array([[0.4, 0.1], [0.1, 0.4]]))   # 1 − H(0.2) ≈ 0.278 bits
        mutual_information(jnp.diag(p))                            # = entropy(p)

    Reference: Cover & Thomas (2006), eqs. (2.28)-(2.45).
    """
    return _one(_mutual_information_nats, _check_distribution(p_xy, "p_xy", normalize, 2),
                _log_base(base), normalize, 2)


def _mutual_information_nats(p_xy):
    p_x, p_y = _marginals(p_xy)
    return jnp.sum(rel_entr(p_xy, p_x[..., :, None] * p_y[..., None, :]), axis=(-2, -1))


# --------------------------------------------------------------------------------------------
# From logits: never leave log space
# --------------------------------------------------------------------------------------------

def _check_logits(z, name: str) -> Array:
    z = _as_float(z)
    if z.ndim < 1:
        raise ValueError(f"{name} must have a class axis (shape (..., K)); got a scalar")
    values = concrete(z)
    if values is not None and values.size:
        if np.any(np.isnan(values)) or np.any(values == np.inf):
            raise ValueError(f"{name} must not contain NaN or +inf (-inf masks a class)")
        if np.any(np.all(values == -np.inf, axis=-1)):
            raise ValueError(f"{name} has a row whose logits are all -inf (no class left)")
    return z


def _p_and_logp(z: Array) -> tuple[Array, Array, Array]:
    """``softmax(z)``, ``log_softmax(z)`` with ``-inf`` replaced by 0, and the mask ``p > 0``."""
    logp = jax.nn.log_softmax(z, axis=-1)
    support = logp > -jnp.inf
    safe_logp = jnp.where(support, logp, 0.0)
    return jnp.where(support, jnp.exp(safe_logp), 0.0), safe_logp, support


def entropy_from_logits(logits, *, base: float = 2.0) -> Array:
    r"""Entropy of :math:`\mathrm{softmax}(z)` from the logits :math:`z` (last axis):

    .. math:: H = -\sum_k p_k \log p_k, \qquad \log p_k = z_k - \operatorname{logsumexp}(z)

    computed from ``log_softmax`` (log-sum-exp), so it is finite and accurate for logits of any
    size; a logit of ``-inf`` masks its class. Gradients are finite.

    Reference: Cover & Thomas (2006), eq. (2.1); the log-sum-exp form, e.g. Goodfellow, Bengio &
    Courville, *Deep Learning* (2016), §4.1.
    """
    return _entropy_from_logits(_check_logits(logits, "logits"), _log_base(base))


@jax.jit
def _entropy_from_logits(z, ln_b):
    p, logp, support = _p_and_logp(z)
    return -jnp.sum(jnp.where(support, p * logp, 0.0), axis=-1) / ln_b


def kl_from_logits(logits_p, logits_q, *, base: float = 2.0) -> Array:
    r""":math:`D_{\mathrm{KL}}(\mathrm{softmax}(z_p) \,\|\, \mathrm{softmax}(z_q))` from logits
    (last axis), entirely in log space:

    .. math:: D_{\mathrm{KL}} = \sum_k p_k \big(\log p_k - \log q_k\big), \qquad
              \log p = \mathrm{log\_softmax}(z_p),\; \log q = \mathrm{log\_softmax}(z_q)

    The knowledge-distillation loss :math:`D_{\mathrm{KL}}(\text{teacher} \| \text{student})`.
    ``+inf`` where ``logits_q`` masks (``-inf``) a class that ``logits_p`` does not.

    Reference: Kullback & Leibler (1951); G. Hinton, O. Vinyals, J. Dean, "Distilling the
    Knowledge in a Neural Network", 2015.
    """
    zp, zq = _check_logits(logits_p, "logits_p"), _check_logits(logits_q, "logits_q")
    check_same_shape(zp, zq, "logits_p", "logits_q")
    if zp.dtype != zq.dtype:
        dtype = jnp.promote_types(zp.dtype, zq.dtype)
        zp, zq = zp.astype(dtype), zq.astype(dtype)
    return _kl_from_logits(zp, zq, _log_base(base))


@jax.jit
def _kl_from_logits(zp, zq, ln_b):
    p, logp, support_p = _p_and_logp(zp)
    logq = jax.nn.log_softmax(zq, axis=-1)
    missing = support_p & (logq == -jnp.inf)
    safe_logq = jnp.where(support_p & ~missing, logq, 0.0)
    terms = jnp.where(support_p & ~missing, p * (logp - safe_logq), 0.0)
    return jnp.where(jnp.any(missing, axis=-1), jnp.inf, jnp.sum(terms, axis=-1)) / ln_b


# --------------------------------------------------------------------------------------------
# Gaussians (diagonal covariance; the last axis holds the dimensions)
# --------------------------------------------------------------------------------------------

def _check_sigma(sigma, name: str) -> Array:
    sigma = _as_float(sigma)
    values = concrete(sigma)
    # Subnormal σ counts as 0: the CPU flushes it.
    if values is not None and values.size and (not np.all(np.isfinite(values))
                                               or values.min() < np.finfo(values.dtype).tiny):
        finite = values[np.isfinite(values)]
        span = f"[{finite.min():.4g}, {finite.max():.4g}] and non-finite ones" if finite.size < values.size \
            else f"[{values.min():.4g}, {values.max():.4g}]"
        raise ValueError(f"{name} must be positive standard deviations; got values in {span}"
                         if finite.size else f"{name} must be positive standard deviations; got non-finite values")
    return sigma


def _check_mean(mu, name: str) -> Array:
    mu = _as_float(mu)
    values = concrete(mu)
    if values is not None and values.size and not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite")
    return mu


def _broadcast(*arrays: Array, names: tuple[str, ...]) -> list[Array]:
    """Check that the shapes broadcast and give the arrays one dtype (kernels broadcast them)."""
    try:
        jnp.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError as e:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays, strict=True))
        raise ValueError(f"shapes do not broadcast together: {shapes}") from e
    dtype = jnp.result_type(*(a.dtype for a in arrays))
    return [a if a.dtype == dtype else a.astype(dtype) for a in arrays]


def gaussian_kl(mu_p, sigma_p, mu_q=0.0, sigma_q=1.0, *, base: float = 2.0) -> Array:
    r"""KL divergence between diagonal Gaussians, summed over the last axis (the dimensions):

    .. math:: D_{\mathrm{KL}}\big(\mathcal N(\mu_p, \sigma_p^2) \,\|\, \mathcal N(\mu_q, \sigma_q^2)\big)
              = \sum_j \Big[\log\frac{\sigma_{q,j}}{\sigma_{p,j}}
              + \frac{\sigma_{p,j}^2 + (\mu_{p,j} - \mu_{q,j})^2}{2\sigma_{q,j}^2} - \frac12\Big]

    (in nats before the change of ``base``). With the defaults :math:`\mu_q = 0, \sigma_q = 1`
    this is the VAE's :math:`D_{\mathrm{KL}}(q(z|x) \| p(z))` term. Arguments broadcast; 0-d
    arguments are one-dimensional Gaussians (nothing to sum). Standard deviations must be
    positive (``ValueError`` when concrete; ``NaN`` under ``jit``).

    Reference: D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014,
    Appendix B; Cover & Thomas (2006), Problem 8.
    """
    names = ("mu_p", "sigma_p", "mu_q", "sigma_q")
    mu_p, mu_q = _check_mean(mu_p, "mu_p"), _check_mean(mu_q, "mu_q")
    sigma_p, sigma_q = _check_sigma(sigma_p, "sigma_p"), _check_sigma(sigma_q, "sigma_q")
    return _gaussian_kl(*_broadcast(mu_p, sigma_p, mu_q, sigma_q, names=names), _log_base(base))


@jax.jit
def _gaussian_kl(mu_p, sigma_p, mu_q, sigma_q, ln_b):
    mu_p, sigma_p, mu_q, sigma_q = jnp.broadcast_arrays(mu_p, sigma_p, mu_q, sigma_q)
    # log σp/σq as a difference of logs: finite even where the ratio itself over/underflows, so an
    # extreme ratio gives +inf (the true value's float) rather than inf − inf.
    log_ratio = jnp.log(sigma_p) - jnp.log(sigma_q)
    terms = 0.5 * (jnp.square(sigma_p / sigma_q) + jnp.square((mu_p - mu_q) / sigma_q) - 1.0) - log_ratio
    terms = jnp.where((sigma_p > 0) & (sigma_q > 0), terms, jnp.nan)
    return (jnp.sum(terms, axis=-1) if terms.ndim else terms) / ln_b


def gaussian_entropy(sigma, *, base: float = 2.0) -> Array:
    r"""Differential entropy of a diagonal Gaussian, summed over the last axis:

    .. math:: h\big(\mathcal N(\mu, \operatorname{diag}\sigma^2)\big)
              = \sum_j \tfrac12 \log_b\!\big(2\pi e\, \sigma_j^2\big)

    independent of the mean; negative when :math:`\sigma_j < 1/\sqrt{2\pi e}`. A 0-d ``sigma``
    is one Gaussian. Agrees with ``scipy.stats.norm(scale=sigma).entropy()`` (nats).

    Reference: Cover & Thomas (2006), Theorem 8.4.1.
    """
    return _gaussian_entropy(_check_sigma(sigma, "sigma"), _log_base(base))


@jax.jit
def _gaussian_entropy(sigma, ln_b):
    terms = 0.5 * math.log(2.0 * math.pi * math.e) + jnp.log(sigma)
    terms = jnp.where(sigma > 0, terms, jnp.nan)
    return (jnp.sum(terms, axis=-1) if terms.ndim else terms) / ln_b
