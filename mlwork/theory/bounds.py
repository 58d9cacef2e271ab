r"""Generalisation bounds of deck section 18, vectorised over their arguments.

Every bound holds with probability at least :math:`1 - \delta` over the draw of the
:math:`n` training examples, for the 0-1 loss, so the true risk :math:`R(h)` lies in
:math:`[0, 1]`. A bound :math:`\ge 1` says nothing: it is returned as computed (never clipped)
and :func:`is_vacuous` flags it.

Arguments broadcast against each other (``jnp`` semantics) and the result has the broadcast
shape, so one call evaluates a bound on a whole grid of ``n``, ``d`` or ``δ``. Argument checks
(``δ ∈ (0, 1)``, ``n > 0``, ``d > 0``, ``ε ∈ (0, 1)``, training error in ``[0, 1]``,
``KL ≥ 0``) raise ``ValueError`` naming the argument when the values are concrete; under ``jit``
the entries with invalid arguments come out as ``NaN``.

Shattering (:func:`shatters`, :func:`realizes`) is combinatorial and runs on the host with
NumPy and SciPy's exact LP solver; it is not traceable.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linprog

from mlwork._validate import check_choice, check_int, fail
from mlwork.theory.information import _bernoulli_kl_nats

Array = jax.Array

__all__ = [
    "finite_class_bound", "vc_bound", "vc_sample_complexity", "finite_class_sample_complexity",
    "pac_bayes_bound", "kl_inverse", "is_vacuous", "vc_dimension", "shatters", "realizes",
    "HYPOTHESIS_CLASSES",
]

#: The deck's hypothesis classes with a closed-form VC dimension and an exact shattering test.
HYPOTHESIS_CLASSES = ("linear", "interval", "rectangle")


# --------------------------------------------------------------------------------------------
# Argument checks: on the host when values are concrete (raise), and again inside each jitted
# kernel as a mask (NaN where invalid), which only matters under tracing.
# --------------------------------------------------------------------------------------------

_RULES: dict[str, tuple[Callable, str]] = {
    "open_unit": (lambda a: (a > 0) & (a < 1), "in the open interval (0, 1)"),
    "unit": (lambda a: (a >= 0) & (a <= 1), "in [0, 1]"),
    "positive": (lambda a: a > 0, "positive"),
    "non_negative": (lambda a: a >= 0, "non-negative"),
    "class_size": (lambda a: a >= 1, "at least 1 (a class size)"),
}


def _host_values(value, name: str) -> np.ndarray | None:
    """``value`` as float64 on the host, converted without wrapping: integers of any type and
    size (a NumPy int64 above 2**31, a Python int above 2**63) keep their value (rounded to
    float64). ``None`` for a tracer (its value is not known yet)."""
    if isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, jax.Array):
        return np.asarray(value).astype(np.float64)
    try:
        host = np.asarray(value)
        if host.dtype.kind in "biuO":  # Python ints beyond int64 come as objects
            host = host.astype(np.float64)
        if host.dtype.kind not in "f":
            raise TypeError(host.dtype)
    except (TypeError, ValueError, OverflowError):
        fail(name, "a real number or an array of them", f"{value!r} ({type(value).__name__})")
    return host.astype(np.float64)


def _arg(value, name: str, rule: str) -> Array:
    """``value`` as a float array (integers of any type and size keep their value, rounded to
    float32); raises ``ValueError`` naming it if a known entry breaks ``rule`` or does not fit
    the float type the computation uses."""
    host = _host_values(value, name)
    if host is None:
        x = value if jnp.issubdtype(value.dtype, jnp.floating) else value.astype(jnp.float32)
        return x
    given = getattr(value, "dtype", None)
    dtype = jnp.dtype(given) if given is not None and np.dtype(given).kind == "f" else jnp.dtype(jnp.float32)
    dtype = jnp.asarray(np.zeros((), dtype)).dtype  # float64 becomes float32 unless x64 is on
    ok, expected = _RULES[rule]
    finite = np.isfinite(host)
    too_big = finite & (np.abs(host) > float(jnp.finfo(dtype).max))
    if np.any(too_big):
        fail(name, f"at most {float(jnp.finfo(dtype).max):.3g} in magnitude (the largest {dtype})",
             f"{host[too_big].flat[0]:.6g}")
    values = host.astype(dtype)
    # XLA on CPU flushes subnormals to zero, so judge them as the computation will see them.
    subnormal = (values != 0) & (np.abs(values) < np.finfo(values.dtype).tiny)
    bad = ~(np.isfinite(values) & ok(np.where(subnormal, 0.0, values).astype(values.dtype)))
    if np.any(bad):
        first = values[bad].flat[0]  # shown in the dtype the computation uses
        note = " (a subnormal float, which the computation sees as 0)" if np.any(subnormal & bad) else ""
        fail(name, expected, f"{first!s}{note}")
    return jnp.asarray(values)


def _shapes(**arrays: Array) -> tuple[Array, ...]:
    """Check that the arguments broadcast together, naming them if not; give them one dtype."""
    try:
        jnp.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {a.shape}" for k, a in arrays.items())
        fail("the arguments", "arrays that broadcast together", shapes)
    dtype = jnp.result_type(*(a.dtype for a in arrays.values()))
    return tuple(a if a.dtype == dtype else a.astype(dtype) for a in arrays.values())


def _valid(x: Array, rule: str) -> Array:
    return _RULES[rule][0](x) & jnp.isfinite(x)


def _finish(value: Array, *checks: tuple[Array, str]) -> Array:
    """``value`` with NaN wherever an argument breaks its rule (traceable)."""
    ok = jnp.ones(value.shape, bool)
    for x, rule in checks:
        ok = ok & jnp.broadcast_to(_valid(x, rule), value.shape)
    return jnp.where(ok, value, jnp.nan)


def _log_hypotheses(n_hypotheses, log_n_hypotheses) -> Array:
    """``ln |H|`` from exactly one of ``n_hypotheses`` / ``log_n_hypotheses``."""
    if (n_hypotheses is None) == (log_n_hypotheses is None):
        fail("n_hypotheses or log_n_hypotheses", "given (exactly one of them)",
             "both" if n_hypotheses is not None else "neither")
    if log_n_hypotheses is not None:
        return _arg(log_n_hypotheses, "log_n_hypotheses", "non_negative")
    if isinstance(n_hypotheses, numbers.Integral) and not isinstance(n_hypotheses, bool):
        # Integers are exact at any size: 2**(32 * W) for a float32 network is fine here.
        n = check_int(n_hypotheses, "n_hypotheses", minimum=1)
        return jnp.asarray(math.log(n), jnp.float32)
    host = _host_values(n_hypotheses, "n_hypotheses")
    if host is not None:  # the logarithm on the host: a class size beyond float32 keeps its log
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(host)
        _arg(np.where(np.isfinite(host) & (host >= 1), 1.0, host), "n_hypotheses", "class_size")
        return jnp.asarray(logs.astype(np.float32))
    # ln of a class size below 1 is negative (or NaN), which the kernels flag as invalid.
    return jnp.log(_arg(n_hypotheses, "n_hypotheses", "class_size"))


# --------------------------------------------------------------------------------------------
# Uniform-convergence bounds
# --------------------------------------------------------------------------------------------

def finite_class_bound(train_error, n_hypotheses=None, n=None, delta=0.05, *, log_n_hypotheses=None) -> Array:
    r"""Occam / finite-class bound: with probability :math:`\ge 1 - \delta`, for every
    :math:`h` in a finite class :math:`\mathcal H`,

    .. math:: R(h) \le \hat R(h) + \sqrt{\frac{\ln|\mathcal H| + \ln(1/\delta)}{2n}}

    (Hoeffding's inequality plus a union bound). Give the class size as ``n_hypotheses`` (a
    Python ``int`` of any size is used exactly) or, for classes too large for a float, its
    natural log as ``log_n_hypotheses`` — e.g. a network of :math:`W` float32 weights has at most
    :math:`2^{32W}` functions, ``log_n_hypotheses = 32 * W * ln 2``.

    Args:
      train_error: :math:`\hat R(h) \in [0, 1]`.
      n_hypotheses: :math:`|\mathcal H| \ge 1`, of any integer
        type and size (converted on the host, rounded to float32); its log is taken on the host.
      n: the number of training examples, positive, of any integer
        type and size (converted on the host, rounded to float32).
      delta: :math:`\delta \in (0, 1)`.
      log_n_hypotheses: :math:`\ln|\mathcal H| \ge 0` instead of ``n_hypotheses``.

    Returns:
      The bound, the broadcast shape of the arguments (float32).

    Raises:
      ValueError: an argument outside its range (naming it), a count too large for float32,
        shapes that do not broadcast — when the values are known; under ``jit`` the entries with
        invalid arguments are NaN.

    Example:
      >>> import numpy as np
      >>> from mlwork.theory import bounds
      >>> round(float(bounds.finite_class_bound(0.05, 1000, 10_000, 0.05)), 4)
      0.0723
      >>> round(float(bounds.finite_class_bound(0.05, 1000, np.int64(2**32 + 1000))), 6)  # not wrapped
      0.050034

    Reference: deck §18 "Finite Hypothesis Bound"; S. Shalev-Shwartz and S. Ben-David,
    *Understanding Machine Learning* (2014), Corollary 4.6 (two-sided; this is the one-sided form).
    """
    if n is None:
        fail("n", "the number of training examples", None)
    args = _shapes(train_error=_arg(train_error, "train_error", "unit"),
                   log_n_hypotheses=_log_hypotheses(n_hypotheses, log_n_hypotheses),
                   n=_arg(n, "n", "positive"), delta=_arg(delta, "delta", "open_unit"))
    return _finite_class_bound(*args)


@jax.jit
def _finite_class_bound(r, log_h, n, delta):
    r, log_h, n, delta = jnp.broadcast_arrays(r, log_h, n, delta)
    value = r + jnp.sqrt((log_h - jnp.log(delta)) / (2.0 * n))
    return _finish(value, (r, "unit"), (log_h, "non_negative"), (n, "positive"), (delta, "open_unit"))


def vc_bound(train_error, vc_dim, n, delta=0.05) -> Array:
    r"""VC bound as the deck writes it: with probability :math:`\ge 1 - \delta`, for every
    :math:`h` in a class of VC dimension :math:`d`,

    .. math:: R(h) \le \hat R(h) + \sqrt{\frac{d\,(\ln(2n/d) + 1) + \ln(4/\delta)}{n}}

    It rests on the Sauer-Shelah bound :math:`(en/d)^d` on the growth function, which needs
    :math:`n \ge d`; for :math:`n < d` the class may shatter the sample, nothing follows, and the
    bound is returned as ``+inf`` (vacuous). It is vacuous long before that in practice.

    Args:
      train_error: :math:`\hat R(h) \in [0, 1]`.
      vc_dim: :math:`d > 0`, of any integer
        type and size (converted on the host, rounded to float32).
      n: the number of training examples, positive, of any integer
        type and size (converted on the host, rounded to float32).
      delta: :math:`\delta \in (0, 1)`.

    Returns:
      The bound (``+inf`` where :math:`n < d`), the broadcast shape (float32).

    Raises:
      ValueError: an argument outside its range (naming it), a count too large for float32,
        shapes that do not broadcast — when the values are known; under ``jit`` the entries with
        invalid arguments are NaN.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.theory import bounds
      >>> round(float(bounds.vc_bound(0.1, vc_dim=3, n=1000)), 3)
      0.264
      >>> bounds.vc_bound(0.0, jnp.array([[3.0], [100.0]]), jnp.array([1e3, 1e5])).shape  # a grid
      (2, 2)

    Reference: deck §18 "VC Bound"; V. N. Vapnik, *The Nature of Statistical Learning Theory*
    (1995), eq. (3.23) (with :math:`\eta = \delta`).
    """
    args = _shapes(train_error=_arg(train_error, "train_error", "unit"),
                   vc_dim=_arg(vc_dim, "vc_dim", "positive"),
                   n=_arg(n, "n", "positive"), delta=_arg(delta, "delta", "open_unit"))
    return _vc_bound(*args)


@jax.jit
def _vc_bound(r, d, n, delta):
    r, d, n, delta = jnp.broadcast_arrays(r, d, n, delta)
    safe_n = jnp.maximum(n, d)  # the value for n < d is replaced by +inf below
    complexity = d * (jnp.log(2.0 * safe_n / d) + 1.0) + jnp.log(4.0 / delta)
    value = jnp.where(n >= d, r + jnp.sqrt(complexity / safe_n), jnp.inf)
    return _finish(value, (r, "unit"), (d, "positive"), (n, "positive"), (delta, "open_unit"))


def vc_sample_complexity(epsilon, delta, vc_dim) -> Array:
    r"""Samples sufficient to reach error :math:`\le \epsilon` with probability
    :math:`\ge 1 - \delta` (realisable PAC learning), as the deck writes it:

    .. math:: m = \Big\lceil \frac{1}{\epsilon}\Big(d \ln\frac{1}{\epsilon} + \ln\frac{1}{\delta}\Big)\Big\rceil

    The deck drops constants; the proven bound has them, e.g. Blumer et al. (1989):
    :math:`m \ge \max\big(\tfrac{4}{\epsilon}\log_2\tfrac{2}{\delta},
    \tfrac{8d}{\epsilon}\log_2\tfrac{13}{\epsilon}\big)`. Returned as a float array holding whole
    numbers (exact up to :math:`2^{24}` in float32; large sample sizes overflow int32).

    Args:
      epsilon: the target error :math:`\epsilon \in (0, 1)`.
      delta: :math:`\delta \in (0, 1)`.
      vc_dim: :math:`d > 0`, of any integer
        type and size (converted on the host, rounded to float32).

    Returns:
      :math:`m`, whole numbers as float32, the broadcast shape.

    Raises:
      ValueError: an argument outside its range (naming it), a count too large for float32,
        shapes that do not broadcast — when the values are known; under ``jit`` the entries with
        invalid arguments are NaN.

    Example:
      >>> from mlwork.theory import bounds
      >>> float(bounds.vc_sample_complexity(0.05, 0.01, 10))
      692.0

    Reference: deck §18 "Sample Complexity"; A. Blumer, A. Ehrenfeucht, D. Haussler,
    M. Warmuth, "Learnability and the Vapnik-Chervonenkis dimension", J. ACM 36 (1989).
    """
    args = _shapes(epsilon=_arg(epsilon, "epsilon", "open_unit"), delta=_arg(delta, "delta", "open_unit"),
                   vc_dim=_arg(vc_dim, "vc_dim", "positive"))
    return _vc_sample_complexity(*args)


@jax.jit
def _vc_sample_complexity(eps, delta, d):
    eps, delta, d = jnp.broadcast_arrays(eps, delta, d)
    m = jnp.ceil((d * -jnp.log(eps) - jnp.log(delta)) / eps)
    return _finish(m, (eps, "open_unit"), (delta, "open_unit"), (d, "positive"))


def finite_class_sample_complexity(epsilon, delta, n_hypotheses=None, *, log_n_hypotheses=None) -> Array:
    r"""Samples sufficient for a consistent learner over a finite class to reach error
    :math:`\le \epsilon` with probability :math:`\ge 1 - \delta`:

    .. math:: m = \Big\lceil \frac{1}{\epsilon}\Big(\ln|\mathcal H| + \ln\frac{1}{\delta}\Big)\Big\rceil

    ``log_n_hypotheses`` (natural log) replaces ``n_hypotheses`` for huge classes. A float
    array of whole numbers, as :func:`vc_sample_complexity`.

    Args:
      epsilon: the target error :math:`\epsilon \in (0, 1)`.
      delta: :math:`\delta \in (0, 1)`.
      n_hypotheses: :math:`|\mathcal H| \ge 1`, of any integer
        type and size (converted on the host, rounded to float32).
      log_n_hypotheses: :math:`\ln|\mathcal H|` instead.

    Returns:
      :math:`m`, whole numbers as float32, the broadcast shape.

    Raises:
      ValueError: an argument outside its range (naming it), a count too large for float32,
        shapes that do not broadcast — when the values are known; under ``jit`` the entries with
        invalid arguments are NaN.

    Example:
      >>> from mlwork.theory import bounds
      >>> float(bounds.finite_class_sample_complexity(0.1, 0.05, 1000))
      100.0

    Reference: Shalev-Shwartz & Ben-David (2014), Corollary 2.3; D. Haussler, "Quantifying
    inductive bias", Artificial Intelligence 36 (1988).
    """
    args = _shapes(epsilon=_arg(epsilon, "epsilon", "open_unit"), delta=_arg(delta, "delta", "open_unit"),
                   log_n_hypotheses=_log_hypotheses(n_hypotheses, log_n_hypotheses))
    return _finite_class_sample_complexity(*args)


@jax.jit
def _finite_class_sample_complexity(eps, delta, log_h):
    eps, delta, log_h = jnp.broadcast_arrays(eps, delta, log_h)
    m = jnp.ceil((log_h - jnp.log(delta)) / eps)
    return _finish(m, (eps, "open_unit"), (delta, "open_unit"), (log_h, "non_negative"))


# --------------------------------------------------------------------------------------------
# PAC-Bayes
# --------------------------------------------------------------------------------------------

_KL_INVERSE_STEPS = 60


@jax.custom_jvp
def _kl_inverse(q: Array, c: Array) -> Array:
    # Bisection on p ∈ [q, 1] for kl(q || p) = c; kl(q || ·) is increasing on [q, 1].
    def body(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        above = _bernoulli_kl_nats(q, mid) > c
        return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

    lo, hi = jax.lax.fori_loop(0, _KL_INVERSE_STEPS, body, (q, jnp.ones_like(q)))
    # ``lo`` always satisfies kl(q || lo) <= c; use it unless the whole interval does.
    reaches_one = _bernoulli_kl_nats(q, jnp.ones_like(q)) <= c
    return jnp.where(reaches_one, jnp.ones_like(q), lo)


@_kl_inverse.defjvp
def _kl_inverse_jvp(primals, tangents):
    # Implicit function theorem on F(q, p) = kl(q || p) - c = 0:
    #   dp = (dc - ∂F/∂q dq) / ∂F/∂p,  ∂F/∂p = (p - q) / (p (1 - p)),
    #   ∂F/∂q = ln(q / p) - ln((1 - q) / (1 - p)).
    q, c = primals
    dq, dc = tangents
    p = _kl_inverse(q, c)
    interior = (p > q) & (p < 1.0)
    sp = jnp.where(interior, p, 0.5)
    sq = jnp.where(interior, q, 0.25)
    dfdp = (sp - sq) / (sp * (1.0 - sp))
    # At q = 0 the q-derivative is -inf (dp/dq = +inf); only the c-derivative is passed on there.
    dfdq = jnp.where(sq > 0, jnp.log(sq / sp), 0.0) - jnp.log((1.0 - sq) / (1.0 - sp))
    dp = jnp.where(interior, (dc - dfdq * dq) / dfdp, 0.0)
    return p, dp


def kl_inverse(q, c) -> Array:
    r"""Upper inverse of the binary KL divergence:

    .. math:: \mathrm{kl}^{-1}(q, c) = \max\{\,p \in [q, 1] : \mathrm{kl}(q \| p) \le c\,\}

    with :math:`\mathrm{kl}` the Bernoulli KL in nats (:func:`mlwork.theory.information.bernoulli_kl`).
    Solved by bisection in a fixed number of steps (``jit``/``vmap``-able, elementwise with
    broadcasting); differentiable through the implicit function theorem.

    Args:
      q: :math:`q \in [0, 1]`.
      c: :math:`c \ge 0`, in nats.

    Returns:
      :math:`\mathrm{kl}^{-1}(q, c) \in [q, 1]`, the broadcast shape.

    Raises:
      ValueError: an argument outside its range (naming it), a count too large for float32,
        shapes that do not broadcast — when the values are known; under ``jit`` the entries with
        invalid arguments are NaN.

    Example:
      >>> import math
      >>> from mlwork.theory import bounds
      >>> round(float(bounds.kl_inverse(0.0, math.log(2))), 4)  # kl(0 || p) = -ln(1 - p)
      0.5

    Reference: M. Seeger, "PAC-Bayesian generalisation error bounds for Gaussian process
    classification", JMLR 3 (2002); G. K. Dziugaite and D. M. Roy, UAI 2017, §2.
    """
    return _kl_inverse_checked(*_shapes(q=_arg(q, "q", "unit"), c=_arg(c, "c", "non_negative")))


@jax.jit
def _kl_inverse_checked(q, c):
    q, c = jnp.broadcast_arrays(q, c)
    return _finish(_kl_inverse(q, c), (q, "unit"), (c, "non_negative"))


PAC_BAYES_FORMS = ("mcallester", "kl")


def pac_bayes_bound(train_error, kl, n, delta=0.05, *, form: str = "mcallester") -> Array:
    r"""PAC-Bayes bound on the risk of a stochastic classifier :math:`Q` (a posterior over
    weights), given a prior :math:`P` chosen before seeing the data. With probability
    :math:`\ge 1 - \delta`, for all :math:`Q` at once, writing
    :math:`B = \mathrm{KL}(Q\|P) + \ln(2\sqrt n/\delta)`:

    * ``form="mcallester"`` (McAllester's form, with Maurer's constant):

      .. math:: R(Q) \le \hat R(Q) + \sqrt{\frac{B}{2n}}

    * ``form="kl"`` (the tighter Seeger/Maurer form, solved numerically with :func:`kl_inverse`):

      .. math:: R(Q) \le \mathrm{kl}^{-1}\big(\hat R(Q),\, B / n\big)

    ``kl`` is :math:`\mathrm{KL}(Q\|P)` **in nats** (e.g.
    ``gaussian_kl(w, sigma, w0, sigma0, base=math.e)``); ``train_error`` is the empirical risk of
    the *stochastic* classifier :math:`\hat R(Q) = \mathbb E_{h\sim Q}\hat R(h)`. Maurer's theorem
    needs :math:`n \ge 8`. The kl form is always :math:`\le 1` and at most the McAllester form (by
    Pinsker's inequality); with a Gaussian posterior around trained weights these are the bounds
    that can be non-vacuous for neural networks.

    Args:
      train_error: :math:`\hat R(Q) \in [0, 1]`.
      kl: :math:`\mathrm{KL}(Q\|P) \ge 0`, in nats.
      n: the number of training examples, positive, of any integer
        type and size (converted on the host, rounded to float32).
      delta: :math:`\delta \in (0, 1)`.
      form: ``"mcallester"`` or ``"kl"``.

    Returns:
      The bound, the broadcast shape (float32).

    Raises:
      ValueError: an unknown ``form``, an argument outside its range (naming it), a count too large for float32,
        shapes that do not broadcast — when the values are known; under ``jit`` the entries with
        invalid arguments are NaN.

    Example:
      >>> from mlwork.theory import bounds
      >>> round(float(bounds.pac_bayes_bound(0.1, 10.0, n=1000)), 3)
      0.193
      >>> round(float(bounds.pac_bayes_bound(0.1, 10.0, n=1000, form="kl")), 3)  # tighter
      0.164

    References: D. McAllester, "PAC-Bayesian model averaging", COLT 1999; A. Maurer, "A note
    on the PAC Bayesian theorem", 2004; Seeger (2002); G. K. Dziugaite and D. M. Roy, "Computing
    nonvacuous generalization bounds for deep (stochastic) neural networks", UAI 2017.
    """
    if form not in PAC_BAYES_FORMS:
        check_choice(form, "form", PAC_BAYES_FORMS)
    args = _shapes(train_error=_arg(train_error, "train_error", "unit"), kl=_arg(kl, "kl", "non_negative"),
                   n=_arg(n, "n", "positive"), delta=_arg(delta, "delta", "open_unit"))
    return _pac_bayes_bound(*args, form=form)


@partial(jax.jit, static_argnames="form")
def _pac_bayes_bound(r, kl, n, delta, form):
    r, kl, n, delta = jnp.broadcast_arrays(r, kl, n, delta)
    # B < 0 only when 2·sqrt(n) < delta (n < 1/4: no sample at all); clamping B at 0 keeps the
    # bound valid (it only loosens it) and finite in both forms.
    budget = jnp.maximum(kl + jnp.log(2.0 * jnp.sqrt(n) / delta), 0.0)
    if form == "mcallester":
        positive = budget > 0  # sqrt's infinite slope at 0 stays out of the gradient
        value = r + jnp.where(positive, jnp.sqrt(jnp.where(positive, budget, 1.0) / (2.0 * n)), 0.0)
    else:
        value = _kl_inverse(r, budget / n)
    return _finish(value, (r, "unit"), (kl, "non_negative"), (n, "positive"), (delta, "open_unit"))


def is_vacuous(bound, max_loss: float = 1.0, *, atol: float = 1e-6) -> Array:
    r"""``True`` where a risk bound says nothing: :math:`\text{bound} \ge` ``max_loss`` − ``atol``
    (``max_loss`` = 1 for the 0-1 loss, whose risk never exceeds 1). The tolerance catches
    bounds that only rounding keeps below 1, such as a kl-inverse bound at the largest float32
    below 1. ``NaN`` bounds (invalid arguments under ``jit``) are not flagged; check them with
    ``jnp.isnan``."""
    return jnp.asarray(bound) >= max_loss - atol

# --------------------------------------------------------------------------------------------
# VC dimension and shattering
# --------------------------------------------------------------------------------------------

def _check_class(hypothesis_class: str) -> str:
    return check_choice(hypothesis_class, "hypothesis_class", HYPOTHESIS_CLASSES)

def vc_dimension(hypothesis_class: str, dim: int | None = None) -> int:
    r"""VC dimension of the deck's hypothesis classes:

    * ``"linear"``: half-spaces :math:`\{x : w^\top x + b \ge 0\}` in :math:`\mathbb R^d`:
      :math:`d + 1` (``dim`` required);
    * ``"interval"``: intervals :math:`[a, b]` on :math:`\mathbb R`: 2 (``dim`` must be 1 or
      omitted);
    * ``"rectangle"``: axis-aligned boxes in :math:`\mathbb R^d`: :math:`2d` (``dim`` defaults to
      2, the deck's 4).

    Args:
      bound: risk bounds, any shape.
      max_loss: the largest possible risk (1 for the 0-1 loss).
      atol: the tolerance below ``max_loss``.

    Returns:
      bool, the shape of ``bound``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.theory import bounds
      >>> bounds.is_vacuous(jnp.array([0.3, 1.0, 7.5])).tolist()
      [False, True, True]

    Args:
      hypothesis_class: ``"linear"``, ``"interval"`` or ``"rectangle"``.
      dim: the input dimension, a positive integer (required for ``"linear"``).

    Returns:
      The VC dimension, a Python ``int``.

    Raises:
      ValueError: an unknown class, a missing or non-positive ``dim``, ``dim != 1`` for intervals.

    Example:
      >>> from mlwork.theory import bounds
      >>> bounds.vc_dimension("linear", 2), bounds.vc_dimension("rectangle")
      (3, 4)

    Reference: deck §18 "VC Examples"; Shalev-Shwartz & Ben-David (2014), §6.3 and Theorem 9.2.
    """
    cls = _check_class(hypothesis_class)
    if dim is not None:
        dim = check_int(dim, "dim", minimum=1)
    if cls == "linear":
        if dim is None:
            fail("dim", "the dimension of the input space for 'linear'", None)
        return int(dim) + 1
    if cls == "interval":
        if dim not in (None, 1):
            fail("dim", "1 for 'interval' (intervals live on the real line)", dim)
        return 2
    return 2 * int(2 if dim is None else dim)


def _points(points, hypothesis_class: str) -> np.ndarray:
    x = np.asarray(points, dtype=np.float64)
    if hypothesis_class == "interval" and x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] < 1:
        fail("points", "of shape (m, d) (or (m,) for intervals)", f"shape {np.shape(points)}")
    if hypothesis_class == "interval" and x.shape[1] != 1:
        fail("points", "on the line for intervals, of shape (m,) or (m, 1)", f"shape {x.shape}")
    if not np.all(np.isfinite(x)):
        fail("points", "finite", "NaN or ±inf")
    return x


def _box_realizes(x: np.ndarray, labels: np.ndarray) -> bool:
    # Intervals and axis-aligned boxes: the labelling is realisable iff the bounding box of the
    # positive points contains no negative point (an empty box realises "all negative").
    pos, neg = x[labels], x[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return True
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    inside = np.all((neg >= lo) & (neg <= hi), axis=1)
    return not bool(np.any(inside))


def _linear_realizes(x: np.ndarray, labels: np.ndarray) -> bool:
    # Strict linear separability of two finite sets ⇔ the LP  s_i (w·x_i + b) ≥ 1  is feasible
    # (scale any strict separator). Decided exactly by HiGHS; no objective.
    if labels.all() or not labels.any():
        return True
    s = np.where(labels, 1.0, -1.0)
    a_ub = -s[:, None] * np.hstack([x, np.ones((len(x), 1))])
    res = linprog(np.zeros(x.shape[1] + 1), A_ub=a_ub, b_ub=-np.ones(len(x)),
                  bounds=[(None, None)] * (x.shape[1] + 1), method="highs")
    if res.status not in (0, 2):
        raise RuntimeError(f"linear program for separability failed: {res.message}")
    return res.status == 0


def realizes(points, labels, hypothesis_class: str) -> bool:
    r"""Whether some hypothesis in the class labels ``points`` (shape ``(m, d)``) exactly as
    ``labels`` (``m`` booleans or 0/1, ``True`` = positive/inside).

    ``"linear"``: a strict separating hyperplane exists — decided exactly by the linear program
    :math:`s_i(w^\top x_i + b) \ge 1` (SciPy's HiGHS). ``"interval"`` / ``"rectangle"``: the
    bounding box of the positives contains no negative point (closed form).

    Args:
      points: ``(m, d)`` finite points (``(m,)`` for intervals).
      labels: ``m`` booleans or 0/1.
      hypothesis_class: ``"linear"``, ``"interval"`` or ``"rectangle"``.

    Returns:
      Whether the labelling is realisable, a Python ``bool``.

    Raises:
      ValueError: an unknown class, points of the wrong shape or not finite, labels not one per
        point.

    Example:
      >>> from mlwork.theory import bounds
      >>> bounds.realizes([[0, 0], [1, 1], [1, 0], [0, 1]], [1, 1, 0, 0], "linear")  # XOR
      False
    """
    cls = _check_class(hypothesis_class)
    x = _points(points, cls)
    y = np.asarray(labels)
    if y.shape != (len(x),) or not np.all((y == 0) | (y == 1)):
        fail("labels", f"{len(x)} booleans or 0/1 values, one per point", repr(y))
    y = y.astype(bool)
    return _linear_realizes(x, y) if cls == "linear" else _box_realizes(x, y)


MAX_SHATTER_POINTS = 16


def shatters(points, hypothesis_class: str) -> bool:
    r"""Whether the class realises **every** one of the :math:`2^m` labellings of ``points``.

    Checks each labelling with :func:`realizes` (stopping at the first failure). For the
    classes here a labelling and its complement are realisable together only for ``"linear"``
    (negate :math:`w, b`), which halves the linear programs. At most
    ``MAX_SHATTER_POINTS = 16`` points (:math:`2^{16}` labellings).

    Example: three points in general position in :math:`\mathbb R^2` are shattered by lines;
    the XOR square is not (the diagonal labelling is not linearly separable).

    Args:
      points: ``(m, d)`` finite points (``(m,)`` for intervals), at most 16.
      hypothesis_class: ``"linear"``, ``"interval"`` or ``"rectangle"``.

    Returns:
      Whether every labelling is realisable, a Python ``bool``.

    Raises:
      ValueError: as :func:`realizes`, or more than 16 points.

    Example:
      >>> from mlwork.theory import bounds
      >>> triangle, xor = [[0, 0], [1, 0], [0, 1]], [[0, 0], [1, 1], [1, 0], [0, 1]]
      >>> bounds.shatters(triangle, "linear"), bounds.shatters(xor, "linear")
      (True, False)
      >>> bounds.shatters([[0, 1], [1, 0], [0, -1], [-1, 0]], "rectangle")  # the diamond
      True

    Reference: deck §18 "Shattering"; Shalev-Shwartz & Ben-David (2014), Definition 6.3.
    """
    cls = _check_class(hypothesis_class)
    x = _points(points, cls)
    m = len(x)
    if m > MAX_SHATTER_POINTS:
        fail("points", f"at most {MAX_SHATTER_POINTS} points (shatters checks all 2^m labellings)", m)
    if m == 0:
        return True
    if cls == "linear":
        # Fix the first point's label: the complement of each labelling is realisable iff it is.
        for rest in itertools.product((False, True), repeat=m - 1):
            if not _linear_realizes(x, np.array((True, *rest))):
                return False
        return True
    return all(_box_realizes(x, np.array(lab)) for lab in itertools.product((False, True), repeat=m))


# The bias-variance decomposition belongs to this section of the deck; it lives in its own file.
from mlwork.theory.bias_variance import BiasVariance, bias_variance_decomposition  # noqa: E402

__all__ += ["BiasVariance", "bias_variance_decomposition"]
