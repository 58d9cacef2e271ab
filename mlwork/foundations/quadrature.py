r"""The deck's composite quadrature rules (section 6) and the area-so-far function.

* :func:`riemann_sum`, :func:`trapezoid`, :func:`simpson` are the composite rules of order 1
  (left/right), 2 (midpoint, trapezoid) and 4 (Simpson) with a fixed number of panels: what the
  deck draws, with the error falling as the panels narrow (:func:`~mlwork.foundations.integrate`
  is the integral to a tolerance);
* :func:`antiderivative` is :math:`F(x) = \int_a^x f`, whose ``jax.grad`` gives back :math:`f`.

Every call uses the integrand as it is at that call: a closure whose captured values changed
since the last call is traced again (see ``_staging``), never served from a stale cache.

Reference: R. L. Burden, J. D. Faires, *Numerical Analysis*, §4.3-4.4 (composite rules and
their error terms).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from mlwork._validate import check_callable, check_choice, check_finite, check_int, fail
from mlwork.foundations import _staging
from mlwork.foundations._checks import as_float

Array = jax.Array

RULES = ("simpson", "trapezoid", "midpoint", "left", "right")

# ---------------------------------------------------------------------------------------------
# The deck's composite rules
# ---------------------------------------------------------------------------------------------


def _bounds(a: Any, b: Any) -> tuple[Array, Array]:
    a, b = as_float(a), as_float(b)
    if a.shape != () or b.shape != ():
        fail("a and b", "scalars", f"shapes {a.shape} and {b.shape}")
    dtype = jnp.promote_types(a.dtype, b.dtype)
    return a.astype(dtype), b.astype(dtype)


def _composite(f: Callable, a: Array, b: Array, *, n: int, rule: str) -> Array:
    """(b - a)/n * sum_k w_k f(x_k) for the composite rules."""
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


def _fixed_rule(f: Callable, a: Any, b: Any, n: int, rule: str) -> Array:
    check_callable(f, "f")
    n = check_int(n, "n", minimum=1)
    if rule == "simpson" and n % 2:
        fail("n", "even for Simpson's rule", n)
    a, b = _bounds(a, b)
    check_finite((a, b), "a and b")
    scalar = jax.ShapeDtypeStruct((), a.dtype)
    return _staging.call(_composite, [(f, (scalar,))], (a, b), n=n, rule=rule)


def riemann_sum(f: Callable[[Array], Array], a: Any, b: Any, n: int, rule: str = "left") -> Array:
    r"""The Riemann sum of ``f`` over :math:`[a, b]` with ``n`` rectangles.

    .. math:: \int_a^b f(x)\,dx \approx \sum_{i=1}^n f(x_i^*)\,\Delta x, \qquad
              \Delta x = \frac{b - a}{n}

    with :math:`x_i^*` the ``"left"`` end, ``"right"`` end or ``"midpoint"`` of the
    :math:`i`-th subinterval. The error is :math:`O(\Delta x)` for left/right and
    :math:`O(\Delta x^2)` for the midpoint (Burden & Faires §4.3). :math:`a > b` gives the
    oriented integral. Differentiable in ``a`` and ``b``; ``jit``/``vmap``-able (``n`` and
    ``rule`` are static).

    Args:
      f: a scalar function of a scalar, ``f(x) -> y`` (``jax.vmap``-ed over the points).
      a, b: the limits, finite real scalars (any float dtype; integers become float32).
      n: the number of rectangles, a positive integer.
      rule: ``"left"``, ``"right"`` or ``"midpoint"``.

    Returns:
      The sum, a scalar of the limits' float dtype.

    Raises:
      ValueError: ``f`` is not callable, ``n`` is not a positive integer, ``rule`` is unknown,
        ``a`` or ``b`` is not a scalar, or (when concrete) not finite.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(f"{float(fd.riemann_sum(lambda x: x * x, 0.0, 2.0, 64, 'midpoint')):.4f}")  # 8/3
      2.6665
    """
    check_choice(rule, "rule", ("left", "right", "midpoint"))
    return _fixed_rule(f, a, b, n, rule)


def trapezoid(f: Callable[[Array], Array], a: Any, b: Any, n: int) -> Array:
    r"""The composite trapezoid rule with ``n`` panels, :math:`x_k = a + k\Delta x`:

    .. math:: \int_a^b f\,dx \approx \frac{\Delta x}{2}\Big[f(x_0) + 2\sum_{k=1}^{n-1} f(x_k)
              + f(x_n)\Big], \qquad \text{error } -\frac{b-a}{12}\Delta x^2 f''(\xi)

    (Burden & Faires, Theorem 4.5).

    Args:
      f: a scalar function of a scalar (``jax.vmap``-ed over the points).
      a, b: the limits, finite real scalars.
      n: the number of panels, a positive integer.

    Returns:
      The approximation, a scalar of the limits' float dtype.

    Raises:
      ValueError: as :func:`riemann_sum`.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(f"{float(fd.trapezoid(lambda x: x * x, 0.0, 2.0, 400)):.5f}")
      2.66667
    """
    return _fixed_rule(f, a, b, n, "trapezoid")


def simpson(f: Callable[[Array], Array], a: Any, b: Any, n: int) -> Array:
    r"""Composite Simpson's rule with an even number ``n`` of panels (a parabola through each
    pair of panels):

    .. math:: \int_a^b f\,dx \approx \frac{\Delta x}{3}\Big[f(x_0) + 4f(x_1) + 2f(x_2) + \dots
              + 4f(x_{n-1}) + f(x_n)\Big], \qquad \text{error }
              -\frac{b-a}{180}\Delta x^4 f^{(4)}(\xi)

    Exact for cubics (Burden & Faires, Theorem 4.4).

    Args:
      f: a scalar function of a scalar (``jax.vmap``-ed over the points).
      a, b: the limits, finite real scalars.
      n: the number of panels, a positive even integer.

    Returns:
      The approximation, a scalar of the limits' float dtype.

    Raises:
      ValueError: as :func:`riemann_sum`, and for an odd ``n``.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(f"{float(fd.simpson(lambda x: x ** 3, 0.0, 2.0, 2)):.6f}")  # exact for cubics
      4.000000
    """
    return _fixed_rule(f, a, b, n, "simpson")


def antiderivative(f: Callable[[Array], Array], a: Any = 0.0, *, n: int = 256,
                   rule: str = "simpson") -> Callable[[Array], Array]:
    r"""The area-so-far function :math:`F(x) = \int_a^x f(t)\,dt`, as a differentiable function.

    By the fundamental theorem of calculus :math:`F'(x) = f(x)`: the composite ``rule`` with
    ``n`` panels is differentiable in its upper limit, so ``jax.grad(antiderivative(f, a))(x)``
    gives back :math:`f(x)` up to the quadrature error, and :math:`F(b) - F(a)` is the
    definite integral (FTC part 2). Each call of :math:`F` uses ``f`` as it is then.

    Args:
      f: a scalar function of a scalar.
      a: the lower limit, a finite real scalar.
      n: panels of the rule per evaluation (even for Simpson).
      rule: ``"simpson"``, ``"trapezoid"``, ``"midpoint"``, ``"left"`` or ``"right"``.

    Returns:
      ``F(x)``, a function of a scalar ``x`` (``jax.vmap`` it for many points).

    Raises:
      ValueError: ``f`` not callable, ``rule`` unknown, ``n`` not a positive (even, for
        Simpson) integer, ``a`` not finite.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> area = fd.antiderivative(jnp.cos, 0.0)
      >>> print(f"{float(area(1.0)):.5f} {float(jax.grad(area)(1.0)):.5f}")  # sin 1, cos 1
      0.84147 0.54030
    """
    check_callable(f, "f")
    check_choice(rule, "rule", RULES)
    n = check_int(n, "n", minimum=1)
    if rule == "simpson" and n % 2:
        fail("n", "even for Simpson's rule", n)
    a = as_float(a)
    check_finite(a, "a")

    def area(x):
        return _fixed_rule(f, a, x, n, rule)

    return area
