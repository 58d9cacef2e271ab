r"""Limits, derivatives and integrals (deck sections 4-6), next to what JAX does exactly.

* :func:`limit` estimates :math:`\lim_{x\to a} f(x)` (also at :math:`\pm\infty`) from a sequence
  approaching :math:`a`, and says when the one-sided limits disagree (a jump) or diverge.
* :func:`derivative` is the deck's difference quotient (forward, or central); ``jax.grad`` is
  the exact derivative it approximates, and :func:`nth_derivative`, :func:`partial`,
  :func:`gradient`, :func:`hessian` expose it in the deck's notation.
* :func:`riemann_sum`, :func:`trapezoid`, :func:`simpson` are composite quadrature rules of
  order 1 (left/right), 2 (midpoint, trapezoid) and 4 (Simpson); :func:`integrate` adds infinite
  limits; :func:`antiderivative` is :math:`F(x) = \int_a^x f`, whose ``jax.grad`` gives back
  :math:`f` (the fundamental theorem of calculus).
* :func:`gradient_descent` follows :math:`-\nabla f` downhill in one ``lax.scan``.

The array functions are pure and work under ``jit``/``vmap``/``grad`` (``n``, ``rule`` and
``method`` are static). Value checks (finite inputs, positive step sizes) run when the values
are concrete and are skipped under tracing.

References:
  R. L. Burden, J. D. Faires, *Numerical Analysis*, ch. 4 (numerical differentiation and
  composite integration, with their error terms). W. H. Press et al., *Numerical Recipes*, 3rd
  ed., §4.4 (improper integrals by change of variables) and §5.7 (choosing the step of a
  numerical derivative). A. C. Aitken (1926), Proc. Roy. Soc. Edinburgh 46 (the
  :math:`\Delta^2` extrapolation used by :func:`limit`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import concrete
from mlwork.foundations._checks import (
    as_float,
    check_callable,
    check_choice,
    check_finite,
    check_int,
)

Array = jax.Array

# ---------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------


class LimitResult(NamedTuple):
    r"""A numerical limit and how it was reached.

    Attributes:
      value: the estimate of :math:`L`; :math:`\pm\infty` when every requested side diverges
        to the same infinity; NaN when there is no limit.
      kind: ``"converges"``, ``"jump"`` (both one-sided limits exist and differ),
        ``"diverges"`` (some side grows without bound), ``"oscillates"`` (a side neither
        settles nor grows steadily) or ``"undefined"`` (f is NaN next to ``a``).
      left, right: the one-sided estimates :math:`\lim_{x\to a^-}`, :math:`\lim_{x\to a^+}`
        (``None`` for a side not requested; at :math:`+\infty` only ``left`` exists).
      table: the ``(x, f(x))`` pairs used, sorted by ``x`` — the deck's table of values.
    """

    value: float
    kind: str
    left: float | None
    right: float | None
    table: tuple[tuple[float, float], ...]

    @property
    def exists(self) -> bool:
        """Whether the (finite) limit exists."""
        return self.kind == "converges"


def _one_sided(values: np.ndarray, tol: float) -> tuple[float, str]:
    """Estimate the limit of a sequence f(x_k) with x_k -> a geometrically."""
    if np.any(np.isnan(values[-3:])):
        return math.nan, "undefined"
    last = values[-1]
    if np.isinf(last):
        return float(last), "diverges"
    d = np.diff(values)
    scale = max(1.0, abs(last))
    ratios = np.abs(d[-2:]) / np.maximum(np.abs(d[-3:-1]), np.finfo(np.float64).tiny)
    geometric = bool(np.all(d[-3:] != 0) and np.all(ratios < 0.9))
    if geometric:
        # Aitken's delta-squared extrapolation: exact when f(x_k) - L shrinks geometrically,
        # which it does for x_k = a + 10^-k and f(a + h) - L ~ C h^p.
        denominator = d[-1] - d[-2]
        estimate = last - d[-1] ** 2 / denominator if denominator != 0 else last
        if abs(estimate - last) <= 10 * abs(d[-1]):
            return float(estimate), "converges"
    if abs(d[-1]) <= tol * scale:
        return float(last), "converges"
    if np.all(np.sign(d[-3:]) == np.sign(d[-1])) and np.all(ratios >= 0.9):
        return math.copysign(math.inf, d[-1]), "diverges"
    return math.nan, "oscillates"


def limit(
    f: Callable[[Array], Array],
    a: float,
    side: str = "both",
    *,
    terms: int = 6,
    tol: float = 1e-3,
) -> LimitResult:
    r"""Estimate :math:`\lim_{x\to a} f(x)` (or a one-sided limit) numerically.

    .. math:: \lim_{x\to a} f(x) = L \iff \lim_{x\to a^-} f(x) = \lim_{x\to a^+} f(x) = L

    ``f`` is evaluated on the sequences :math:`x_k = a \mp 10^{-k} s`, :math:`k = 1, \dots,`
    ``terms``, with the scale :math:`s = 10^{\lfloor \log_{10} \max(1, |a|) \rfloor}` (so
    the steps stay above float32 resolution for large :math:`|a|`; the deck's table 1.9, 1.99,
    1.999, … for :math:`a = 2`),
    or :math:`x_k = \pm 10^k` when ``a`` is :math:`\pm\infty`. Each side's sequence of values
    is then classified:

    * **converges** when the differences shrink geometrically (the estimate is Aitken's
      :math:`\Delta^2` extrapolation, exact for errors :math:`\propto h^p`) or the last
      difference is below ``tol · max(1, |f|)``;
    * **diverges** to :math:`\pm\infty` when the values move monotonically and the steps do not
      shrink (:math:`1/x` at 0, :math:`\ln x` at 0);
    * otherwise **oscillates** (:math:`\sin(1/x)` at 0), or **undefined** if f is NaN there.

    Two converging sides that differ by more than ``tol · max(1, |L|)`` are a **jump** (a step
    function at its step): no two-sided limit. ``side`` is ``"both"``, ``"left"`` (from below)
    or ``"right"`` (from above); at :math:`+\infty` only ``"left"`` is possible, at
    :math:`-\infty` only ``"right"`` (``"both"`` means that side).

    ``f`` is called on float32 scalars one point at a time, so plain Python control flow in
    ``f`` is fine. Float32 resolution is why ``terms`` stops at :math:`h = 10^{-6}` by default.
    This is an analysis on concrete values: it does not run under ``jit``.

    Reference: deck section 4 (one-sided limits, limits at infinity); Aitken (1926).
    """
    check_callable(f, "f")
    check_choice(side, "side", ("both", "left", "right"))
    terms = check_int(terms, "terms", minimum=4)
    tol = float(tol)
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    try:
        a = float(a)
    except (TypeError, ValueError) as e:
        raise ValueError(f"a must be a real number or ±inf, got {a!r}") from e
    if math.isnan(a):
        raise ValueError("a must be a real number or ±inf, got nan")

    steps = 10.0 ** -np.arange(1, terms + 1)
    if math.isinf(a):
        only = "left" if a > 0 else "right"
        if side not in ("both", only):
            raise ValueError(f"side={side!r} is impossible at a={a}; x can only approach from the {only}")
        sides = {only: math.copysign(1.0, a) / steps}
    else:
        offsets = steps * 10.0 ** math.floor(math.log10(max(1.0, abs(a))))
        sides = {s: a + sign * offsets for s, sign in (("left", -1.0), ("right", 1.0))
                 if side in ("both", s)}

    estimates: dict[str, tuple[float, str]] = {}
    table: list[tuple[float, float]] = []
    for s, xs in sides.items():
        xs = np.asarray(xs, np.float32)
        values = np.array([float(jnp.asarray(f(jnp.float32(x)))) for x in xs], np.float64)
        table.extend(zip(xs.tolist(), values.tolist(), strict=True))
        estimates[s] = _one_sided(values, tol)

    left, right = estimates.get("left"), estimates.get("right")
    kinds = {k for _, k in estimates.values()}
    vals = [v for v, _ in estimates.values()]
    if kinds == {"converges"}:
        if max(vals) - min(vals) <= tol * max(1.0, *map(abs, vals)):
            value, kind = float(np.mean(vals)), "converges"
        else:
            value, kind = math.nan, "jump"
    elif "undefined" in kinds:
        value, kind = math.nan, "undefined"
    elif "oscillates" in kinds:
        value, kind = math.nan, "oscillates"
    else:
        kind = "diverges"
        value = vals[0] if len(set(vals)) == 1 and math.isinf(vals[0]) else math.nan
    return LimitResult(
        value, kind, left[0] if left else None, right[0] if right else None, tuple(sorted(table))
    )


# ---------------------------------------------------------------------------------------------
# Derivatives
# ---------------------------------------------------------------------------------------------


def _check_positive(value: Any, name: str) -> None:
    v = concrete(value)
    if v is not None and not (np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError(f"{name} must be positive and finite, got {v}")


def derivative(f: Callable[[Array], Array], x: Any, h: Any = None, method: str = "central") -> Array:
    r"""The derivative :math:`f'(x)` by finite differences — the deck's definition with a small
    but finite :math:`h`:

    .. math::
        \text{forward: } \frac{f(x + h) - f(x)}{h} = f'(x) + O(h), \qquad
        \text{central: } \frac{f(x + h) - f(x - h)}{2h} = f'(x) + O(h^2)

    The truncation error falls as :math:`h` or :math:`h^2`, but the round-off error grows as
    :math:`\varepsilon |f| / h` (float32 :math:`\varepsilon \approx 1.2\times10^{-7}`), so there
    is a best :math:`h`. ``h=None`` takes it: :math:`\sqrt\varepsilon\,\max(1, |x|)` (forward),
    :math:`\varepsilon^{1/3} \max(1, |x|)` (central). The quotient divides by the step actually
    taken, :math:`(x + h) - x` as rounded, not by the nominal :math:`h`.

    ``jax.grad(f)(x)`` computes the same derivative exactly (to rounding) by automatic
    differentiation; use this function to *see* the limit, and ``jax.grad`` to compute with it.
    ``f`` must be elementwise for array ``x``. Jit/vmap/grad-able; ``h <= 0`` or non-finite
    ``x``/``h`` raise ``ValueError`` when concrete.

    Reference: Numerical Recipes §5.7; Burden & Faires §4.1.
    """
    check_callable(f, "f")
    check_choice(method, "method", ("forward", "central"))
    x = as_float(x)
    check_finite(x, "x")
    eps = float(jnp.finfo(x.dtype).eps)
    if h is None:
        h = (math.sqrt(eps) if method == "forward" else eps ** (1 / 3)) * jnp.maximum(1.0, jnp.abs(x))
    else:
        h = as_float(h).astype(x.dtype)
        _check_positive(h, "h")
    if method == "forward":
        x_plus, x_minus = x + h, x
    else:
        x_plus, x_minus = x + h, x - h
    step = x_plus - x_minus
    values = concrete(step)
    if values is not None and values.size and np.any(values == 0):
        raise ValueError(f"h is too small for x: x ± h rounds to x in {x.dtype} (try h >= {eps:.1e}·max(1, |x|))")
    return (f(x_plus) - f(x_minus)) / step


def _scalar_valued(f: Callable, name: str) -> Callable:
    """Wrap ``f`` so that a non-scalar output raises ValueError before differentiation."""

    def checked(*args):
        out = jax.eval_shape(f, *args)
        if not hasattr(out, "shape") or out.shape != ():
            shape = getattr(out, "shape", type(out).__name__)
            raise ValueError(f"{name} needs f to return a scalar, but f returned {shape}")
        return f(*args)

    return checked


def nth_derivative(f: Callable[[Array], Array], n: int) -> Callable[[Array], Array]:
    r"""The :math:`n`-th derivative :math:`f^{(n)} = \frac{d^n f}{dx^n}` of a scalar function
    :math:`f: \mathbb{R} \to \mathbb{R}`, by applying ``jax.grad`` :math:`n` times
    (:math:`f^{(0)} = f`). Position, velocity, acceleration, jerk: ``n = 0, 1, 2, 3``.
    Apply it to arrays of points with ``jax.vmap``.
    """
    check_callable(f, "f")
    n = check_int(n, "n", minimum=0)
    for _ in range(n):
        f = jax.grad(_scalar_valued(f, "nth_derivative"))
    return f


def partial(f: Callable[..., Array], argnum: int = 0) -> Callable[..., Array]:
    r"""The partial derivative of a scalar :math:`f(x_0, x_1, \dots)` with respect to argument
    ``argnum``, the others held constant:

    .. math:: \frac{\partial f}{\partial x_i} =
              \lim_{h\to0}\frac{f(\dots, x_i + h, \dots) - f(\dots, x_i, \dots)}{h}

    e.g. for :math:`f(x, y) = x^2y + 3xy^2`, ``partial(f, 0)(x, y)`` is :math:`2xy + 3y^2` and
    ``partial(f, 1)(x, y)`` is :math:`x^2 + 6xy`. (``jax.grad(f, argnums=argnum)``.)
    """
    check_callable(f, "f")
    argnum = check_int(argnum, "argnum", minimum=0)
    return jax.grad(_scalar_valued(f, "partial"), argnums=argnum)


def gradient(f: Callable[[Array], Array]) -> Callable[[Array], Array]:
    r"""The gradient :math:`\nabla f = \big(\frac{\partial f}{\partial x_1}, \dots,
    \frac{\partial f}{\partial x_n}\big)` of a scalar :math:`f: \mathbb{R}^n \to \mathbb{R}`,
    the direction of steepest increase (``jax.grad``; ``x`` may be any pytree)."""
    check_callable(f, "f")
    return jax.grad(_scalar_valued(f, "gradient"))


def hessian(f: Callable[[Array], Array]) -> Callable[[Array], Array]:
    r"""The Hessian :math:`H_{ij} = \frac{\partial^2 f}{\partial x_i\,\partial x_j}` of a scalar
    :math:`f: \mathbb{R}^n \to \mathbb{R}` (``jax.hessian``: forward-over-reverse), symmetric for
    twice continuously differentiable :math:`f`."""
    check_callable(f, "f")
    return jax.hessian(_scalar_valued(f, "hessian"))


# ---------------------------------------------------------------------------------------------
# Integrals
# ---------------------------------------------------------------------------------------------


def _bounds(a: Any, b: Any) -> tuple[Array, Array]:
    a, b = as_float(a), as_float(b)
    if a.shape != () or b.shape != ():
        raise ValueError(f"a and b must be scalars, got shapes {a.shape} and {b.shape}")
    dtype = jnp.promote_types(a.dtype, b.dtype)
    return a.astype(dtype), b.astype(dtype)


@functools.partial(jax.jit, static_argnames=("f", "n", "rule"))
def _quadrature(f: Callable, a: Array, b: Array, n: int, rule: str) -> Array:
    """(b - a)/n * sum_k w_k f(x_k) for the composite rules; one compiled program per (f, n,
    rule), so repeated integrals of the same function do not re-trace."""
    if rule in ("left", "right", "midpoint"):
        offset = {"left": 0.0, "right": 1.0, "midpoint": 0.5}[rule]
        t = (jnp.arange(n, dtype=a.dtype) + offset) / n
        weights = jnp.ones(n, a.dtype)
    else:
        t = jnp.arange(n + 1, dtype=a.dtype) / n
        if rule == "trapezoid":
            weights = jnp.ones(n + 1, a.dtype).at[0].set(0.5).at[n].set(0.5)
        else:  # simpson: 1, 4, 2, 4, ..., 4, 1, over 3
            weights = jnp.where(jnp.arange(n + 1) % 2 == 1, 4.0, 2.0).at[0].set(1.0).at[n].set(1.0)
            weights = (weights / 3.0).astype(a.dtype)
    return (b - a) / n * jnp.sum(weights * jax.vmap(f)(a + (b - a) * t))


def riemann_sum(f: Callable[[Array], Array], a: Any, b: Any, n: int, rule: str = "left") -> Array:
    r"""The Riemann sum with ``n`` rectangles of width :math:`\Delta x = (b - a)/n`:

    .. math:: \int_a^b f(x)\,dx \approx \sum_{i=1}^n f(x_i^*)\,\Delta x

    with :math:`x_i^*` the ``"left"`` end, ``"right"`` end or ``"midpoint"`` of the
    :math:`i`-th subinterval. The error is :math:`O(\Delta x)` for left/right and
    :math:`O(\Delta x^2)` for the midpoint (order 1 and 2). :math:`a > b` gives the oriented
    integral. Differentiable in ``a`` and ``b``; ``f`` takes a scalar and is vmapped.
    ``n`` must be a positive integer (static); non-finite ``a``/``b`` raise when concrete.
    """
    check_callable(f, "f")
    n = check_int(n, "n")
    check_choice(rule, "rule", ("left", "right", "midpoint"))
    a, b = _bounds(a, b)
    check_finite((a, b), "a and b")
    return _quadrature(f, a, b, n, rule)


def trapezoid(f: Callable[[Array], Array], a: Any, b: Any, n: int) -> Array:
    r"""The composite trapezoid rule with ``n`` panels, :math:`x_k = a + k\Delta x`:

    .. math:: \int_a^b f\,dx \approx \frac{\Delta x}{2}\Big[f(x_0) + 2\sum_{k=1}^{n-1} f(x_k)
              + f(x_n)\Big], \qquad \text{error } O(\Delta x^2)

    Same conventions and checks as :func:`riemann_sum`.
    """
    check_callable(f, "f")
    n = check_int(n, "n")
    a, b = _bounds(a, b)
    check_finite((a, b), "a and b")
    return _quadrature(f, a, b, n, "trapezoid")


def simpson(f: Callable[[Array], Array], a: Any, b: Any, n: int) -> Array:
    r"""Composite Simpson's rule with an even number ``n`` of panels (parabolas through each
    pair of panels):

    .. math:: \int_a^b f\,dx \approx \frac{\Delta x}{3}\Big[f(x_0) + 4f(x_1) + 2f(x_2) + \dots
              + 4f(x_{n-1}) + f(x_n)\Big], \qquad \text{error } O(\Delta x^4)

    Exact for cubics. Same conventions and checks as :func:`riemann_sum`; odd ``n`` raises.

    Reference: Burden & Faires §4.4 (composite Simpson, error
    :math:`-\frac{b-a}{180} h^4 f^{(4)}(\xi)`).
    """
    check_callable(f, "f")
    n = check_int(n, "n")
    if n % 2:
        raise ValueError(f"n must be even for Simpson's rule, got {n}")
    a, b = _bounds(a, b)
    check_finite((a, b), "a and b")
    return _quadrature(f, a, b, n, "simpson")


_RULES = ("simpson", "trapezoid", "midpoint", "left", "right")


def _finite_rule(f, a, b, n, rule):
    if rule == "simpson":
        return simpson(f, a, b, n)
    if rule == "trapezoid":
        return trapezoid(f, a, b, n)
    return riemann_sum(f, a, b, n, rule)


def integrate(f: Callable[[Array], Array], a: Any, b: Any, *, n: int = 512,
              rule: str = "simpson") -> Array:
    r"""The definite integral :math:`\int_a^b f(x)\,dx`, where ``a`` and ``b`` may be infinite.

    Finite limits use the composite ``rule`` with ``n`` panels (default Simpson). An infinite
    limit is mapped onto a finite interval first,

    .. math::
        \int_{-\infty}^{\infty} f(x)\,dx = \int_{-1}^{1} f\Big(\frac{t}{1-t^2}\Big)
            \frac{1+t^2}{(1-t^2)^2}\,dt, \qquad
        \int_a^{\infty} f(x)\,dx = \int_0^1 f\Big(a + \frac{t}{1-t}\Big)\frac{dt}{(1-t)^2}

    (and the mirror image for :math:`-\infty`), with the integrand taken as 0 at the mapped
    endpoints, which assumes :math:`x^2 f(x) \to 0` — true for densities such as the Gaussian,
    so :math:`\int_{-\infty}^{\infty} p(x)\,dx = 1` and :math:`E[X] = \int x\,p(x)\,dx` are one
    call each. Differentiable in finite ``a``/``b``; infinite limits must be concrete (under
    ``jit`` traced limits are taken as finite).

    Reference: Numerical Recipes §4.4; deck section 6 (probability and expected values).
    """
    check_callable(f, "f")
    check_choice(rule, "rule", _RULES)
    a, b = _bounds(a, b)
    ca, cb = concrete(a), concrete(b)
    if ca is not None and np.isnan(ca) or cb is not None and np.isnan(cb):
        raise ValueError("a and b must not be NaN")
    inf_a = ca is not None and bool(np.isinf(ca))
    inf_b = cb is not None and bool(np.isinf(cb))
    if not (inf_a or inf_b):
        return _finite_rule(f, a, b, n, rule)
    if inf_a and inf_b and ca == cb:
        return jnp.zeros((), a.dtype)
    if (inf_a and ca > 0) or (inf_b and cb < 0):  # the integral from b to a, negated
        return -integrate(f, b, a, n=n, rule=rule)

    if inf_a and inf_b:  # (-inf, inf)
        lo, hi = -1.0, 1.0

        def x_of(t):
            return t / (1 - t * t)

        def jac(t):
            return (1 + t * t) / jnp.square(1 - t * t)
    elif inf_b:  # [a, inf)
        lo, hi = 0.0, 1.0

        def x_of(t):
            return a + t / (1 - t)

        def jac(t):
            return 1 / jnp.square(1 - t)
    else:  # (-inf, b]
        lo, hi = 0.0, 1.0

        def x_of(t):
            return b - t / (1 - t)

        def jac(t):
            return 1 / jnp.square(1 - t)

    def g(t):
        at_infinity = jnp.abs(t) >= 1.0
        safe = jnp.where(at_infinity, 0.0, t)  # double where: no inf * 0 in value or gradient
        return jnp.where(at_infinity, 0.0, f(x_of(safe)) * jac(safe))

    return _finite_rule(g, jnp.asarray(lo, a.dtype), jnp.asarray(hi, a.dtype), n, rule)


def antiderivative(f: Callable[[Array], Array], a: Any = 0.0, *, n: int = 256,
                   rule: str = "simpson") -> Callable[[Array], Array]:
    r"""The area-so-far function :math:`F(x) = \int_a^x f(t)\,dt` as a differentiable function.

    By the fundamental theorem of calculus :math:`F'(x) = f(x)`, and since the quadrature is
    differentiable in its upper limit, ``jax.grad(antiderivative(f, a))(x)`` recovers
    :math:`f(x)` up to the quadrature error. :math:`F(b) - F(a)` is the definite integral
    (FTC part 2). ``x`` is a scalar; vmap for many points.
    """
    check_callable(f, "f")
    check_choice(rule, "rule", _RULES)
    n = check_int(n, "n")
    a = as_float(a)
    check_finite(a, "a")

    def area(x):
        return _finite_rule(f, a, x, n, rule)

    return area


# ---------------------------------------------------------------------------------------------
# Gradient descent
# ---------------------------------------------------------------------------------------------


class DescentPath(NamedTuple):
    """What :func:`gradient_descent` returns: ``path`` holds :math:`x_0, \\dots, x_T` stacked
    along a new leading axis (per pytree leaf) and ``values`` holds :math:`f(x_0), \\dots,
    f(x_T)`."""

    path: Any
    values: Array


def gradient_descent(f: Callable[[Any], Array], x0: Any, learning_rate: float,
                     steps: int) -> DescentPath:
    r"""Plain gradient descent on a scalar :math:`f`, "follow the slope downhill":

    .. math:: x_{k+1} = x_k - \eta\,\nabla f(x_k), \qquad k = 0, \dots, T-1

    run as one ``lax.scan`` and returning the whole path :math:`x_0, \dots, x_T` (``steps + 1``
    points, the start included) with the values :math:`f(x_k)`. ``x0`` may be any pytree of
    float arrays. Jit/vmap-able over ``x0`` and ``learning_rate`` (``steps`` is static).
    ``learning_rate`` must be positive and finite, ``steps`` a non-negative integer; checked when
    concrete.
    """
    check_callable(f, "f")
    steps = check_int(steps, "steps", minimum=0)
    _check_positive(learning_rate, "learning_rate")
    check_finite(x0, "x0")
    x0 = jax.tree_util.tree_map(as_float, x0)
    value_and_grad = jax.value_and_grad(_scalar_valued(f, "gradient_descent"))

    def step(x, _):
        value, g = value_and_grad(x)
        new = jax.tree_util.tree_map(lambda xi, gi: xi - learning_rate * gi, x, g)
        return new, (x, value)

    last, (path, values) = jax.lax.scan(step, x0, length=steps)
    path = jax.tree_util.tree_map(lambda p, xl: jnp.concatenate([p, xl[None]]), path, last)
    return DescentPath(path, jnp.concatenate([values, f(last)[None]]))
