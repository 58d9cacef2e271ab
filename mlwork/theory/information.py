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
  ``ValueError`` when the values are concrete. ``normalize=True`` accepts any positive sum
  (negative entries still raise). Shapes are static, so shape errors raise under ``jit`` too.
  **Under** ``jit`` / ``grad`` / ``vmap`` the values are abstract and cannot raise: a
  distribution that fails the checks gives ``NaN`` for its result instead of a silent number.
* **Accepted inputs are normalised.** A distribution accepted "within tolerance" is divided by
  its sum before use (as :func:`scipy.stats.entropy` does), so ``[.5, .5]`` against
  ``[.50004, .50004]`` is KL ``0``, not ``-8e-5``. With ``normalize=False`` the sum is held
  constant for gradients (they are the formula's at the normalised point, e.g. exactly
  :math:`-\log q` for cross-entropy in :math:`p`); ``normalize=True`` differentiates through it.
* **Signs and identities hold exactly**, in float32 and float64, batched or not: KL, JS, mutual
  information, entropies, Gaussian and Bernoulli KL are ``>= 0``; KL, JS and the logit KL are
  exactly ``0`` for equal arguments; :math:`\mathrm{JS} \le \ln 2`; :math:`I(X;Y) \le
  \min(H(X), H(Y))`; :math:`H(Y \mid X) \le H(Y)`; :math:`H(P, Q) \ge H(P)`. Each divergence
  is summed from terms that are non-negative one by one — :math:`p \ln(p/q) - p + q` (the
  :math:`-p + q` parts sum to 0 for distributions), with :math:`\ln(p/q)` taken as
  ``log1p((p - q)/q)`` near 1, which is exactly 0 for ``p == q`` — so rounding cannot flip a
  sign. Only the last ulp of cancellation (a term of size ``~eps·|p − q|``) is clamped, to ``0``
  below and to the bound above; gradients are the formula's.
* **A row's value does not depend on its batch**, to the last bit: a row computed alone and the
  same row inside a batched call (any batch size, any position) are equal. XLA compiles each
  shape separately and rounds differently across its vectorised and scalar loops, so every
  function runs its rows padded to a multiple of 64 (see ``_by_rows``): one row and fifty rows
  run the same compiled program. This holds for eager calls with rows of up to 1,024 elements;
  under a caller's ``jit``, ``vmap`` or ``grad`` the caller's program decides (rows are not
  padded there: a ``vmap`` would pad each mapped row 64-fold), and longer rows are padded only
  while that at most doubles the work.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import check_real, check_same_shape, concrete, fail

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
    b = check_real(base, "base", low=0.0, low_open=True)
    if b == 1.0:
        fail("base", "positive and different from 1 (2 = bits, e = nats)", b)
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
        fail(name, f"a distribution given as {what}", f"shape {p.shape}")
    axes = tuple(range(-n_axes, 0))
    size = math.prod(p.shape[-n_axes:])
    if size == 0:
        fail(name, "a distribution over a non-empty event axis", f"shape {p.shape}")
    values = concrete(p)
    if values is None:
        return p
    if not np.all(np.isfinite(values)):
        fail(name, "finite (a probability distribution)", "NaN or ±inf")
    if values.size and values.min() < 0.0:
        fail(name, "non-negative (a probability distribution)", f"a smallest entry of {values.min():.4g}")
    sums = values.sum(axis=axes, dtype=np.float64)
    if normalize:
        # Subnormal masses count as 0: the CPU flushes them, so a row of them cannot be normalised.
        tiny = float(np.finfo(values.dtype).tiny)
        flushed = np.where(values < tiny, 0.0, values).sum(axis=axes, dtype=np.float64)
        if np.any(flushed < tiny):
            fail(name, "distributions with a positive sum (to normalize)", "a distribution summing to 0")
        return p
    tol = _sum_tolerance(size, p.dtype)
    worst = float(np.max(np.abs(sums - 1.0))) if sums.size else 0.0
    if worst > tol:
        fail(name, f"a distribution summing to 1 over its last {'axis' if n_axes == 1 else f'{n_axes} axes'} (within "
             f"{tol:.1e}; or pass normalize=True)", f"a sum off by {worst:.3g}")
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
    sums = _sum(p, axis=axes)
    valid = jnp.all((p >= 0.0) & jnp.isfinite(p), axis=axes)
    if normalize:
        return p / jnp.expand_dims(sums, axes), valid & (sums > 0.0)
    tol = _sum_tolerance(math.prod(p.shape[-n_axes:]), p.dtype)
    valid = valid & (jnp.abs(sums - 1.0) <= tol)
    # Accepted within tolerance, so normalised; the sum is a constant for gradients.
    return p / jax.lax.stop_gradient(jnp.expand_dims(sums, axes)), valid


def _x_minus_log1p(x: Array) -> Array:
    r""":math:`x - \mathrm{log1p}(x) \ge 0` for :math:`x > -1`, to a few ulp relative even where
    :math:`x \to 0` (the value is :math:`\approx x^2/2`, so the plain difference loses
    :math:`\log_2(2/|x|)` bits: 45% error in float32 at :math:`|x| = 6\cdot10^{-6}`).

    For :math:`|x| < 1/8` the alternating series :math:`\sum_{k \ge 2} (-1)^k x^k / k`, summed
    by Horner to the working precision (11 terms in float32, 20 in float64); beyond, the plain
    difference (which then loses at most 4 bits), clamped at 0 for its last ulp. ``+inf`` at
    :math:`x = -1`.
    """
    small = jnp.abs(x) < 0.125
    xs = jnp.where(small, x, 0.0)
    terms = 20 if jnp.finfo(x.dtype).bits > 32 else 11
    poly = jnp.zeros_like(xs)
    for k in range(terms + 1, 1, -1):  # x²·(1/2 - x·(1/3 - x·(1/4 - ...))), innermost first
        poly = (1.0 / k) - xs * poly
    direct = _clamp(x - jnp.log1p(jnp.where(small, 0.0, x)), lo=0.0)
    return jnp.where(small, xs * xs * poly, direct)


def _sum(x: Array, axis=-1) -> Array:
    """Pairwise sum over ``axis`` (an int or a tuple of trailing axes) in a fixed order.

    ``jnp.sum`` lets XLA pick the reduction order per shape, so a row summed alone and the same
    row summed inside a batch can differ in the last ulp. Here the order depends only on the
    row length: pad to a power of two with zeros, then add halves elementwise (IEEE additions,
    identical on every row and every batch size). Pairwise summation is also more accurate.
    The terms are materialised first (an optimisation barrier): fused into the sum, a product
    feeding an addition may be contracted to an FMA in one vectorisation and not in another.
    """
    x = jax.lax.optimization_barrier(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(sorted(a % x.ndim for a in axes))
    rest = [a for a in range(x.ndim) if a not in axes]
    x = jnp.transpose(x, (*rest, *axes))
    x = x.reshape(*x.shape[:len(rest)], math.prod(x.shape[len(rest):]))
    n = x.shape[-1]
    width = 1 << max(n - 1, 0).bit_length()
    if width != n:
        x = jnp.concatenate([x, jnp.zeros((*x.shape[:-1], width - n), x.dtype)], axis=-1)
    while x.shape[-1] > 1:
        half = x.shape[-1] // 2
        x = x[..., :half] + x[..., half:]
    return x[..., 0]


_ROWS = 64
_PAD_ELEMENTS = 2**16


def _by_rows(kernel, arrays, event_ndim: int) -> Array:
    """``kernel(*arrays)``, one value per row (the leading, batch axes), with each row's value
    independent of the batch it came in.

    XLA compiles a kernel per shape and may fuse, vectorise and rewrite it differently for each
    (a vectorised loop for the bulk, a scalar one for the remainder; ``a / b`` as ``a * (1/b)``
    in one fusion and not in another), so the same row gave results an ulp apart alone and
    inside a batch. Here the rows are flattened and padded (with stop-gradient copies of the
    first row) to a multiple of 64, so every row is computed by the same code: a 1-row call and
    a 50-row call run the same 64-row program. The arrays broadcast against each other first.

    Padding is skipped where it cannot help or would cost too much: under a caller's
    transformation (``jit``, ``vmap``, ``grad``: the caller's program decides the code, and a
    ``vmap`` would pad every mapped row 64-fold), and where it would more than double the work
    beyond 2**16 elements (a single row of more than 1,024 elements).
    """
    arrays = jnp.broadcast_arrays(*arrays)
    shape = arrays[0].shape
    batch = shape[:len(shape) - event_ndim]
    n, event = math.prod(batch), math.prod(shape[len(batch):])
    if n == 0:
        return kernel(*arrays)
    rows = -(-n // _ROWS) * _ROWS
    traced = any(isinstance(a, jax.core.Tracer) for a in arrays)
    if traced or rows * event > max(2 * n * event, _PAD_ELEMENTS):
        rows = n
    flat = []
    for a in arrays:
        a = a.reshape(n, *shape[len(batch):])
        if rows > n:
            fill = jnp.broadcast_to(jax.lax.stop_gradient(a[:1]), (rows - n, *a.shape[1:]))
            a = jnp.concatenate([a, fill])
        flat.append(a)
    return kernel(*flat)[:n].reshape(batch)


def _in_units(nats: Array, ln_b) -> Array:
    """Nats in the unit of ``ln_b``. A product with ``1/ln_b``, not a quotient: XLA turns a
    division by a broadcast scalar into such a product for batches but not for a single row,
    which made a row's last ulp depend on whether it was batched."""
    return nats * (1.0 / ln_b)


def _units(nats: Array, valid: Array, ln_b) -> Array:
    """Nats in the requested unit, NaN where the input was invalid."""
    return jnp.where(valid, _in_units(nats, ln_b), jnp.nan)


def _one_by_rows(nats_fn, p, base, normalize, n_axes):
    ln_b = _log_base(base)
    return _by_rows(lambda x: _one(nats_fn, x, ln_b, normalize, n_axes), [p], n_axes)


def _two_by_rows(nats_fn, p, q, base, normalize):
    ln_b = _log_base(base)
    return _by_rows(lambda a, b: _two(nats_fn, a, b, ln_b, normalize), [p, q], 1)


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
    # p <= 1 after normalisation, but a marginal of a normalised joint can be 1 + ulp: clamp
    # that last ulp so the term (and every entropy) is >= 0.
    pos = p > 0.0
    safe = jnp.where(pos, p, 1.0)
    return _clamp(jnp.where(pos, -safe * jnp.log(safe), 0.0), lo=0.0)


def _plogq(p: Array, q: Array) -> Array:
    """:math:`p \\ln q` with ``0 ln q = 0`` (also for ``q = 0``), ``-inf`` where ``p > 0 = q``.

    Gradients: ``(ln q, p / q)`` wherever ``q > 0`` (so exactly ``ln q`` in ``p`` even at
    ``p = 0``), and ``(0, 0)`` at ``p = q = 0``.
    """
    both_zero = (p == 0.0) & (q == 0.0)
    safe_q = jnp.where(both_zero, jnp.ones_like(q), q)
    return p * jnp.log(safe_q)


def _clamp(x: Array, lo=None, hi=None) -> Array:
    """``x`` clipped to ``[lo, hi]`` in value, with the gradient of ``x``.

    Used only to absorb the last ulp of rounding where the formula is already right: then
    ``x`` and the bound are within a factor 2, ``bound - x`` is exact (Sterbenz) and the
    result is exactly the bound.
    """
    c = jnp.clip(x, lo, hi)
    return jnp.where(c == x, x, jnp.where(jnp.isfinite(x), x + jax.lax.stop_gradient(c - x), c))


@jax.custom_jvp
def _quotient(x: Array, y: Array) -> Array:
    """``x / y``, differentiated as ``(dx - (x/y) dy) / y``.

    JAX differentiates ``x / y`` in ``y`` as ``-x * y**-2``: ``y**2`` underflows for
    ``|y| < 1e-19`` in float32, so the gradient was ``inf``, or ``NaN`` (``0 * inf``) where the
    term was masked off or ``x == 0``, although the true derivative is finite.
    """
    return x / y


@_quotient.defjvp
def _quotient_jvp(primals, tangents):
    (x, y), (dx, dy) = primals, tangents
    q = _quotient(x, y)  # itself, so that higher derivatives (a Hessian) never form y² either
    return q, _quotient(dx - q * dy, y)


@jax.custom_jvp
def _log_ratio(a: Array, b: Array) -> Array:
    r""":math:`\ln(a/b)` for ``a, b > 0``: ``log1p((a - b)/b)`` where ``a/b`` is in ``[1/2, 2]``
    (``a - b`` is then exact, and ``a == b`` gives exactly 0 whatever the division's rounding),
    else ``log(a/b)``, or ``log a - log b`` where the ratio over/underflows. Derivatives
    ``(1/a, -1/b)``, finite for every positive ``a`` and ``b``."""
    r = a / b
    near = (r >= 0.5) & (r <= 2.0)
    ratio_ok = jnp.isfinite(r) & (r > 0.0)
    safe_r = jnp.where(near | ~ratio_ok, 1.0, r)
    far = jnp.where(ratio_ok, jnp.log(safe_r), jnp.log(a) - jnp.log(b))
    return jnp.where(near, jnp.log1p(jnp.where(near, (a - b) / b, 0.0)), far)


@_log_ratio.defjvp
def _log_ratio_jvp(primals, tangents):
    (a, b), (da, db) = primals, tangents
    return _log_ratio(a, b), _quotient(da, a) - _quotient(db, b)


def _kl_terms(p: Array, q: Array) -> Array:
    r""":math:`p \ln(p/q) - p + q` elementwise: ``>= 0`` term by term, exactly 0 where
    ``p == q``; ``q`` where ``p = 0`` and ``+inf`` where ``p > 0 = q``.

    Summed over distributions the :math:`-p + q` parts cancel, so the sum is the KL divergence;
    they also cancel to first order the ulp by which float sums miss 1. Near ``p = q`` the
    term is :math:`p\,h(v)`, :math:`h(v) = v - \mathrm{log1p}(v) \ge 0`, ``v = (q - p)/p``
    (``q - p`` exact there), accurate to a few ulp relative however small. Gradients (``p, q > 0``):
    :math:`(\ln(p/q),\ 1 - p/q)`; at ``p = 0``: ``(0, 1)``.
    """
    pos = (p > 0.0) & (q > 0.0)
    sp, sq = jnp.where(pos, p, 1.0), jnp.where(pos, q, 1.0)
    return jnp.where(pos, _kl_term(sp, sq, sq - sp), jnp.where(p == 0.0, q, jnp.inf))


@jax.custom_jvp
def _kl_term(a: Array, b: Array, diff: Array) -> Array:
    r""":math:`a \ln(a/b) - a + b \ge 0` for ``a > 0``, ``b >= 0``, given ``diff = b - a``
    (exact where :math:`b/a \in [1/2, 2]`, where it is used).

    There the term is :math:`a\,h(v)`, :math:`h(v) = v - \mathrm{log1p}(v)`, ``v = diff/a``:
    accurate to a few ulp relative however small, exactly 0 for ``diff = 0``. Elsewhere
    :math:`a \ln(a/b) + \text{diff}`. Gradients :math:`(\ln(a/b),\ 1 - a/b)` in closed form.
    """
    r = a / b
    near = (r >= 0.5) & (r <= 2.0)
    # Values only: the derivatives are the closed forms of _kl_term_jvp, never this body's.
    near_term = a * _x_minus_log1p(jnp.where(near, diff, 0.0) / a)
    far_term = _clamp(a * _log_ratio(a, b) + diff, lo=0.0)
    return jnp.where(near, near_term, far_term)


@_kl_term.defjvp
def _kl_term_jvp(primals, tangents):
    # The derivatives in closed form, (ln(a/b), (b - a)/b), with diff taken as b - a (every caller
    # passes that): differentiating a·h(diff/a) would form 1/a² on the way to second derivatives
    # (inf below a ~ 1e-19 in float32), and the far form's parts cancel in size b/a.
    (a, b, diff), (da, db, _) = primals, tangents
    return _kl_term(a, b, diff), _log_ratio(a, b) * da + _quotient(diff, b) * db


def _js_terms(p: Array, q: Array) -> Array:
    r""":math:`\tfrac12[p \ln(2p/(p+q)) + q \ln(2q/(p+q))]` elementwise, in
    ``[0, (p + q) ln 2 / 2]``, exactly 0 where ``p == q``.

    With ``s = p + q`` and ``d = (p - q)/s``, the term is :math:`\tfrac{s}{4}\varphi(d)`,
    :math:`\varphi(d) = (1+d)\ln(1+d) + (1-d)\ln(1-d) = 2d\,\mathrm{atanh}(d) + \ln(1 - d^2)`,
    whose two parts differ by a factor ~2 near 0 (no cancellation to lose the sign).
    """
    s = p + q
    interior = (p > 0.0) & (q > 0.0)
    d = jnp.where(interior, (p - q) / jnp.where(interior, s, 1.0), 0.0)
    interior = interior & (jnp.abs(d) < 1.0)  # p ≫ q can round d to ±1
    d = jnp.where(interior, d, 0.0)
    small = jnp.abs(d) < 0.5
    log_1md2 = jnp.where(small, jnp.log1p(-d * d), jnp.log1p(d) + jnp.log1p(-d))
    phi = _clamp(2.0 * d * jnp.arctanh(d) + log_1md2, lo=0.0, hi=2.0 * math.log(2.0))
    return jnp.where(interior, 0.25 * s * phi, 0.5 * s * math.log(2.0))


# --------------------------------------------------------------------------------------------
# Discrete distributions
# --------------------------------------------------------------------------------------------

def information(p, *, base: float = 2.0) -> Array:
    r"""Self-information (surprise) of an event of probability :math:`p`, elementwise:

    .. math:: I(x) = -\log_b p(x)

    ``p = 1`` gives 0 bits, ``p = 0.5`` gives 1 bit, ``p = 0.01`` gives 6.64 bits (the deck's
    examples); ``p = 0`` gives ``+inf``. Values outside ``[0, 1]`` raise ``ValueError`` when
    concrete and give ``NaN`` under ``jit``.

    Args:
      p: probabilities in ``[0, 1]``, any shape.
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).

    Returns:
      :math:`-\log_b p`, the shape of ``p`` (``+inf`` at 0).

    Raises:
      ValueError: a value outside ``[0, 1]`` or a bad ``base`` (when concrete; NaN under ``jit``).

    Example:
      >>> import jax.numpy as jnp, math
      >>> from mlwork.theory import information as it
      >>> [round(v, 2) for v in it.information(jnp.array([1.0, 0.5, 0.01])).tolist()]
      [0.0, 1.0, 6.64]

    Reference: C. E. Shannon, "A Mathematical Theory of Communication", 1948, §6.
    """
    ln_b = _log_base(base)
    return _by_rows(lambda x: _information(x, ln_b), [_check_probabilities(p, "p")], 0)


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
            fail(name, "probabilities in [0, 1]", span)
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

    Args:
      p: a distribution over the last axis (non-negative, summing to 1 within
        ``max(1e-4, K·eps)``); leading axes are a batch.
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).
      normalize: divide each distribution by its sum first (any positive sum is accepted).

    Returns:
      :math:`H(P)`, the batch shape.

    Raises:
      ValueError: not a distribution (a negative or non-finite entry, a sum off 1), shapes
        that differ, a bad ``base`` — when the values are concrete; under ``jit`` such
        rows give NaN.

    Example:
      >>> import jax.numpy as jnp, math
      >>> from mlwork.theory import information as it
      >>> float(it.entropy(jnp.array([0.5, 0.25, 0.125, 0.125])))
      1.75

    Reference: Shannon (1948), §6; Cover & Thomas, *Elements of Information Theory*, 2nd ed.,
    eq. (2.1).
    """
    return _one_by_rows(_entropy_nats, _check_distribution(p, "p", normalize), base, normalize, 1)


def _entropy_nats(p):
    return _sum(_neg_plogp(p))


def cross_entropy(p, q, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Cross-entropy of :math:`Q` relative to :math:`P` over the last axis:

    .. math:: H(P, Q) = -\sum_x p(x) \log_b q(x) = H(P) + D_{\mathrm{KL}}(P \| Q)

    the expected code length for data from :math:`P` under a code optimised for :math:`Q`. With
    one-hot :math:`P` (labels) and :math:`Q = \hat y` this is the classification loss (in nats with
    ``base=math.e``). ``+inf`` where some :math:`p(x) > 0 = q(x)`.

    Args:
      p, q: a distribution over the last axis (non-negative, summing to 1 within
        ``max(1e-4, K·eps)``); leading axes are a batch.
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).
      normalize: divide each distribution by its sum first (any positive sum is accepted).

    Returns:
      :math:`H(P, Q)`, the batch shape (``+inf`` where :math:`Q` misses :math:`P`'s support).

    Raises:
      ValueError: not a distribution (a negative or non-finite entry, a sum off 1), shapes
        that differ, a bad ``base`` — when the values are concrete; under ``jit`` such
        rows give NaN.

    Example:
      >>> import jax.numpy as jnp, math
      >>> from mlwork.theory import information as it
      >>> round(float(it.cross_entropy(jnp.array([0.0, 1.0, 0.0]), jnp.array([0.1, 0.7, 0.2]), base=math.e)), 3)
      0.357

    Reference: Cover & Thomas (2006), §2.3 and eq. (5.57).
    """
    return _two_by_rows(_cross_entropy_nats, *_check_pair(p, q, normalize), base, normalize)


def _cross_entropy_nats(p, q):
    # -Σ p ln q is linear in p (its gradient is exactly -ln q); H(P, Q) - H(P) = KL >= 0, so
    # only the last ulp below H(P) is clamped.
    return _clamp(-_sum(_plogq(p, q)), lo=_entropy_nats(p))


def kl_divergence(p, q, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Kullback-Leibler divergence of :math:`Q` from :math:`P` over the last axis:

    .. math:: D_{\mathrm{KL}}(P \| Q) = \sum_x p(x) \log_b \frac{p(x)}{q(x)}
              = H(P, Q) - H(P) \;\ge\; 0

    zero iff :math:`P = Q`, not symmetric, ``+inf`` where some :math:`p(x) > 0 = q(x)`. Agrees with
    ``scipy.special.rel_entr(p, q).sum(-1)`` (nats) and ``scipy.stats.entropy(p, q, base=base)``.

    Args:
      p, q: a distribution over the last axis (non-negative, summing to 1 within
        ``max(1e-4, K·eps)``); leading axes are a batch.
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).
      normalize: divide each distribution by its sum first (any positive sum is accepted).

    Returns:
      :math:`D_{\mathrm{KL}}(P \| Q) \ge 0`, the batch shape.

    Raises:
      ValueError: not a distribution (a negative or non-finite entry, a sum off 1), shapes
        that differ, a bad ``base`` — when the values are concrete; under ``jit`` such
        rows give NaN.

    Example:
      >>> import jax.numpy as jnp, math
      >>> from mlwork.theory import information as it
      >>> p, q = jnp.array([0.9, 0.1]), jnp.array([0.5, 0.5])
      >>> round(float(it.kl_divergence(p, q)), 3), round(float(it.kl_divergence(q, p)), 3)  # not symmetric
      (0.531, 0.737)

    Reference: S. Kullback and R. A. Leibler, "On Information and Sufficiency", Ann. Math.
    Statist. 22 (1951); Cover & Thomas (2006), eq. (2.26).
    """
    return _two_by_rows(_kl_nats, *_check_pair(p, q, normalize), base, normalize)


def _kl_nats(p, q):
    return _sum(_kl_terms(p, q))


def js_divergence(p, q, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Jensen-Shannon divergence over the last axis:

    .. math:: \mathrm{JS}(P, Q) = \tfrac12 D_{\mathrm{KL}}(P\|M) + \tfrac12 D_{\mathrm{KL}}(Q\|M),
              \qquad M = \tfrac12 (P + Q)

    symmetric, always finite, :math:`0 \le \mathrm{JS} \le 1` bit; its square root is a metric
    (``scipy.spatial.distance.jensenshannon`` returns that square root).

    Args:
      p, q: a distribution over the last axis (non-negative, summing to 1 within
        ``max(1e-4, K·eps)``); leading axes are a batch.
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).
      normalize: divide each distribution by its sum first (any positive sum is accepted).

    Returns:
      :math:`\mathrm{JS}(P, Q) \in [0, \log_b 2]`, the batch shape.

    Raises:
      ValueError: not a distribution (a negative or non-finite entry, a sum off 1), shapes
        that differ, a bad ``base`` — when the values are concrete; under ``jit`` such
        rows give NaN.

    Example:
      >>> import jax.numpy as jnp, math
      >>> from mlwork.theory import information as it
      >>> float(it.js_divergence(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])))  # disjoint: 1 bit
      1.0

    Reference: J. Lin, "Divergence measures based on the Shannon entropy", IEEE Trans. Inf.
    Theory 37 (1991).
    """
    return _two_by_rows(_js_nats, *_check_pair(p, q, normalize), base, normalize)


def _js_nats(p, q):
    return _clamp(_sum(_js_terms(p, q)), lo=0.0, hi=math.log(2.0))


def _bernoulli_kl_nats(q: Array, p: Array) -> Array:
    r"""kl(q || p) in nats, accurate when p is close to q.

    Written as :math:`q\,h(d/q) + (1-q)\,h(-d/(1-q))` with ``d = p - q`` and
    :math:`h(x) = x - \mathrm{log1p}(x) \ge 0`: the two first-order terms ``±d`` are moved
    inside the logarithms' terms, so each term is non-negative on its own (exactly 0 at
    ``p = q``) and cancels only in size ``|p - q|`` rather than ``~1`` (as ``q log(q/p) + ...``
    would), so the small values near ``p = q`` that PAC-Bayes bisection compares against keep
    their precision. The last ulp of cancellation is clamped at 0.
    """
    d = p - q
    has_q, has_not_q = q > 0.0, q < 1.0
    # Each term is _kl_term(a, b, b - a) with the exact difference ±d; the limits at q = 0 and
    # q = 1 are the moved first-order terms, d and -d.
    first = _kl_term(jnp.where(has_q, q, 1.0), jnp.where(has_q, p, 1.0), jnp.where(has_q, d, 0.0))
    second = _kl_term(jnp.where(has_not_q, 1.0 - q, 1.0), jnp.where(has_not_q, 1.0 - p, 1.0),
                      jnp.where(has_not_q, -d, 0.0))
    return jnp.where(has_q, first, d) + jnp.where(has_not_q, second, -d)


def bernoulli_kl(q, p, *, base: float = 2.0) -> Array:
    r"""KL divergence between Bernoulli distributions with success probabilities :math:`q`, :math:`p`,
    elementwise (broadcasting):

    .. math:: \mathrm{kl}(q \| p) = q \log_b \frac{q}{p} + (1 - q) \log_b \frac{1 - q}{1 - p}

    the "small kl" of PAC-Bayes bounds (:func:`mlwork.theory.bounds.kl_inverse`). Arguments
    outside ``[0, 1]`` raise when concrete and give ``NaN`` under ``jit``.

    Args:
      q, p: success probabilities in ``[0, 1]``, broadcasting.
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).

    Returns:
      :math:`\mathrm{kl}(q \| p) \ge 0`, the broadcast shape.

    Raises:
      ValueError: a value outside ``[0, 1]`` or a bad ``base`` (when concrete; NaN under ``jit``).

    Example:
      >>> from mlwork import theory
      >>> round(float(theory.bernoulli_kl(0.1, 0.5, base=2.0)), 3)
      0.531

    Reference: Cover & Thomas (2006), eq. (2.26) for two outcomes.
    """
    q, p = _check_probabilities(q, "q"), _check_probabilities(p, "p")
    q, p = _broadcast(q, p, names=("q", "p"))
    ln_b = _log_base(base)
    return _by_rows(lambda a, b: _bernoulli_kl(a, b, ln_b), [q, p], 0)


@jax.jit
def _bernoulli_kl(q, p, ln_b):
    q, p = jnp.broadcast_arrays(q, p)
    valid = (q >= 0.0) & (q <= 1.0) & (p >= 0.0) & (p <= 1.0)
    return _units(_bernoulli_kl_nats(q, p), valid, ln_b)


# --------------------------------------------------------------------------------------------
# Joint distributions p(x, y): X on rows (axis -2), Y on columns (axis -1)
# --------------------------------------------------------------------------------------------

def _marginals(p_xy: Array) -> tuple[Array, Array]:
    return _sum(p_xy, axis=-1), _sum(p_xy, axis=-2)


def joint_entropy(p_xy, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Joint entropy of a joint distribution given as a matrix over the last two axes:

    .. math:: H(X, Y) = -\sum_{x, y} p(x, y) \log_b p(x, y)

    Args:
      p_xy: a joint distribution over the last two axes (:math:`X` on rows, :math:`Y` on
        columns); leading axes are a batch.
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).
      normalize: divide each distribution by its sum first (any positive sum is accepted).

    Returns:
      :math:`H(X, Y)`, the batch shape.

    Raises:
      ValueError: not a distribution (a negative or non-finite entry, a sum off 1), shapes
        that differ, a bad ``base`` — when the values are concrete; under ``jit`` such
        rows give NaN.

    Example:
      >>> import jax.numpy as jnp, math
      >>> from mlwork.theory import information as it
      >>> float(it.joint_entropy(jnp.full((2, 2), 0.25)))  # two fair bits
      2.0

    Reference: Cover & Thomas (2006), eq. (2.8).
    """
    return _one_by_rows(_joint_entropy_nats, _check_distribution(p_xy, "p_xy", normalize, 2), base, normalize, 2)


def _joint_entropy_nats(p_xy):
    return _sum(_neg_plogp(p_xy), axis=(-2, -1))


def conditional_entropy(p_xy, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Conditional entropy :math:`H(Y \mid X)` of a joint distribution (:math:`X` on rows):

    .. math:: H(Y \mid X) = -\sum_{x, y} p(x, y) \log_b \frac{p(x, y)}{p(x)} = H(X, Y) - H(X)

    computed term by term (each term is :math:`\ge 0`) rather than as a difference of entropies.
    For :math:`H(X \mid Y)` pass the transpose, ``jnp.swapaxes(p_xy, -1, -2)``.

    Args:
      p_xy: a joint distribution over the last two axes (:math:`X` on rows, :math:`Y` on
        columns); leading axes are a batch.
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).
      normalize: divide each distribution by its sum first (any positive sum is accepted).

    Returns:
      :math:`H(Y \mid X) \ge 0`, the batch shape.

    Raises:
      ValueError: not a distribution (a negative or non-finite entry, a sum off 1), shapes
        that differ, a bad ``base`` — when the values are concrete; under ``jit`` such
        rows give NaN.

    Example:
      >>> import jax.numpy as jnp, math
      >>> from mlwork.theory import information as it
      >>> float(it.conditional_entropy(jnp.array([[0.5, 0.0], [0.0, 0.5]])))  # Y = X: nothing left
      0.0

    Reference: Cover & Thomas (2006), eqs. (2.10)-(2.14).
    """
    return _one_by_rows(_conditional_entropy_nats, _check_distribution(p_xy, "p_xy", normalize, 2), base,
                        normalize, 2)


def _conditional_entropy_nats(p_xy):
    # Each term -p(x,y) ln(p(x,y)/p(x)) >= 0: p(x,y) <= p(x) also after rounding (a float sum of
    # non-negative terms is at least each term), and log1p makes p(x,y) == p(x) exactly 0.
    p_x, p_y = _marginals(p_xy)
    joint = p_xy > 0.0
    safe = jnp.where(joint, p_xy, 1.0)
    safe_x = jnp.broadcast_to(jnp.where(joint, p_x[..., :, None], 1.0), p_xy.shape)
    terms = jnp.where(joint, -safe * _log_ratio(safe, safe_x), 0.0)
    return _clamp(_sum(terms, axis=(-2, -1)), lo=0.0, hi=_entropy_nats(p_y))


def mutual_information(p_xy, *, base: float = 2.0, normalize: bool = False) -> Array:
    r"""Mutual information of a joint distribution (:math:`X` on rows, :math:`Y` on columns):

    .. math:: I(X; Y) = D_{\mathrm{KL}}\big(P_{XY} \,\|\, P_X P_Y\big)
              = H(X) + H(Y) - H(X, Y) = H(X) - H(X \mid Y)

    :math:`\ge 0`, symmetric, zero iff :math:`X` and :math:`Y` are independent, and
    :math:`I(X; X) = H(X)`. Computed in the KL form, which stays accurate when :math:`I` is
    small (the difference of entropies cancels).

    Args:
      p_xy: a joint distribution over the last two axes (:math:`X` on rows, :math:`Y` on
        columns); leading axes are a batch.
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).
      normalize: divide each distribution by its sum first (any positive sum is accepted).

    Returns:
      :math:`I(X; Y) \ge 0`, the batch shape.

    Raises:
      ValueError: not a distribution (a negative or non-finite entry, a sum off 1), shapes
        that differ, a bad ``base`` — when the values are concrete; under ``jit`` such
        rows give NaN.

    Example:
      >>> import jax.numpy as jnp, math
      >>> from mlwork.theory import information as it
      >>> round(float(it.mutual_information(jnp.array([[0.4, 0.1], [0.1, 0.4]]))), 3)  # 1 - H(0.2)
      0.278

    Reference: Cover & Thomas (2006), eqs. (2.28)-(2.45).
    """
    return _one_by_rows(_mutual_information_nats, _check_distribution(p_xy, "p_xy", normalize, 2), base,
                        normalize, 2)


def _mutual_information_nats(p_xy):
    # Marginals renormalised: a 1-row table then has p(x) = 1 exactly and I = 0 exactly.
    p_x, p_y = _marginals(p_xy)
    p_x, p_y = p_x / _sum(p_x)[..., None], p_y / _sum(p_y)[..., None]
    mi = _sum(_kl_terms(p_xy, p_x[..., :, None] * p_y[..., None, :]), axis=(-2, -1))
    return _clamp(mi, lo=0.0, hi=jnp.minimum(_entropy_nats(p_x), _entropy_nats(p_y)))


# --------------------------------------------------------------------------------------------
# From logits: never leave log space
# --------------------------------------------------------------------------------------------

def _check_logits(z, name: str) -> Array:
    z = _as_float(z)
    if z.ndim < 1:
        fail(name, "an array with a class axis (shape (..., K))", "a scalar")
    values = concrete(z)
    if values is not None and values.size:
        if np.any(np.isnan(values)) or np.any(values == np.inf):
            fail(name, "free of NaN and +inf (-inf masks a class)", "NaN or +inf")
        if np.any(np.all(values == -np.inf, axis=-1)):
            fail(name, "rows with a logit above -inf", "a row that is -inf everywhere (no class left)")
    return z


def _p_and_logp(z: Array) -> tuple[Array, Array, Array]:
    """``softmax(z)``, ``log_softmax(z)`` with ``-inf`` replaced by 0, and the mask ``p > 0``."""
    # log_softmax with the fixed-order sum (so a row's value does not depend on its batch).
    top = jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
    shifted = z - jnp.where(jnp.isfinite(top), top, 0.0)
    logp = shifted - jnp.log(_sum(jnp.exp(shifted)))[..., None]
    support = logp > -jnp.inf
    safe_logp = jnp.where(support, logp, 0.0)
    return jnp.where(support, jnp.exp(safe_logp), 0.0), safe_logp, support


def entropy_from_logits(logits, *, base: float = 2.0) -> Array:
    r"""Entropy of :math:`\mathrm{softmax}(z)` from the logits :math:`z` (last axis):

    .. math:: H = -\sum_k p_k \log p_k, \qquad \log p_k = z_k - \operatorname{logsumexp}(z)

    computed from ``log_softmax`` (log-sum-exp), so it is finite and accurate for logits of any
    size; a logit of ``-inf`` masks its class. Gradients are finite.

    Args:
      logits: :math:`z`, classes on the last axis; no NaN or +inf, each row with an entry
        above -inf.
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).

    Returns:
      :math:`H(\mathrm{softmax}(z))`, the batch shape.

    Raises:
      ValueError: bad logits or ``base`` (when concrete).

    Example:
      >>> import jax.numpy as jnp, math
      >>> from mlwork.theory import information as it
      >>> float(it.entropy_from_logits(jnp.zeros(4)))  # uniform over 4: 2 bits
      2.0

    Reference: Cover & Thomas (2006), eq. (2.1); the log-sum-exp form, e.g. Goodfellow, Bengio &
    Courville, *Deep Learning* (2016), §4.1.
    """
    ln_b = _log_base(base)
    return _by_rows(lambda z: _entropy_from_logits(z, ln_b), [_check_logits(logits, "logits")], 1)


@jax.jit
def _entropy_from_logits(z, ln_b):
    p, logp, support = _p_and_logp(z)
    return _in_units(-_sum(jnp.where(support, p * logp, 0.0)), ln_b)


def kl_from_logits(logits_p, logits_q, *, base: float = 2.0) -> Array:
    r""":math:`D_{\mathrm{KL}}(\mathrm{softmax}(z_p) \,\|\, \mathrm{softmax}(z_q))` from logits
    (last axis), entirely in log space:

    .. math:: D_{\mathrm{KL}} = \sum_k p_k \big(\log p_k - \log q_k\big), \qquad
              \log p = \mathrm{log\_softmax}(z_p),\; \log q = \mathrm{log\_softmax}(z_q)

    The knowledge-distillation loss :math:`D_{\mathrm{KL}}(\text{teacher} \| \text{student})`.
    ``+inf`` where ``logits_q`` masks (``-inf``) a class that ``logits_p`` does not.

    Args:
      logits_p, logits_q: :math:`z_p, z_q`, classes on the last axis, the same shape; checked
        as in :func:`entropy_from_logits`.
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).

    Returns:
      :math:`D_{\mathrm{KL}} \ge 0`, the batch shape.

    Raises:
      ValueError: bad logits, different shapes or a bad ``base`` (when concrete).

    Example:
      >>> import jax.numpy as jnp, math
      >>> from mlwork.theory import information as it
      >>> float(it.kl_from_logits(jnp.array([1.0, 2.0]), jnp.array([11.0, 12.0])))  # a shift changes nothing
      0.0

    Reference: Kullback & Leibler (1951); G. Hinton, O. Vinyals, J. Dean, "Distilling the
    Knowledge in a Neural Network", 2015.
    """
    zp, zq = _check_logits(logits_p, "logits_p"), _check_logits(logits_q, "logits_q")
    check_same_shape(zp, zq, "logits_p", "logits_q")
    if zp.dtype != zq.dtype:
        dtype = jnp.promote_types(zp.dtype, zq.dtype)
        zp, zq = zp.astype(dtype), zq.astype(dtype)
    ln_b = _log_base(base)
    return _by_rows(lambda a, b: _kl_from_logits(a, b, ln_b), [zp, zq], 1)


@jax.jit
def _kl_from_logits(zp, zq, ln_b):
    # Terms p δ − p + q with δ = log p − log q, each >= 0 (the −p + q parts sum to 0): near
    # δ = 0 as p (δ + expm1(−δ)), exactly 0 for equal logits; the last ulp is clamped at 0.
    p, logp, support_p = _p_and_logp(zp)
    q, logq, support_q = _p_and_logp(zq)
    missing = support_p & ~support_q
    both = support_p & support_q
    delta = jnp.where(both, logp - logq, 0.0)
    near = jnp.abs(delta) < 0.5
    near_term = p * (jnp.where(near, delta, 0.0) + jnp.expm1(-jnp.where(near, delta, 0.0)))
    term = _clamp(jnp.where(near, near_term, p * delta - p + q), lo=0.0)
    terms = jnp.where(both, term, jnp.where(support_q, q, 0.0))
    return _in_units(jnp.where(jnp.any(missing, axis=-1), jnp.inf, _sum(terms)), ln_b)


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
        fail(name, "positive standard deviations", f"values in {span}" if finite.size else "non-finite values")
    return sigma


def _check_mean(mu, name: str) -> Array:
    mu = _as_float(mu)
    values = concrete(mu)
    if values is not None and values.size and not np.all(np.isfinite(values)):
        fail(name, "finite", "NaN or ±inf")
    return mu


def _broadcast(*arrays: Array, names: tuple[str, ...]) -> list[Array]:
    """Check that the shapes broadcast and give the arrays one dtype (kernels broadcast them)."""
    try:
        jnp.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays, strict=True))
        fail(", ".join(names), "arrays whose shapes broadcast together", shapes)
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

    Args:
      mu_p, sigma_p: the first Gaussian's means and standard deviations (``sigma > 0``).
      mu_q, sigma_q: the second's (default the standard normal).
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).

    Returns:
      :math:`D_{\mathrm{KL}} \ge 0`, the broadcast shape without its last axis.

    Raises:
      ValueError: a non-positive or non-finite ``sigma``, a non-finite mean, shapes that do
        not broadcast, a bad ``base`` (when concrete; NaN under ``jit``).

    Example:
      >>> import math
      >>> from mlwork.theory import information as it
      >>> round(float(it.gaussian_kl(1.0, 1.0, base=math.e)), 3)  # (mu_p - mu_q)^2 / 2
      0.5

    Reference: D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014,
    Appendix B; Cover & Thomas (2006), Problem 8.
    """
    names = ("mu_p", "sigma_p", "mu_q", "sigma_q")
    mu_p, mu_q = _check_mean(mu_p, "mu_p"), _check_mean(mu_q, "mu_q")
    sigma_p, sigma_q = _check_sigma(sigma_p, "sigma_p"), _check_sigma(sigma_q, "sigma_q")
    args, ln_b = _broadcast(mu_p, sigma_p, mu_q, sigma_q, names=names), _log_base(base)
    if all(a.ndim == 0 for a in args):  # one one-dimensional Gaussian: a sum of one term
        args = [a[None] for a in args]
    return _by_rows(lambda *a: _gaussian_kl(*a, ln_b), args, 1)


@jax.jit
def _gaussian_kl(mu_p, sigma_p, mu_q, sigma_q, ln_b):
    mu_p, sigma_p, mu_q, sigma_q = jnp.broadcast_arrays(mu_p, sigma_p, mu_q, sigma_q)
    # Per dimension ½(r² − 1 − 2 ln r) + ½((μp − μq)/σq)² with r = σp/σq, both parts >= 0. Near
    # r = 1, with r = 1 + d, d = (σp − σq)/σq (σp − σq exact there), the first is
    # h(d) + d²/2, h(d) = d − log1p(d) >= 0: a sum of two non-negative terms, accurate to a few
    # ulp relative even for σ's 1 ulp apart, and exactly 0 for σp == σq (the form ½(e^{2s} − 1 − 2s),
    # s = ln r, lost log2(1/s) bits: 45% in float32 at 100 ulp). ln r falls back to a difference of
    # logs where r over/underflows, so an extreme ratio gives +inf rather than inf − inf.
    ok = (sigma_p > 0) & (sigma_q > 0)
    sp, sq = jnp.where(ok, sigma_p, 1.0), jnp.where(ok, sigma_q, 1.0)
    r = sp / sq
    near = (r >= 0.5) & (r <= 2.0)
    d = _quotient(jnp.where(near, sp - sq, 0.0), jnp.where(near, sq, 1.0))
    far = _clamp(0.5 * (jnp.square(_quotient(sp, sq)) - 1.0) - _log_ratio(sp, sq), lo=0.0)
    spread = jnp.where(near, _x_minus_log1p(d) + 0.5 * jnp.square(d), far)
    terms = spread + 0.5 * jnp.square(_quotient(mu_p - mu_q, sq))
    terms = jnp.where(ok, terms, jnp.nan)
    return _in_units(_sum(terms) if terms.ndim else terms, ln_b)


def gaussian_entropy(sigma, *, base: float = 2.0) -> Array:
    r"""Differential entropy of a diagonal Gaussian, summed over the last axis:

    .. math:: h\big(\mathcal N(\mu, \operatorname{diag}\sigma^2)\big)
              = \sum_j \tfrac12 \log_b\!\big(2\pi e\, \sigma_j^2\big)

    independent of the mean; negative when :math:`\sigma_j < 1/\sqrt{2\pi e}`. A 0-d ``sigma``
    is one Gaussian. Agrees with ``scipy.stats.norm(scale=sigma).entropy()`` (nats).

    Args:
      sigma: standard deviations, positive.
      base: the logarithm's base: 2 (bits, the default), ``math.e`` (nats), 10 (hartleys).

    Returns:
      :math:`h`, the shape of ``sigma`` without its last axis.

    Raises:
      ValueError: a non-positive or non-finite ``sigma`` or a bad ``base`` (when concrete).

    Example:
      >>> import math
      >>> from mlwork.theory import information as it
      >>> round(float(it.gaussian_entropy(1.0, base=math.e)), 4)  # ½ ln(2πe)
      1.4189

    Reference: Cover & Thomas (2006), Theorem 8.4.1.
    """
    sigma, ln_b = _check_sigma(sigma, "sigma"), _log_base(base)
    if sigma.ndim == 0:  # one one-dimensional Gaussian: a sum of one term
        sigma = sigma[None]
    return _by_rows(lambda x: _gaussian_entropy(x, ln_b), [sigma], 1)


@jax.jit
def _gaussian_entropy(sigma, ln_b):
    terms = 0.5 * math.log(2.0 * math.pi * math.e) + jnp.log(sigma)
    terms = jnp.where(sigma > 0, terms, jnp.nan)
    return _in_units(_sum(terms) if terms.ndim else terms, ln_b)
