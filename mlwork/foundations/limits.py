r"""Limits (deck section 4): :math:`\lim_{x\to a} f(x)` from a table of values, honestly.

The deck finds :math:`\lim_{x\to 2}(3x + 1) = 7` from the table 1.9, 1.99, 1.999, ... Done
numerically, two things can go wrong: the values may approach :math:`L` too slowly to read it
off (fixed by extrapolation), and the values near :math:`a` may be destroyed by cancellation —
in float32, :math:`(1 - \cos x)/x^2` is exactly 0 for :math:`|x| \le 10^{-4}`, whose true limit
is 1/2. :func:`limit` therefore evaluates ``f`` in float64 when it can, extrapolates only from
the part of the table whose differences shrink geometrically, and reports where the values
stopped doing so (``precision_lost_at``) instead of trusting them.

References:
  A. C. Aitken (1926), "On Bernoulli's numerical solution of algebraic equations", Proc. Roy.
  Soc. Edinburgh 46 (the :math:`\Delta^2` extrapolation); N. J. Higham, *Accuracy and Stability
  of Numerical Algorithms*, 2nd ed. (2002), §1.7 (cancellation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import check_callable, check_choice, check_int, check_real, fail

Array = jax.Array

KINDS = ("converges", "jump", "diverges", "oscillates", "undefined", "imprecise")


class LimitResult(NamedTuple):
    r"""A numerical limit and how it was reached.

    Attributes:
      value: the estimate of :math:`L`; :math:`\pm\infty` when every requested side diverges
        to the same infinity; NaN when there is no limit.
      kind: ``"converges"`` (the estimate is within ``tol``), ``"jump"`` (both one-sided
        limits exist and differ), ``"diverges"`` (some side grows without bound),
        ``"oscillates"`` (a side neither settles nor grows steadily), ``"undefined"`` (f is NaN
        next to ``a``) or ``"imprecise"`` (the values converge, but rounding destroyed them
        before the estimate reached ``tol``; ``value`` is the best estimate, ``error`` its size).
      left, right: the one-sided estimates :math:`\lim_{x\to a^-}`, :math:`\lim_{x\to a^+}`
        (``None`` for a side not requested; at :math:`+\infty` only ``left`` exists).
      table: the ``(x, f(x))`` pairs used, sorted by ``x`` — the deck's table of values.
      error: the estimated :math:`|\text{value} - L|`: twice the disagreement of the last two
        extrapolations, or of the two sides (NaN when there is no estimate).
      precision_lost_at: the distance :math:`h = |x - a|` (at :math:`\pm\infty`: the
        :math:`x`) of the first value that left the trend of the values before it, which is
        where rounding took over; ``None`` when every value followed it.
      dtype: the precision ``f`` was evaluated in (``"float64"`` unless ``f`` only works in
        float32).
    """

    value: float
    kind: str
    left: float | None
    right: float | None
    table: tuple[tuple[float, float], ...]
    error: float = math.nan
    precision_lost_at: float | None = None
    dtype: str = "float64"

    @property
    def exists(self) -> bool:
        """Whether the (finite) limit exists and was found to the tolerance."""
        return self.kind == "converges"


class _Side(NamedTuple):
    value: float
    kind: str
    error: float
    lost_at: float | None


def _aitken(v: np.ndarray, k: int) -> float:
    """Aitken's Δ² estimate from v[k-2], v[k-1], v[k]."""
    d1, d2 = v[k - 1] - v[k - 2], v[k] - v[k - 1]
    denominator = d2 - d1
    return float(v[k] - d2 * d2 / denominator) if denominator != 0 else float(v[k])


def _clean_prefix(v: np.ndarray, eps: float) -> int:
    """Index of the last value of the longest prefix whose differences shrink geometrically
    (ratio below 0.9, not growing) or stay within rounding, as they do for an error ~ C h^p."""
    d = np.diff(v)
    # Rounding resolution at each step, relative to the largest value seen so far.
    floor = 8 * eps * np.maximum.accumulate(np.abs(v))[1:] + np.finfo(np.float64).tiny
    end, ratio = 1, None
    for k in range(1, len(d)):
        predicted = abs(d[k - 1]) * (abs(ratio) if ratio is not None else 1.0)
        if abs(d[k]) <= floor[k]:  # no significant change: fine if none was due
            if predicted > 4 * floor[k]:
                break
            end = k + 1
            continue
        if abs(d[k - 1]) <= floor[k - 1]:  # a change after settling
            break
        r = d[k] / d[k - 1]
        if not abs(r) < 0.9:
            break
        # Steady (or faster) shrinking in the same direction; near rounding the ratio is noise.
        near_rounding = abs(d[k]) <= 64 * floor[k]
        if ratio is not None and not near_rounding and not (r * ratio > 0 and abs(r) <= 5 * abs(ratio)):
            break
        ratio, end = r, k + 1
    return end


def _one_sided(steps: np.ndarray, v: np.ndarray, tol: float, eps: float) -> _Side:
    """Classify f(x_k) as x_k -> a; ``steps`` are the distances h_k (or x_k at infinity)."""
    if np.any(np.isnan(v[-3:])):
        return _Side(math.nan, "undefined", math.nan, None)
    finite = np.isfinite(v)
    if not finite[-1]:
        return _Side(float(v[-1]), "diverges", math.nan, None)
    end = _clean_prefix(np.where(finite, v, np.nan), eps) if finite.all() else 0
    if end >= 3:
        estimate = _aitken(v, end)
        error = max(abs(estimate - _aitken(v, end - 1)), 8 * eps * abs(estimate))
        lost = float(steps[end + 1]) if end + 1 < len(v) else None
        if lost is not None and end >= 4:  # the values just before the break carry rounding too
            error = max(error, abs(_aitken(v, end - 1) - _aitken(v, end - 2)))
        error *= 2  # a safety factor: the disagreement of two extrapolations only estimates it
        kind = "converges" if error <= tol * max(1.0, abs(estimate)) else "imprecise"
        return _Side(estimate, kind, error, lost)
    if end == 2 and len(v) > 3:  # one shrinking step, then the values left the trend
        estimate = _aitken(v, 2)
        return _Side(estimate, "imprecise", abs(estimate - v[2]) + abs(v[2] - v[1]), float(steps[3]))
    d = np.diff(v[finite])
    if len(d) >= 3:
        ratios = np.abs(d[-2:]) / np.maximum(np.abs(d[-3:-1]), np.finfo(np.float64).tiny)
        if np.all(np.sign(d[-3:]) == np.sign(d[-1])) and d[-1] != 0 and np.all(ratios >= 0.9):
            return _Side(math.copysign(math.inf, d[-1]), "diverges", math.nan, None)
    return _Side(math.nan, "oscillates", math.nan, None)


def _evaluate(f: Callable, xs: np.ndarray) -> tuple[np.ndarray, str]:
    """f at each point, in float64 when f computes in float64, else in float32."""
    try:
        with jax.enable_x64(True):
            out = [jnp.asarray(f(jnp.float64(x))) for x in xs]
        if all(o.dtype == jnp.float64 and o.shape == () for o in out):
            return np.array([float(o) for o in out]), "float64"
    except Exception:  # noqa: BLE001 - f does not run in float64 (dtype rules, float32-only code)
        pass
    xs32 = xs.astype(np.float32)
    out = [jnp.asarray(f(jnp.float32(x))) for x in xs32]
    bad = [o.shape for o in out if o.shape != ()]
    if bad:
        fail("f", "a function returning a scalar for a scalar x", f"shape {bad[0]}")
    return np.array([float(o) for o in out]), "float32"


def limit(f: Callable[[Array], Array], a: float, side: str = "both", *, terms: int = 8,
          tol: float = 1e-3) -> LimitResult:
    r"""Estimate :math:`\lim_{x\to a} f(x)` (or a one-sided limit) numerically.

    .. math:: \lim_{x\to a} f(x) = L \iff \lim_{x\to a^-} f(x) = \lim_{x\to a^+} f(x) = L

    ``f`` is evaluated at :math:`x = a \mp h` for :math:`h = s\cdot 10^{-k/2}`,
    :math:`k = 2, 3, \dots, 2\,\text{terms}` (the deck's 1.9, 1.99, 1.999, ... for
    :math:`a = 2`, and the half-decades between), with :math:`s = 10^{\lfloor\log_{10}
    \max(1, |a|)\rfloor}`; at :math:`\pm\infty` at :math:`x = \pm 10^{k/2}`. It is evaluated in
    float64 (``jax.enable_x64``) unless ``f`` only runs in float32. For each side:

    * the longest leading part of the table whose differences shrink geometrically (as they do
      when :math:`f(a + h) - L \approx C h^p`) is kept; where a later value leaves that trend,
      rounding has taken over, and ``precision_lost_at`` records its :math:`h`;
    * the kept part is extrapolated by Aitken's :math:`\Delta^2` (exact for a geometric error);
      the difference between the last two extrapolations is ``error``;
    * **converges** when ``error <= tol · max(1, |L|)``; **imprecise** when the kept part is
      too short for that; **diverges** (to :math:`\pm\infty`) when the values move one way
      without shrinking steps; otherwise **oscillates**, or **undefined** if f is NaN there.

    Two converged sides that differ by more than ``tol · max(1, |L|)`` (beyond their errors)
    are a **jump**. ``side`` is ``"both"``, ``"left"`` (from below) or ``"right"`` (from
    above); at :math:`+\infty` only ``"left"`` is possible, at :math:`-\infty` only
    ``"right"`` (``"both"`` means that side).

    ``f`` is called on scalars one point at a time, so Python control flow in ``f`` is fine.
    This is an analysis on concrete values; it does not run under ``jit``.

    Args:
      f: a scalar function of a scalar (``jnp`` operations run in float64).
      a: the point, a real number or :math:`\pm\infty` (``math.inf``).
      side: ``"both"``, ``"left"`` or ``"right"``.
      terms: decades of :math:`h` (or of :math:`x` at infinity), at least 4.
      tol: the tolerance on the limit, relative to :math:`\max(1, |L|)`, in (0, 1).

    Returns:
      :class:`LimitResult`.

    Raises:
      ValueError: ``f`` not callable, ``a`` NaN or not a number, ``side`` unknown or
        impossible at ``a``, ``terms < 4``, ``tol`` not in (0, 1), or ``f`` not scalar.

    Example:
      >>> import math, jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> r = fd.limit(lambda x: (1 - jnp.cos(x)) / x**2, 0.0)
      >>> print(r.kind, round(r.value, 6), r.precision_lost_at is not None)
      converges 0.5 True
      >>> print(fd.limit(lambda x: (1 + 1 / x) ** x, math.inf).value == fd.limit(
      ...     lambda x: (1 + 1 / x) ** x, math.inf).value, round(fd.limit(
      ...     lambda x: (1 + 1 / x) ** x, math.inf).value, 6))
      True 2.718282
    """
    check_callable(f, "f")
    check_choice(side, "side", ("both", "left", "right"))
    terms = check_int(terms, "terms", minimum=4)
    tol = check_real(tol, "tol", low=0.0, high=1.0, low_open=True, high_open=True)
    try:
        a = float(a)
    except (TypeError, ValueError):
        fail("a", "a real number or ±inf", repr(a))
    if math.isnan(a):
        fail("a", "a real number or ±inf", a)

    steps = 10.0 ** (-np.arange(2, 2 * terms + 1) / 2)
    if math.isinf(a):
        only = "left" if a > 0 else "right"
        if side not in ("both", only):
            fail("side", f"{only!r} or 'both' at a={a} (x can only approach from the {only})", repr(side))
        sides = {only: (math.copysign(1.0, a) / steps, 1.0 / steps)}
    else:
        offsets = steps * 10.0 ** math.floor(math.log10(max(1.0, abs(a))))
        sides = {s: (a + sign * offsets, offsets) for s, sign in (("left", -1.0), ("right", 1.0))
                 if side in ("both", s)}

    estimates: dict[str, _Side] = {}
    table: list[tuple[float, float]] = []
    precision = "float64"
    for s, (xs, distances) in sides.items():
        values, used = _evaluate(f, xs)
        if used == "float32":  # points that round onto a carry no information
            keep = xs.astype(np.float32) != np.float32(a) if math.isfinite(a) else np.ones(len(xs), bool)
            xs, distances, values = xs[keep].astype(np.float32), distances[keep], values[keep]
            precision = "float32"
        eps = float(np.finfo(np.float64 if used == "float64" else np.float32).eps)
        table.extend(zip(np.asarray(xs, np.float64).tolist(), values.tolist(), strict=True))
        estimates[s] = _one_sided(distances, values, tol, eps) if len(values) >= 4 else \
            _Side(math.nan, "imprecise", math.nan, float(distances[0]))
    return _combine(estimates, tuple(sorted(table)), tol, precision)


def _combine(estimates: dict[str, _Side], table: tuple, tol: float, precision: str) -> LimitResult:
    left, right = estimates.get("left"), estimates.get("right")
    kinds = {e.kind for e in estimates.values()}
    values = [e.value for e in estimates.values()]
    lost = [e.lost_at for e in estimates.values() if e.lost_at is not None]
    lost_at = max(lost) if lost else None
    error = math.nan
    if kinds <= {"converges", "imprecise"}:
        scale = max(1.0, *map(abs, values))
        errors = [e.error for e in estimates.values()]
        gap = max(values) - min(values)
        if gap <= tol * scale + sum(errors):
            value, error = float(np.mean(values)), max(*errors, gap)  # the sides disagree by gap
            kind = "converges" if kinds == {"converges"} and error <= tol * scale else "imprecise"
        elif kinds == {"converges"}:
            value, kind = math.nan, "jump"
        else:
            value, kind = math.nan, "imprecise"
    elif "undefined" in kinds:
        value, kind = math.nan, "undefined"
    elif "oscillates" in kinds:
        value, kind = math.nan, "oscillates"
    elif "diverges" in kinds:
        kind = "diverges"
        value = values[0] if len(set(values)) == 1 and math.isinf(values[0]) else math.nan
    else:
        value, kind = math.nan, "imprecise"
    return LimitResult(value, kind, left.value if left else None, right.value if right else None,
                       table, error, lost_at, precision)
