r"""Functions and parameters (deck section 3): :math:`f(x; \theta)` as pure JAX functions.

A parametric family is a function ``f(x, theta)`` with the variable first and the parameters
:math:`\theta` second, as a pytree (a dict of arrays) — the deck's semicolon in
:math:`f(x; \theta)`. Every family here is elementwise in ``x`` and differentiable in both
arguments, so ``jax.grad(lambda th: loss(f(x, th), y))`` is the gradient that training follows
and :func:`fit_curve` is "training = turning knobs :math:`\theta`".

:func:`compose` chains functions (:math:`(f\circ g)(x) = f(g(x))`, order matters) and
:func:`inverse` solves :math:`f(x) = y` for :math:`x` (bisection, or Newton's method with f' from
``jax.jvp``), differentiable in :math:`y` by the inverse function theorem.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import check_callable, check_choice, check_finite, check_int, check_real, concrete, fail
from mlwork.foundations import _staging
from mlwork.foundations._checks import as_float, broadcast

Array = jax.Array
Params = Any


def _params(theta: Any, keys: tuple[str, ...], family: str) -> tuple[Array, ...]:
    if not isinstance(theta, dict) or set(theta) != set(keys):
        got = sorted(theta) if isinstance(theta, dict) else type(theta).__name__
        fail("theta", f"a dict with keys {list(keys)} for {family}", got)
    return tuple(as_float(theta[k]) for k in keys)


# ---------------------------------------------------------------------------------------------
# Parametric families f(x; θ)
# ---------------------------------------------------------------------------------------------


def linear(x: Any, theta: Params) -> Array:
    r"""The line :math:`f(x; m, b) = m x + b` (deck section 3).

    Args:
      x: inputs, a float array of any shape (integers become float32).
      theta: ``{"m": slope, "b": intercept}``, scalars or arrays broadcasting with ``x``.

    Returns:
      :math:`m x + b`, the broadcast shape of ``x`` and the parameters.

    Raises:
      ValueError: ``theta`` lacks or adds keys.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(float(fd.linear(-1.0, {"m": 2.0, "b": 1.0})))  # 2x + 1 at -1
      -1.0
    """
    m, b = _params(theta, ("m", "b"), "linear")
    x, m, b = broadcast(as_float(x), m, b)
    return m * x + b


def polynomial(x: Any, theta: Params) -> Array:
    r"""The polynomial :math:`f(x; a) = a_n x^n + \dots + a_1 x + a_0`, by Horner's rule.

    .. math:: f(x) = (\dots(a_n x + a_{n-1}) x + \dots) x + a_0

    :math:`n` multiplications, the numerically preferred form (Higham, *Accuracy and Stability
    of Numerical Algorithms*, §5.1).

    Args:
      x: inputs, a float array of any shape.
      theta: ``{"a": [a_0, a_1, ..., a_n]}``, a non-empty vector of coefficients in
        increasing degree.

    Returns:
      :math:`f(x)`, the shape of ``x``.

    Raises:
      ValueError: ``theta`` is not ``{"a": vector}`` or the vector is empty.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> print(float(fd.polynomial(3.0, {"a": jnp.array([1.0, 0.0, 2.0])})))  # 2x² + 1
      19.0
    """
    (a,) = _params(theta, ("a",), "polynomial")
    if a.ndim != 1 or a.shape[0] == 0:
        fail("theta['a']", "a non-empty vector of coefficients", f"shape {a.shape}")
    x = as_float(x)

    def horner(acc, coefficient):
        return acc * x + coefficient, None

    acc, _ = jax.lax.scan(horner, jnp.broadcast_to(a[-1], x.shape), a[:-1], reverse=True)
    return acc


def exponential(x: Any, theta: Params) -> Array:
    r"""Exponential growth or decay :math:`f(x; A, k) = A e^{k x}`.

    The deck's :math:`a^x` is the case :math:`A = 1,\ k = \ln a` (:math:`a^x = e^{x \ln a}`).

    Args:
      x: inputs, a float array of any shape.
      theta: ``{"A": amplitude, "k": rate}`` (``k < 0`` decays), broadcasting with ``x``.

    Returns:
      :math:`A e^{kx}`, the broadcast shape.

    Raises:
      ValueError: ``theta`` lacks or adds keys.

    Example:
      >>> import math
      >>> from mlwork import foundations as fd
      >>> print(f"{float(fd.exponential(3.0, {'A': 1.0, 'k': math.log(2)})):.4f}")  # 2³
      8.0000
    """
    amplitude, k = _params(theta, ("A", "k"), "exponential")
    x, amplitude, k = broadcast(as_float(x), amplitude, k)
    return amplitude * jnp.exp(k * x)


def sinusoid(x: Any, theta: Params) -> Array:
    r"""A sinusoid :math:`f(x; A, \omega, \varphi) = A \sin(\omega x + \varphi)`.

    Args:
      x: inputs, a float array of any shape.
      theta: ``{"A": amplitude, "omega": angular frequency (rad per unit of x), "phi": phase
        (rad)}``, broadcasting with ``x``.

    Returns:
      :math:`A\sin(\omega x + \varphi)`, the broadcast shape.

    Raises:
      ValueError: ``theta`` lacks or adds keys.

    Example:
      >>> import math
      >>> from mlwork import foundations as fd
      >>> print(f"{float(fd.sinusoid(0.25, {'A': 2.0, 'omega': 2 * math.pi, 'phi': 0.0})):.4f}")
      2.0000
    """
    amplitude, omega, phi = _params(theta, ("A", "omega", "phi"), "sinusoid")
    x, amplitude, omega, phi = broadcast(as_float(x), amplitude, omega, phi)
    return amplitude * jnp.sin(omega * x + phi)


def sigmoid_family(x: Any, theta: Params) -> Array:
    r"""A single sigmoid neuron on a scalar input, the deck's :math:`\hat y = \sigma(w x + b)`:

    .. math:: f(x; w, b) = \frac{1}{1 + e^{-(w x + b)}}

    :math:`w` sets the steepness and :math:`-b/w` the point where :math:`f = 1/2`. Stable for
    large :math:`|wx + b|` (``jax.nn.sigmoid``).

    Args:
      x: inputs, a float array of any shape.
      theta: ``{"w": weight, "b": bias}``, broadcasting with ``x``.

    Returns:
      :math:`\sigma(wx + b) \in (0, 1)`, the broadcast shape.

    Raises:
      ValueError: ``theta`` lacks or adds keys.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(float(fd.sigmoid_family(2.0, {"w": 3.0, "b": -6.0})))  # at x = -b/w
      0.5
    """
    w, b = _params(theta, ("w", "b"), "sigmoid_family")
    x, w, b = broadcast(as_float(x), w, b)
    return jax.nn.sigmoid(w * x + b)


# ---------------------------------------------------------------------------------------------
# Composition and inverses
# ---------------------------------------------------------------------------------------------


def compose(*fs: Callable[[Any], Any]) -> Callable[[Any], Any]:
    r"""The composition :math:`f_1 \circ f_2 \circ \dots \circ f_k`, applied right to left.

    .. math:: (f \circ g)(x) = f(g(x))

    so ``compose(f, g)`` applies ``g`` first. Order matters: for the deck's :math:`f = x^2`,
    :math:`g = x + 1`, :math:`(f\circ g)(x) = (x+1)^2` but :math:`(g \circ f)(x) = x^2 + 1`.
    ``compose()`` is the identity. The result is a pure function (jit/vmap/grad apply), and a
    network is ``compose(layer_L, ..., layer_1)``.

    Args:
      *fs: functions of one argument.

    Returns:
      :math:`x \mapsto f_1(f_2(\dots f_k(x)))`.

    Raises:
      ValueError: an argument is not callable (named ``fs[i]``).

    Example:
      >>> from mlwork import foundations as fd
      >>> f, g = (lambda x: x * x), (lambda x: x + 1)
      >>> print(fd.compose(f, g)(2.0), fd.compose(g, f)(2.0))
      9.0 5.0
    """
    for i, f in enumerate(fs):
        check_callable(f, f"fs[{i}]")

    def composed(x):
        for f in reversed(fs):
            x = f(x)
        return x

    return composed


def _elementwise_derivative(f: Callable[[Array], Array], x: Array) -> Array:
    """f'(x) for an elementwise f, by one forward-mode product with a tangent of ones."""
    return jax.jvp(f, (x,), (jnp.ones_like(x),))[1]


def _bisect(f, y, lo, hi, *, iterations):
    g_lo = f(lo) - y

    def body(_, bounds):
        lo, hi, g_lo = bounds
        mid = 0.5 * (lo + hi)
        g_mid = f(mid) - y
        same = jnp.sign(g_mid) == jnp.sign(g_lo)
        return jnp.where(same, mid, lo), jnp.where(same, hi, mid), jnp.where(same, g_mid, g_lo)

    lo, hi, _ = jax.lax.fori_loop(0, iterations, body, (lo, hi, g_lo))
    return 0.5 * (lo + hi)


def _newton(f, y, x0, *, iterations):
    def body(_, x):
        value, slope = jax.jvp(f, (x,), (jnp.ones_like(x),))
        return x - (value - y) / slope

    return jax.lax.fori_loop(0, iterations, body, x0)


def inverse(
    f: Callable[[Array], Array],
    y: Any,
    bracket: tuple[Any, Any] | None = None,
    *,
    x0: Any = None,
    method: str | None = None,
    iterations: int | None = None,
    tol: float = 1e-4,
) -> Array:
    r"""Solve :math:`f(x) = y` for :math:`x`, i.e. evaluate the inverse :math:`f^{-1}(y)`.

    ``f`` must be elementwise and, for the answer to be *the* inverse, strictly monotone on the
    region searched (the deck's :math:`x^2 \mapsto \sqrt{x}` needs the branch :math:`x \ge 0`).

    * ``method="bisection"`` (default when ``bracket=(lo, hi)`` is given): keep the half of
      :math:`[lo, hi]` on which :math:`f(x) - y` changes sign, ``iterations`` (default 64)
      times — the interval shrinks as :math:`(hi - lo)/2^k`, to float32 resolution. Needs
      :math:`f(lo) - y` and :math:`f(hi) - y` of opposite signs (checked when concrete).
    * ``method="newton"`` (default when only ``x0`` is given): the tangent-line step

      .. math:: x_{k+1} = x_k - \frac{f(x_k) - y}{f'(x_k)}

      with :math:`f'` from ``jax.jvp``; quadratic convergence near a simple root, ``iterations``
      default 50.

    The result is differentiable in ``y`` by the inverse function theorem,
    :math:`(f^{-1})'(y) = 1 / f'(f^{-1}(y))` (a custom JVP; the loop itself is not
    differentiated). ``f`` is used as it is at each call (a changed closure is traced again).

    Args:
      f: an elementwise function.
      y: the target value(s), a float array (solved elementwise).
      bracket: ``(lo, hi)`` for bisection, broadcasting with ``y``.
      x0: the starting point for Newton's method, broadcasting with ``y``.
      method: ``"bisection"`` or ``"newton"`` (default from the arguments given).
      iterations: loop length, a positive integer.
      tol: the accepted residual :math:`|f(x) - y| \le` ``tol`` :math:`\cdot\max(1, |y|)`,
        checked when the values are concrete.

    Returns:
      :math:`x` with :math:`f(x) \approx y`, the broadcast shape of ``y`` and the start.

    Raises:
      ValueError: ``f`` not callable, a bad ``method``/``iterations``/``tol``, non-finite
        ``y``/``bracket``/``x0``, a bracket that does not enclose a solution, no ``x0`` for
        Newton, or (when concrete) a residual above the tolerance (``y`` outside the range of
        ``f``, or :math:`f'(x) = 0` on Newton's path). Under ``jit`` no value check runs and
        such a solve returns NaN or a bracket end.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> print(f"{float(fd.inverse(jnp.exp, 10.0, (-20.0, 20.0))):.5f}")  # ln 10
      2.30259
      >>> print(f"{float(fd.inverse(jnp.square, 9.0, x0=1.0)):.5f}")  # the x >= 0 branch of √
      3.00000

    Reference: Burden & Faires, *Numerical Analysis*, §2.1 (bisection) and §2.3 (Newton).
    """
    check_callable(f, "f")
    if method is None:
        method = "bisection" if bracket is not None else "newton"
    check_choice(method, "method", ("bisection", "newton"))
    if iterations is None:
        iterations = 64 if method == "bisection" else 50
    iterations = check_int(iterations, "iterations", minimum=1)
    tol = check_real(tol, "tol", low=0.0, low_open=True)
    y = as_float(y)
    check_finite(y, "y")

    if method == "bisection":
        if bracket is None or len(bracket) != 2:
            fail("bracket", "a pair (lo, hi) for bisection", repr(bracket))
        lo, hi = (as_float(b).astype(y.dtype) for b in bracket)
        check_finite((lo, hi), "bracket")
        y, lo, hi = broadcast(y, lo, hi)
        g = concrete(f(lo) - y), concrete(f(hi) - y)
        if g[0] is not None and g[1] is not None and np.any(np.sign(g[0]) * np.sign(g[1]) > 0):
            fail("bracket", "an interval enclosing a solution (f(lo) - y and f(hi) - y of opposite signs)",
                 "the same sign at both ends (y outside the range of f on [lo, hi])")
        spec = jax.ShapeDtypeStruct(y.shape, y.dtype)

        def solve(y, lo, hi):
            return _staging.call(_bisect, [(f, (spec,))], (y, lo, hi), iterations=iterations)

        start = (lo, hi)
    else:
        if x0 is None:
            fail("x0", "a starting point for newton (or pass bracket for bisection)", None)
        x0 = as_float(x0).astype(y.dtype)
        check_finite(x0, "x0")
        y, x0 = broadcast(y, x0)
        spec = jax.ShapeDtypeStruct(y.shape, y.dtype)

        def solve(y, x0):
            return _staging.call(_newton, [(f, (spec,))], (y, x0), iterations=iterations)

        start = (x0,)

    solve = jax.custom_jvp(solve)

    @solve.defjvp
    def _inverse_function_theorem(primals, tangents):
        x = solve(*primals)
        return x, tangents[0] / _elementwise_derivative(f, x)

    x = solve(y, *start)
    residual = concrete(jnp.abs(f(x) - y))
    if residual is not None:
        bound = tol * np.maximum(1.0, np.abs(np.asarray(y)))
        if not np.all(residual <= bound):
            fail("y", f"a value that {method} can reach (in the range of f, with f monotone there)",
                 f"a residual |f(x) - y| of {float(np.max(residual)):.3g} after {iterations} iterations")
    return x
