r"""The integral to a tolerance (deck section 6): adaptive Gauss-Kronrod quadrature with an error
estimate, over finite or infinite limits.

:func:`integrate` maps the range onto a finite one, samples it with the 15-point Gauss-Kronrod
rule on fine panels, halves the panels with the largest error estimates until the tolerance is
met (SciPy's ``quad`` and QUADPACK's ``qags`` work the same way), and warns when it is not. The
deck's fixed composite rules are in :mod:`~mlwork.foundations.quadrature`.

Every call uses the integrand as it is at that call: a closure whose captured values changed
since the last call is traced again (see ``_staging``), never served from a stale cache.

References:
  R. Piessens, E. de Doncker-Kapenga, C. W. Überhuber, D. K. Kahaner, *QUADPACK* (1983), §2.2
  (the 15-point Gauss-Kronrod rule ``qk15`` and its error estimate) and §3.3 (``qags``);
  W. H. Press et al., *Numerical Recipes*, 3rd ed., §4.5 (variable transformations for
  improper integrals).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import check_callable, check_real, concrete, fail
from mlwork.foundations import _staging
from mlwork.foundations._checks import as_float
from mlwork.foundations.quadrature import _bounds

Array = jax.Array

# ---------------------------------------------------------------------------------------------
# Adaptive Gauss-Kronrod quadrature
# ---------------------------------------------------------------------------------------------

# QUADPACK's qk15: the 15 Kronrod nodes on [-1, 1] (the 7 Gauss nodes are every other one) and
# the weights of both rules (Gauss weights are 0 on the Kronrod-only nodes).
_XK = (0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
       0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
       0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
       0.207784955007898467600689403773245, 0.0)
_WK = (0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
       0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
       0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
       0.204432940075298892414161999234649, 0.209482141084727828012999174891714)
_WG = (0.0, 0.129484966168869693270611432679082, 0.0, 0.279705391489276667901467771423780,
       0.0, 0.381830050505118944950369775488975, 0.0, 0.417959183673469387755102040816327)
GK_NODES = np.array([-x for x in _XK[:-1]] + list(_XK[::-1]))
GK_KRONROD = np.array(list(_WK[:-1]) + list(_WK[::-1]))
GK_GAUSS = np.array(list(_WG[:-1]) + list(_WG[::-1]))

#: Panels per unit of the mapped variable u in the first pass, and the refinement: each round
#: splits the SPLITS panels with the largest error estimates, for at most ROUNDS rounds.
PANELS_PER_UNIT = 128
SPLITS = 32
ROUNDS = 48
#: How far from the centre the mapped range reaches, in units of ``scale``: beyond this the
#: integrand must have decayed (checked: |x f(x)| there is part of the error).
REACH = {np.dtype(np.float32): 1e9, np.dtype(np.float64): 1e75}


class IntegrationWarning(UserWarning):
    """:func:`integrate` did not reach its tolerance: the value is an estimate with ``error``."""


class Integral(NamedTuple):
    """What :func:`integrate` returns with ``full_output=True``.

    Attributes:
      value: the estimate of :math:`\\int_a^b f(x)\\,dx` (a scalar of the limits' dtype).
      error: the estimated absolute error (QUADPACK's conservative estimate, plus the tail
        :math:`|x f(x)|` at the far end of an infinite range).
      converged: whether ``error <= max(atol, rtol * ∫|f|)``.
    """

    value: Array
    error: Array
    converged: Array


def _gk15(g: Callable, lo: Array, hi: Array, safe: Array) -> tuple[Array, Array, Array]:
    """Kronrod estimate, error estimate and integral of |g| on each panel [lo_i, hi_i] (lo <= hi);
    ``g(mid, offset)`` is the integrand at ``mid + offset`` (kept apart for precision). A panel
    of width 0 is evaluated at ``safe`` (a node of a real panel) and so adds exactly 0, even
    where g is infinite at its position (an end of the range)."""
    dtype = lo.dtype
    half, mid = 0.5 * (hi - lo), 0.5 * (hi + lo)
    mid = jnp.where(half > 0, mid, safe)
    v = g(mid[:, None], half[:, None] * jnp.asarray(GK_NODES, dtype)[None, :])
    wk, wg = jnp.asarray(GK_KRONROD, dtype)[None, :], jnp.asarray(GK_GAUSS, dtype)[None, :]
    kronrod = jnp.sum(v * wk, axis=-1)
    gauss = jnp.sum(v * wg, axis=-1)
    absolute = jnp.sum(jnp.abs(v) * wk, axis=-1)
    spread = jnp.sum(jnp.abs(v - 0.5 * kronrod[:, None]) * wk, axis=-1)
    value, resabs, resasc = kronrod * half, absolute * half, spread * half
    err = jnp.abs((kronrod - gauss) * half)
    # QUADPACK's scaling of |K - G| (qk15), and its floor for round-off.
    scaled = resasc * jnp.minimum(1.0, (200.0 * err / jnp.where(resasc > 0, resasc, 1.0)) ** 1.5)
    err = jnp.where((resasc > 0) & (err > 0), scaled, err)
    eps = float(jnp.finfo(dtype).eps)
    err = jnp.maximum(err, 50.0 * eps * resabs)
    return value, err, resabs


def _pairwise_sum(x: Array) -> Array:
    """Sum by halving (error ~ log2(n) eps rather than n eps)."""
    size = 1 << max(0, (x.shape[0] - 1).bit_length())
    x = jnp.pad(x, (0, size - x.shape[0]))
    while x.shape[0] > 1:
        x = x[0::2] + x[1::2]
    return x[0]


def _mapped(f: Callable, center: Array, scale: Array) -> Callable:
    """g(mid, offset) = f(x) dx/du at u = mid + offset, for x = center + scale sinh u."""

    def g(mid, offset):
        # sinh and cosh of mid + offset by the addition formulas: the small offset is not
        # rounded away against mid, so x keeps float precision far from the centre.
        sm, cm, so, co = jnp.sinh(mid), jnp.cosh(mid), jnp.sinh(offset), jnp.cosh(offset)
        x = center + scale * (sm * co + cm * so)
        values = jax.vmap(f)(x.reshape(-1)).reshape(x.shape)
        return values * (scale * (cm * co + sm * so))

    return g


def _start(f: Callable, u_a: Array, u_b: Array, center: Array, scale: Array, *, panels: int,
           tails: tuple[bool, bool]) -> tuple:
    """The first pass: panels on the grid k / PANELS_PER_UNIT (exact in floating point, so
    neighbouring panels share their edges exactly) clipped to the range, each with qk15, plus
    |g| at the far ends of an infinite range (|x f(x)| there: the size of the missing tail)."""
    dtype = u_a.dtype
    g = _mapped(f, center, scale)
    lo, hi = jnp.minimum(u_a, u_b), jnp.maximum(u_a, u_b)
    first = jnp.floor(lo * PANELS_PER_UNIT)
    edges = jnp.clip((first + jnp.arange(panels + 1, dtype=dtype)) / PANELS_PER_UNIT, lo, hi)
    safe = 0.5 * (edges[0] + edges[1]) + 0.5 * (edges[1] - edges[0]) * float(GK_NODES[1])
    value, err, resabs = _gk15(g, edges[:-1], edges[1:], safe)
    pad = SPLITS * ROUNDS
    state = (jnp.concatenate([edges[:-1], jnp.zeros(pad, dtype)]),
             jnp.concatenate([edges[1:], jnp.zeros(pad, dtype)]),
             jnp.concatenate([value, jnp.zeros(pad, dtype)]),
             jnp.concatenate([err, jnp.full(pad, -1.0, dtype)]),  # empty slots are never chosen
             jnp.concatenate([resabs, jnp.zeros(pad, dtype)]))
    ends = jnp.stack([u_a, u_b])
    tail = jnp.sum(jnp.where(jnp.asarray(tails), jnp.abs(g(ends, jnp.zeros_like(ends))), 0.0))
    return state, tail, safe


def _rule(f: Callable, left: Array, right: Array, center: Array, scale: Array, safe: Array) -> tuple:
    return _gk15(_mapped(f, center, scale), left, right, safe)


def _converged(state: tuple, tail: Array, rtol: Array, atol: Array) -> tuple[Array, Array]:
    error = jnp.sum(jnp.maximum(state[3], 0.0)) + tail
    return error <= jnp.maximum(atol, rtol * _pairwise_sum(state[4])), error


def _choose(state: tuple) -> tuple[Array, Array, Array]:
    """The SPLITS panels with the largest errors, halved: (new lefts, new rights, their slots)."""
    left, right, _, err, _ = state
    worst = jax.lax.top_k(jnp.where(jnp.isnan(err), jnp.inf, err), SPLITS)[1]
    mid = 0.5 * (left[worst] + right[worst])
    return jnp.concatenate([left[worst], mid]), jnp.concatenate([mid, right[worst]]), worst


def _store(state: tuple, round_: Array, worst: Array, new_left: Array, new_right: Array,
           panel: tuple) -> tuple:
    """Put the halves where the split panel was and in the next free slots."""
    left, right, value, err, resabs = state
    panels = left.shape[0] - SPLITS * ROUNDS
    fresh = panels + round_.astype(worst.dtype) * SPLITS + jnp.arange(SPLITS, dtype=worst.dtype)
    slots = jnp.concatenate([worst, fresh])
    v, e, r = panel
    return (left.at[slots].set(new_left), right.at[slots].set(new_right), value.at[slots].set(v),
            err.at[slots].set(e), resabs.at[slots].set(r))


_converged_jit, _choose_jit, _store_jit = jax.jit(_converged), jax.jit(_choose), jax.jit(_store)


def _adaptive(staged: _staging.Staged, u_a: Array, u_b: Array, center: Array, scale: Array,
              rtol: Array, atol: Array, panels: int, tails: tuple[bool, bool]) -> tuple[Array, Array, Array]:
    """Integrate g(u) = f(center + scale sinh u) scale cosh u from u_a to u_b: the first pass,
    then up to ROUNDS rounds halving the SPLITS panels with the largest error estimates.

    Concrete inputs run a Python loop that stops as soon as the tolerance is met (the
    integrand's programs are compiled per computation, the bookkeeping once for all). Traced
    inputs (the caller's jit, vmap or grad) run the same steps in ``lax.fori_loop`` with the
    derivatives stopped, then sum the final panels once more, differentiably: the derivative of
    the integral with respect to the limits and to ``f``'s parameters is the quadrature of the
    integrand's derivative on the panels the search chose (no reverse pass through the search)."""
    orientation = jnp.where(u_b >= u_a, 1.0, -1.0).astype(u_a.dtype)
    traced = any(isinstance(x, jax.core.Tracer) for x in (u_a, u_b, center, scale, rtol, atol))
    if not (traced or staged.direct):
        state, tail, safe = staged(_start, (u_a, u_b, center, scale), panels=panels, tails=tails)
        for i in range(ROUNDS):
            done, _ = _converged_jit(state, tail, rtol, atol)
            if bool(done):
                break
            new_left, new_right, worst = _choose_jit(state)
            panel = staged(_rule, (new_left, new_right, center, scale, safe))
            state = _store_jit(state, jnp.asarray(i, jnp.int32), worst, new_left, new_right, panel)
        done, error = _converged_jit(state, tail, rtol, atol)
        return orientation * _pairwise_sum(state[2]), error, done

    (f,) = staged.functions
    sg = jax.lax.stop_gradient

    def frozen(x):
        return sg(f(x))

    fixed = [sg(v) for v in (u_a, u_b, center, scale)]
    state, tail, safe = _start(frozen, *fixed, panels=panels, tails=tails)

    def round_(i, state):
        def split(state):
            new_left, new_right, worst = _choose(state)
            return _store(state, i, worst, new_left, new_right, _rule(frozen, new_left, new_right, *fixed[2:], safe))

        return jax.lax.cond(_converged(state, tail, rtol, atol)[0], lambda s: s, split, state)

    state = jax.lax.fori_loop(0, ROUNDS, round_, state)
    done, error = _converged(state, tail, rtol, atol)
    # The chosen panels, moved with the limits: u -> lo + (u - lo0) (hi - lo) / (hi0 - lo0).
    lo0, hi0 = jnp.minimum(fixed[0], fixed[1]), jnp.maximum(fixed[0], fixed[1])
    lo, hi = jnp.minimum(u_a, u_b), jnp.maximum(u_a, u_b)
    stretch = (hi - lo) / jnp.where(hi0 > lo0, hi0 - lo0, 1.0)
    left, right = (lo + (sg(edge) - lo0) * stretch for edge in state[:2])
    right = jnp.where(state[1] > state[0], right, left)  # empty slots stay empty
    value, _, _ = _rule(f, left, right, center, scale, safe)
    return orientation * _pairwise_sum(value), error, done


def _warn(converged, value, error) -> None:
    converged, value, error = np.asarray(converged), np.asarray(value), np.asarray(error)
    if not np.all(converged):
        k = int(np.argmin(converged.reshape(-1)))
        warnings.warn(
            f"integrate did not reach its tolerance: value {value.reshape(-1)[k]:.7g} with estimated "
            f"error {error.reshape(-1)[k]:.3g}. Give center= and scale= near the integrand's mass, "
            "split the range at its singularities, or check that f decays at infinity",
            IntegrationWarning, stacklevel=3)


def integrate(f: Callable[[Array], Array], a: Any, b: Any, *, rtol: float | None = None,
              atol: float = 0.0, center: Any = None, scale: Any = 1.0, full_output: bool = False,
              n: Any = None, rule: Any = None) -> Array | Integral:
    r"""The definite integral :math:`\int_a^b f(x)\,dx` to a tolerance; ``a`` and ``b`` may be
    infinite.

    The range is mapped onto a finite interval of :math:`u` by

    .. math:: x = c + s \sinh u, \qquad \int_a^b f(x)\,dx = \int_{u_a}^{u_b}
              f(c + s\sinh u)\; s\cosh u\,du, \quad u_a = \operatorname{asinh}\frac{a - c}{s}

    which is linear near the centre :math:`c` and logarithmic far from it, so panels of equal
    width in :math:`u` have a width relative to their distance from :math:`c` (Numerical
    Recipes §4.5). The :math:`u`-range is cut into panels of width 1/128; each panel gets the
    15-point Gauss-Kronrod rule, whose difference from the embedded 7-point Gauss rule is its
    error estimate (QUADPACK ``qk15``); then, up to 48 times, the 32 panels with the largest
    errors are halved, until the total error is at most ``max(atol, rtol * ∫|f|)``.

    What it finds: mass whose width is at least about 1/1000 of its distance from ``center``
    (and at least ``scale``/1000), e.g. any normal density with
    :math:`\sigma \ge 10^{-3}\max(s, |\mu - c|)`: :math:`E[X]` of :math:`N(800, 1)` is one call.
    Narrower mass can fall between the sample points unseen; then give ``center`` (and
    ``scale``) near it. An infinite range reaches :math:`|x - c| \le 10^9 s` (float32;
    :math:`10^{75} s` in float64; less where that leaves the float range); :math:`|x f(x)|` at
    that end is added to the error, so an
    integrand that has not decayed there (:math:`1/x^{1.01}`) is reported, not truncated.

    The tolerance can only be met where ``f`` itself is computed that precisely: in float32 a
    density of width :math:`\sigma` at :math:`|x| = 1000\sigma` is evaluated to about
    :math:`\varepsilon|x|/\sigma \approx 10^{-4}`; give float64 limits (with ``jax_enable_x64``)
    for more. When the tolerance is not reached (too narrow mass, a non-integrable singularity,
    slow decay, an oscillating tail, rounding in ``f``) it warns with :class:`IntegrationWarning` (under ``jit`` too,
    through ``jax.debug.callback``) and returns the estimate anyway; ``full_output=True``
    returns :class:`Integral` ``(value, error, converged)``, like SciPy's ``quad`` returns
    ``(y, abserr)``.

    ``jit``/``vmap``/``grad``: finite limits may be traced (the result is differentiable in
    them and through ``f``'s captured parameters); whether a limit is infinite must be known
    when the function is called (a traced limit is taken as finite). ``f`` is used as it is at
    each call.

    Args:
      f: a scalar function of a scalar (``jax.vmap``-ed over the points), finite on
        :math:`(a, b)`; integrable singularities at ``a`` or ``b`` are fine (the nodes are
        interior).
      a, b: the limits: real scalars or :math:`\pm\infty` (``math.inf``); ``a > b`` gives
        the oriented integral. Computed in their float dtype, at least float32.
      rtol: relative tolerance, against :math:`\int|f|` (so an integral that cancels to 0 can
        converge); default ``1e-4`` in float32 (QUADPACK's estimate is conservative: the
        error is typically far smaller), ``1e-10`` in float64.
      atol: absolute tolerance, ``>= 0``.
      center: :math:`c`, where the mass is (units of ``x``); default: the point of
        :math:`[a, b]` nearest 0.
      scale: :math:`s > 0`, the width of the mass near ``center``; default 1.
      full_output: return :class:`Integral` instead of the value alone.
      n, rule: deprecated (the composite rule with ``n`` panels is :func:`simpson` /
        :func:`trapezoid` / :func:`riemann_sum`); ignored with a ``DeprecationWarning``.

    Returns:
      The value (a scalar), or :class:`Integral` with ``full_output=True``.

    Raises:
      ValueError: ``f`` not callable, ``a``/``b`` not scalars or NaN, bad tolerances,
        ``scale`` not positive, ``center`` not finite.

    Warns:
      IntegrationWarning: the estimated error exceeds the tolerance.

    Example:
      >>> import math, jax
      >>> from mlwork import foundations as fd
      >>> pdf = lambda x: jax.scipy.stats.norm.pdf(x, 800.0, 1.0)
      >>> r = fd.integrate(lambda x: x * pdf(x), -math.inf, math.inf, full_output=True)
      >>> print(f"{float(r.value):.1f}", bool(r.converged), float(r.error) <= 1e-4 * 800)  # E[X]
      800.0 True True
      >>> print(f"{float(fd.integrate(pdf, 0.0, math.inf)):.4f}")  # the whole mass, far from 0
      1.0000
    """
    check_callable(f, "f")
    if n is not None or rule is not None:
        warnings.warn("integrate is adaptive: n and rule no longer apply and are ignored (a fixed "
                      "composite rule is simpson/trapezoid/riemann_sum)", DeprecationWarning, stacklevel=2)
    # Values known now, read before any jnp operation: under jit even a constant becomes a tracer
    # once an operation touches it, and whether a limit is infinite must be known here.
    ca, cb = _known(a), _known(b)
    a, b = _bounds(a, b)
    if a.dtype not in (jnp.float32, jnp.float64):
        a, b = a.astype(jnp.float32), b.astype(jnp.float32)
    dtype = a.dtype
    if (ca is not None and np.isnan(ca)) or (cb is not None and np.isnan(cb)):
        fail("a and b", "real numbers or ±inf", f"{ca} and {cb}")
    eps = float(jnp.finfo(dtype).eps)
    rtol = (1e-4 if dtype == jnp.float32 else 1e-10) if rtol is None else check_real(rtol, "rtol", low=0.0)
    atol = check_real(atol, "atol", low=0.0)
    if rtol < 4 * eps and atol == 0.0:
        fail("rtol", f"at least {4 * eps:.2g} (4 eps of {dtype}) when atol is 0", rtol)
    known_scale = 1.0 if scale is None else _known(scale)
    scale = _scalar(1.0 if scale is None else scale, "scale", dtype, positive=True)
    inf_a = ca is not None and bool(np.isinf(ca))
    inf_b = cb is not None and bool(np.isinf(cb))
    if ca is not None and cb is not None and ca == cb:  # an empty range (finite or infinite): exactly 0
        return _result(jnp.zeros((), dtype), jnp.zeros((), dtype), jnp.ones((), bool), full_output)
    if center is None:  # the point of the range nearest 0
        known_center = None if ca is None or cb is None else float(np.clip(0.0, min(ca, cb), max(ca, cb)))
        center = jnp.clip(jnp.zeros((), dtype), jnp.minimum(a, b), jnp.maximum(a, b))
    else:
        known_center = _known(center)
        center = _scalar(center, "center", dtype)
    # The infinite ends map to |x - c| = REACH * s, or less where that would leave the float range.
    reach = REACH[np.dtype(dtype)]
    if known_scale is not None and known_center is not None:
        room = (float(jnp.finfo(dtype).max) / 8 - abs(known_center)) / known_scale
        reach = max(1.0, min(reach, room))
    u_max = math.asinh(reach)
    u_a = jnp.asarray(math.copysign(u_max, ca), dtype) if inf_a else jnp.arcsinh((a - center) / scale)
    u_b = jnp.asarray(math.copysign(u_max, cb), dtype) if inf_b else jnp.arcsinh((b - center) / scale)
    for name, u in (("a", u_a), ("b", u_b)):
        v = concrete(u)
        if v is not None and not np.isfinite(v):
            raise ValueError(f"center and scale must keep ({name} - center) / scale within {np.dtype(dtype).name}'s "
                             f"range (the substitution u = asinh((x - center) / scale) overflowed); give a center "
                             f"nearer the range or a larger scale")
    # Panels for the u-range (a power of two: few distinct programs), or for the widest range
    # when the limits are not known yet.
    span = 2 * u_max
    if None not in (ca, cb, known_center, known_scale):
        ends = [math.copysign(u_max, c) if math.isinf(c) else math.asinh((float(c) - known_center) / known_scale)
                for c in (ca, cb)]
        span = min(span, abs(ends[1] - ends[0]))
    panels = 1 << max(4, math.ceil(math.log2(span * PANELS_PER_UNIT + 2)))
    staged = _staging.Staged([(f, (jax.ShapeDtypeStruct((), dtype),))])
    value, error, ok = _adaptive(staged, u_a, u_b, center, scale, jnp.asarray(rtol, dtype),
                                 jnp.asarray(atol, dtype), panels, (inf_a, inf_b))
    value, error = _limits_correction(f, a, b, u_a, u_b, center, scale, value, error, (inf_a, inf_b))
    if all(concrete(x) is not None for x in (value, error, ok)):
        _warn(ok, value, error)
    else:
        jax.debug.callback(_warn, ok, value, error)
    return _result(value, error, ok, full_output)


def _limits_correction(f: Callable, a: Array, b: Array, u_a: Array, u_b: Array, center: Array, scale: Array,
                       value: Array, error: Array, infinite: tuple[bool, bool]) -> tuple[Array, Array]:
    r"""The quadrature covers :math:`[x(u_a), x(u_b)]`, :math:`x(u) = c + s \sinh u` of the
    *rounded* :math:`u`: far from the centre that end misses the finite limit by about
    :math:`\epsilon |x| u` — enough, where the integrand is steep there (a density cut at
    :math:`|x| = 1000\sigma`), to move the value by more than the tolerance while the panels'
    estimates say nothing. Add :math:`\int_{x(u_b)}^{b} f - \int_{x(u_a)}^{a} f \approx
    (b - x(u_b)) f(b) - (a - x(u_a)) f(a)` (its own error, of order :math:`f' \delta^2`, is far
    below the panels'). The limits are taken as given, in the integral's dtype."""
    dtype = value.dtype
    for end, u, is_inf, sign in ((b, u_b, infinite[1], 1.0), (a, u_a, infinite[0], -1.0)):
        if is_inf:
            continue
        end = jnp.asarray(end, dtype)
        at = jnp.where(jnp.isfinite(end), end, center)  # a traced limit may still be infinite: no correction
        f_end = jnp.asarray(f(at), dtype)
        # an integrable singularity at the limit (f = ±inf there; the rule's nodes are interior): none either
        finite = jnp.isfinite(end) & jnp.isfinite(f_end)
        f_end = jnp.where(finite, f_end, 0.0)
        delta = jnp.where(finite, end - (center + scale * jnp.sinh(u)), 0.0)
        value = value + jnp.where(finite, sign * delta * f_end, 0.0).astype(dtype)
    return value, error


def _known(x: Any) -> float | None:
    """A scalar's value when known on the host (a Python or NumPy number, a concrete array)."""
    v = concrete(x)
    return float(v) if v is not None and np.ndim(v) == 0 and np.issubdtype(v.dtype, np.number) else None


def _scalar(x: Any, name: str, dtype: Any, positive: bool = False) -> Array:
    arr = as_float(x)
    if arr.shape != ():
        fail(name, "a scalar", f"shape {arr.shape}")
    v = concrete(arr)
    tiny = float(jnp.finfo(dtype).tiny)  # a subnormal scale is flushed to 0 by XLA on CPU
    if v is not None and not (np.isfinite(v) and (v >= tiny or not positive)):
        fail(name, f"a finite number >= {tiny:.3g} (a normal {np.dtype(dtype)})" if positive else "a finite number", v)
    return arr.astype(dtype)


def _result(value: Array, error: Array, ok: Array, full_output: bool) -> Array | Integral:
    return Integral(value, error, ok) if full_output else value
