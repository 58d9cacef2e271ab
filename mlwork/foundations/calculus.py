r"""Derivatives and gradient descent (deck section 5), next to what JAX does exactly.

* :func:`derivative` is the deck's difference quotient (forward, or central) with a given step,
  or — with no step — Ridders' extrapolation over a ladder of steps, within about 1e-5 of
  ``jax.grad`` on smooth functions wherever some step stays in ``f``'s domain;
* :func:`nth_derivative`, :func:`partial`, :func:`gradient`, :func:`hessian` are ``jax.grad``
  (the exact derivative) in the deck's notation;
* :func:`gradient_descent` follows :math:`-\nabla f` downhill in one ``lax.scan``.

Limits are in :mod:`~mlwork.foundations.limits`, integrals in
:mod:`~mlwork.foundations.quadrature` and :mod:`~mlwork.foundations.integrals`.

References:
  C. J. F. Ridders (1982), "Accurate computation of F'(x) and F'(x)F''(x)", Adv. Eng.
  Software 4(2); W. H. Press et al., *Numerical Recipes*, 3rd ed., §5.7 (the step of a
  numerical derivative, and ``dfridr``); R. L. Burden, J. D. Faires, *Numerical Analysis*, §4.1.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import check_callable, check_choice, check_finite, check_int, concrete, fail
from mlwork.foundations._checks import as_float

Array = jax.Array

# ---------------------------------------------------------------------------------------------
# Derivatives
# ---------------------------------------------------------------------------------------------

#: The ladder of steps of ``derivative(..., h=None)``: ``LADDER`` steps halving from the power
#: of two at or below ``max(1, |x|) / 4``, and Richardson columns up to ``COLUMNS``.
LADDER = 48
COLUMNS = 4


def _check_positive(value: Any, name: str) -> None:
    v = concrete(value)
    if v is not None and not (np.all(np.isfinite(v)) and np.all(v > 0)):
        bad = v[~(np.isfinite(v) & (v > 0))].flat[0] if np.ndim(v) else v
        fail(name, "positive and finite", bad)


def _check_domain(f: Callable, x: Array, h: Any, values: tuple[Array, ...], labels: tuple[str, ...]) -> None:
    """ValueError naming x and h where f(x ± h) is not finite though f(x) is (concrete values)."""
    vals = [concrete(v) for v in values]
    if any(v is None for v in vals) or all(np.all(np.isfinite(v)) for v in vals):
        return
    fx = concrete(f(x))
    if fx is None:
        return
    for v, label in zip(vals, labels, strict=True):
        bad = np.broadcast_to(~np.isfinite(v) & np.isfinite(fx), np.shape(fx))
        if np.any(bad):
            k = np.unravel_index(np.argmax(bad), bad.shape) if bad.ndim else ()
            xk = np.asarray(x)[k] if np.ndim(x) else np.asarray(x)
            hk = np.broadcast_to(np.asarray(h), np.shape(fx))[k] if np.ndim(fx) else np.asarray(h).reshape(-1)[0]
            fail("x and h", f"such that f({label}) is finite, as f(x) is (the step leaves f's domain; "
                 "take a smaller h, or method='forward' at the edge of the domain)",
                 f"x={float(xk):.6g}, h={float(hk):.3g}")


def derivative(f: Callable[[Array], Array], x: Any, h: Any = None, method: str = "central") -> Array:
    r"""The derivative :math:`f'(x)` by finite differences: the deck's definition with a small
    but finite :math:`h`.

    .. math::
        \text{forward: } \frac{f(x + h) - f(x)}{h} = f'(x) + O(h), \qquad
        \text{central: } \frac{f(x + h) - f(x - h)}{2h} = f'(x) + O(h^2)

    With a given ``h`` this is the quotient itself, divided by the step actually taken
    (:math:`(x + h) - x` as rounded): the truncation error falls as :math:`h` or :math:`h^2`
    while the round-off error grows as :math:`\varepsilon|f|/h` (float32
    :math:`\varepsilon \approx 1.2\times10^{-7}`), which is the deck's lesson.

    With ``h=None`` the step is chosen for ``f`` and ``x`` (Ridders' method, Numerical Recipes
    ``dfridr``): the quotient is taken on a ladder of 48 steps halving from about
    :math:`\max(1, |x|)/4` (powers of two, so :math:`x \pm h` is exact), extrapolated to
    :math:`h \to 0` by Richardson (eliminating the :math:`h^2, h^4, h^6` terms of the central
    quotient, :math:`h, h^2, h^3` of the forward one), and the entry with the smallest relative
    error estimate (its neighbours' disagreement, and never less than its rounding noise) is
    returned. Steps whose points leave ``f``'s domain (a non-finite value) or whose
    differences are pure rounding are skipped, so the step scales with ``x`` and with ``f``'s
    own scale: the central derivative is within 1% of ``jax.grad`` (typically 1e-5) on smooth,
    well-conditioned functions wherever some step stays in the domain — :math:`\log` and
    :math:`\sqrt{}` at :math:`10^{-3}`, :math:`\arccos` at 0.999, :math:`\sin` at
    :math:`10^6`. The forward derivative is less accurate where :math:`|f/f'|` is large
    (a few % for :math:`\tanh` at -5 in float32). A function evaluated with more rounding
    than one ulp (:math:`\sin(1000x)` at :math:`x = 2`, whose argument alone rounds by
    :math:`10^{-4}`) limits any finite difference; ``jax.grad`` has no such limit.

    ``jax.grad(f)(x)`` computes the same derivative exactly by automatic differentiation; use
    this function to *see* the limit, and ``jax.grad`` to compute with it.

    Args:
      f: an elementwise function (``f(x)`` has the shape of ``x``).
      x: the point(s), a float array of any shape (integers become float32); finite.
      h: the step, ``> 0`` (broadcast against ``x``), or ``None`` for the extrapolated
        derivative.
      method: ``"central"`` or ``"forward"``.

    Returns:
      :math:`f'(x)`, the shape and dtype of ``x``.

    Raises:
      ValueError: ``f`` not callable, ``method`` unknown, ``x`` not finite, ``h <= 0``, a step
        that rounds away (``x ± h == x``), or — naming ``x`` and ``h`` — ``f(x ± h)`` not finite
        where ``f(x)`` is (with ``h=None``: at every step of the ladder); naming ``x``: ``f(x)``
        not finite, or a NaN quotient. Checked when the values are concrete; under ``jit`` such
        entries are NaN.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> print(f"{float(fd.derivative(jnp.log, 1e-3)):.1f}")  # 1/x = 1000
      1000.0
      >>> print(f"{float(fd.derivative(jnp.square, 3.0, h=0.1, method='forward')):.2f}")  # 2x + h
      6.10
    """
    check_callable(f, "f")
    check_choice(method, "method", ("forward", "central"))
    x = as_float(x)
    check_finite(x, "x")
    if h is None:
        return _no_nan(f, x, _ridders(f, x, method))
    h = as_float(h).astype(x.dtype)
    _check_positive(h, "h")
    x_plus, x_minus = (x + h, x) if method == "forward" else (x + h, x - h)
    step = x_plus - x_minus
    values = concrete(step)
    if values is not None and values.size and np.any(values == 0):
        eps = float(jnp.finfo(x.dtype).eps)
        fail("h", f"large enough that x ± h differs from x in {x.dtype} (h >= {eps:.1e}·max(1, |x|))",
             float(np.max(np.asarray(h))))
    f_plus, f_minus = f(x_plus), f(x_minus)
    _check_domain(f, x, h, (f_plus, f_minus),
                  ("x + h", "x") if method == "forward" else ("x + h", "x - h"))
    return _no_nan(f, x, (f_plus - f_minus) / step)


def _no_nan(f: Callable, x: Array, result: Array) -> Array:
    """``result``, unless (concretely) it holds a NaN: then ``f`` is not finite at ``x`` itself
    (where a derivative is undefined), or its values are NaN around it. ``ValueError`` naming x."""
    values = concrete(result)
    if values is None or not np.any(np.isnan(values)):
        return result
    k = np.unravel_index(np.argmax(np.isnan(values)), values.shape) if values.ndim else ()
    xk = float(np.asarray(x)[k]) if np.ndim(x) else float(np.asarray(x))
    fx = np.asarray(concrete(f(x)))
    fk = float(fx[k]) if fx.ndim else float(fx)
    if not np.isfinite(fk):
        fail("x", "a point where f is finite (f'(x) is undefined where f is not)", f"x={xk:.6g} with f(x)={fk}")
    fail("x", "a point near which f has no NaN (the difference quotient is NaN)", f"x={xk:.6g}")


def _ridders(f: Callable, x: Array, method: str) -> Array:
    """Richardson-extrapolated difference quotients on a ladder of halving steps; the entry
    with the smallest estimated relative error (Ridders 1982; Numerical Recipes dfridr). The
    ladder and the tableau are compiled programs of their own (by shape); only ``f`` runs as
    the caller runs it."""
    h, x_plus, x_minus = _ladder(x, method=method)
    f_plus, f_minus = f(x_plus), f(x_minus)
    result, any_finite = _tableau(h, x_plus, x_minus, jnp.asarray(f_plus), jnp.asarray(f_minus), method=method)
    none = concrete(~any_finite)
    if none is not None and np.any(none):
        _no_step_in_domain(f, x, h, none, method)
    return result


@functools.partial(jax.jit, static_argnames="method")
def _ladder(x: Array, *, method: str) -> tuple[Array, Array, Array]:
    k = jnp.arange(LADDER, dtype=x.dtype).reshape((LADDER,) + (1,) * x.ndim)
    # Powers of two: x ± h is then exact for every step down to the ulp of x.
    top = jnp.floor(jnp.log2(jnp.maximum(1.0, jnp.abs(x)))) - 2.0
    h = jnp.exp2(top[None] - k)
    x_plus = x[None] + h
    x_minus = jnp.broadcast_to(x, h.shape) if method == "forward" else x[None] - h
    return h, x_plus, x_minus


@functools.partial(jax.jit, static_argnames="method")
def _tableau(h: Array, x_plus: Array, x_minus: Array, f_plus: Array, f_minus: Array, *,
             method: str) -> tuple[Array, Array]:
    dtype = x_plus.dtype
    eps = float(jnp.finfo(dtype).eps)
    f_plus, f_minus = f_plus.astype(dtype), f_minus.astype(dtype)
    step = x_plus - x_minus
    change = f_plus - f_minus
    quotient = change / jnp.where(step != 0, step, 1.0)
    finite = jnp.isfinite(quotient) & (step != 0)
    # Richardson needs the ladder's ratio (a step rounded off its nominal size is left out), and
    # a difference must be more than rounding. Each quotient carries its rounding noise, one ulp
    # of f over the step, which no entry's error estimate may undercut by coincidence.
    nominal = h if method == "forward" else 2 * h
    size = jnp.maximum(jnp.abs(f_plus), jnp.abs(f_minus))
    valid = finite & (jnp.abs(step - nominal) <= 1e-3 * nominal) & (jnp.abs(change) > 4 * eps * size)
    noise = eps * size / jnp.where(step != 0, jnp.abs(step), 1.0)
    shape = quotient.shape[1:]
    best, best_err, ok = quotient[0], jnp.full(shape, jnp.inf, dtype), jnp.zeros(shape, bool)
    column = quotient
    order = 2.0 if method == "central" else 1.0
    for j in range(COLUMNS):
        factor = 2.0 ** (order * j)
        if j:
            new = (factor * column[1:] - column[:-1]) / (factor - 1.0)
            err = jnp.maximum(jnp.abs(new - column[1:]), jnp.abs(new - column[:-1]))
            noise = (factor * noise[1:] + noise[:-1]) / (factor - 1.0)
        else:
            new, err, noise = column[1:], jnp.abs(column[1:] - column[:-1]), noise[1:]
        column, valid = new, valid[1:] & valid[:-1]
        # Relative: at steps far beyond f's own scale (sin at 1e6) the quotients are small and
        # settle on a wrong value whose absolute differences are small too.
        err = jnp.maximum(err, noise) / (jnp.abs(column) + float(jnp.finfo(dtype).tiny))
        err = jnp.where(valid & jnp.isfinite(err), err, jnp.inf)
        i = jnp.argmin(err, axis=0)
        e = jnp.take_along_axis(err, i[None], axis=0)[0]
        c = jnp.take_along_axis(column, i[None], axis=0)[0]
        better = e < best_err
        best, best_err, ok = jnp.where(better, c, best), jnp.where(better, e, best_err), ok | better
    # Nothing significant (a flat function, or a derivative below rounding): the quotient at
    # the largest step with finite values; no finite value at all: NaN.
    first = jnp.argmax(finite, axis=0)
    fallback = jnp.take_along_axis(quotient, first[None], axis=0)[0]
    any_finite = jnp.any(finite, axis=0)
    return jnp.where(ok, best, jnp.where(any_finite, fallback, jnp.nan)), any_finite


def _no_step_in_domain(f: Callable, x: Array, h: Array, none: np.ndarray, method: str) -> None:
    """ValueError where no step of the ladder kept f finite though f(x) is finite."""
    fx = concrete(f(x))
    bad = none & np.isfinite(fx) if fx is not None else np.zeros_like(none)
    if np.any(bad):
        k = np.unravel_index(np.argmax(bad), bad.shape) if bad.ndim else ()
        hk = np.asarray(h)[(slice(None), *k)]
        where = "x ± h" if method == "central" else "x + h"
        fail("x and h", f"such that f({where}) is finite for some step, as f(x) is (x is at the edge "
             "of f's domain; method='forward' steps to the right only)",
             f"x={float(np.asarray(x)[k]):.6g} with h from {float(hk[0]):.3g} down to {float(hk[-1]):.3g}")


def _scalar_valued(f: Callable, name: str) -> Callable:
    """Wrap ``f`` so that a non-scalar output raises ValueError before differentiation."""

    def checked(*args):
        out = jax.eval_shape(f, *args)
        if not hasattr(out, "shape") or out.shape != ():
            shape = getattr(out, "shape", type(out).__name__)
            fail("f", f"a scalar-valued function for {name}", f"output of shape {shape}")
        return f(*args)

    return checked


def nth_derivative(f: Callable[[Array], Array], n: int) -> Callable[[Array], Array]:
    r"""The :math:`n`-th derivative :math:`f^{(n)} = \frac{d^n f}{dx^n}` of a scalar function,
    by applying ``jax.grad`` :math:`n` times (:math:`f^{(0)} = f`).

    Position, velocity, acceleration, jerk: ``n = 0, 1, 2, 3``. Apply it to arrays of points
    with ``jax.vmap``.

    Args:
      f: a scalar function of a scalar, :math:`\mathbb R \to \mathbb R`.
      n: the order, a non-negative integer.

    Returns:
      :math:`f^{(n)}`, a scalar function of a scalar.

    Raises:
      ValueError: ``f`` not callable, ``n`` not a non-negative integer; when called, ``f``
        not scalar-valued.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> print(float(fd.nth_derivative(lambda x: x ** 3, 2)(2.0)))  # 6x
      12.0
    """
    check_callable(f, "f")
    n = check_int(n, "n", minimum=0)
    for _ in range(n):
        f = jax.grad(_scalar_valued(f, "nth_derivative"))
    return f


def partial(f: Callable[..., Array], argnum: int = 0) -> Callable[..., Array]:
    r"""The partial derivative of a scalar :math:`f(x_0, x_1, \dots)` with respect to argument
    ``argnum``, the others held constant (``jax.grad(f, argnums=argnum)``):

    .. math:: \frac{\partial f}{\partial x_i} =
              \lim_{h\to0}\frac{f(\dots, x_i + h, \dots) - f(\dots, x_i, \dots)}{h}

    Args:
      f: a scalar function of several arguments.
      argnum: the index of the argument, a non-negative integer.

    Returns:
      :math:`\partial f/\partial x_{\text{argnum}}`, a function of the same arguments.

    Raises:
      ValueError: ``f`` not callable, ``argnum`` negative; when called, ``f`` not scalar.

    Example:
      >>> from mlwork import foundations as fd
      >>> f = lambda x, y: x**2 * y + 3 * x * y**2
      >>> print(float(fd.partial(f, 0)(1.0, 2.0)), float(fd.partial(f, 1)(1.0, 2.0)))  # 2xy+3y², x²+6xy
      16.0 13.0
    """
    check_callable(f, "f")
    argnum = check_int(argnum, "argnum", minimum=0)
    return jax.grad(_scalar_valued(f, "partial"), argnums=argnum)


def gradient(f: Callable[[Array], Array]) -> Callable[[Array], Array]:
    r"""The gradient :math:`\nabla f = \big(\frac{\partial f}{\partial x_1}, \dots,
    \frac{\partial f}{\partial x_n}\big)` of a scalar :math:`f: \mathbb{R}^n \to \mathbb{R}`,
    the direction of steepest increase (``jax.grad``; ``x`` may be any pytree).

    Args:
      f: a scalar function of one argument (an array or pytree).

    Returns:
      :math:`\nabla f`, with the structure and shapes of the argument.

    Raises:
      ValueError: ``f`` not callable; when called, ``f`` not scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> print(fd.gradient(lambda v: jnp.sum(v ** 2))(jnp.array([1.0, -2.0])))
      [ 2. -4.]
    """
    check_callable(f, "f")
    return jax.grad(_scalar_valued(f, "gradient"))


def hessian(f: Callable[[Array], Array]) -> Callable[[Array], Array]:
    r"""The Hessian :math:`H_{ij} = \frac{\partial^2 f}{\partial x_i\,\partial x_j}` of a scalar
    :math:`f: \mathbb{R}^n \to \mathbb{R}` (``jax.hessian``: forward-over-reverse), symmetric for
    twice continuously differentiable :math:`f`.

    Args:
      f: a scalar function of a vector of shape ``(n,)``.

    Returns:
      A function returning the ``(n, n)`` Hessian.

    Raises:
      ValueError: ``f`` not callable; when called, ``f`` not scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> print(fd.hessian(lambda v: v[0] ** 2 * v[1])(jnp.array([1.0, 2.0])))  # [[2y, 2x], [2x, 0]]
      [[4. 2.]
       [2. 0.]]
    """
    check_callable(f, "f")
    return jax.hessian(_scalar_valued(f, "hessian"))


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
