r"""Functions and parameters (deck section 3): :math:`f(x; \theta)` as pure JAX functions.

A parametric family is a function ``f(x, theta)`` with the variable first and the parameters
:math:`\theta` second, as a pytree (a dict of arrays) — the deck's semicolon in
:math:`f(x; \theta)`. Every family here is elementwise in ``x`` and differentiable in both
arguments, so ``jax.grad(lambda th: loss(f(x, th), y))`` is the gradient that training follows
and :func:`fit` is "training = turning knobs :math:`\theta`".

:func:`compose` chains functions (:math:`(f\circ g)(x) = f(g(x))`, order matters) and
:func:`inverse` solves :math:`f(x) = y` for :math:`x` (bisection, or Newton's method with f' from
``jax.jvp``), differentiable in :math:`y` by the inverse function theorem.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlwork._validate import concrete
from mlwork.foundations._checks import (
    as_float,
    broadcast,
    check_callable,
    check_choice,
    check_finite,
    check_int,
)
from mlwork.nn.losses import mse

Array = jax.Array
Params = Any


def _params(theta: Any, keys: tuple[str, ...], family: str) -> tuple[Array, ...]:
    if not isinstance(theta, dict) or set(theta) != set(keys):
        got = sorted(theta) if isinstance(theta, dict) else type(theta).__name__
        raise ValueError(f"theta for {family} must be a dict with keys {list(keys)}, got {got}")
    return tuple(as_float(theta[k]) for k in keys)


# ---------------------------------------------------------------------------------------------
# Parametric families f(x; θ)
# ---------------------------------------------------------------------------------------------


def linear(x: Any, theta: Params) -> Array:
    r"""The line :math:`f(x; m, b) = m x + b`, ``theta = {"m": slope, "b": intercept}``."""
    m, b = _params(theta, ("m", "b"), "linear")
    x, m, b = broadcast(as_float(x), m, b)
    return m * x + b


def polynomial(x: Any, theta: Params) -> Array:
    r"""The polynomial :math:`f(x; a) = a_n x^n + \dots + a_1 x + a_0`,
    ``theta = {"a": [a_0, a_1, ..., a_n]}`` (coefficients in increasing degree).

    Evaluated by Horner's rule, :math:`(\dots(a_n x + a_{n-1}) x + \dots) x + a_0`, which uses
    :math:`n` multiplications and is the numerically preferred form. ``x`` may have any shape;
    ``a`` is a vector.
    """
    (a,) = _params(theta, ("a",), "polynomial")
    if a.ndim != 1 or a.shape[0] == 0:
        raise ValueError(f"theta['a'] must be a non-empty vector of coefficients, got shape {a.shape}")
    x = as_float(x)

    def horner(acc, coefficient):
        return acc * x + coefficient, None

    acc, _ = jax.lax.scan(horner, jnp.broadcast_to(a[-1], x.shape), a[:-1], reverse=True)
    return acc


def exponential(x: Any, theta: Params) -> Array:
    r"""Exponential growth/decay :math:`f(x; A, k) = A e^{k x}`, ``theta = {"A": ..., "k": ...}``.

    The deck's :math:`a^x` is the case :math:`A = 1,\ k = \ln a` (:math:`a^x = e^{x \ln a}`).
    """
    amplitude, k = _params(theta, ("A", "k"), "exponential")
    x, amplitude, k = broadcast(as_float(x), amplitude, k)
    return amplitude * jnp.exp(k * x)


def sinusoid(x: Any, theta: Params) -> Array:
    r"""A sinusoid :math:`f(x; A, \omega, \varphi) = A \sin(\omega x + \varphi)`,
    ``theta = {"A": amplitude, "omega": angular frequency (rad per unit of x),
    "phi": phase (rad)}``."""
    amplitude, omega, phi = _params(theta, ("A", "omega", "phi"), "sinusoid")
    x, amplitude, omega, phi = broadcast(as_float(x), amplitude, omega, phi)
    return amplitude * jnp.sin(omega * x + phi)


def sigmoid_family(x: Any, theta: Params) -> Array:
    r"""A single sigmoid neuron on a scalar input, the deck's :math:`\hat y = \sigma(w x + b)`:

    .. math:: f(x; w, b) = \frac{1}{1 + e^{-(w x + b)}}

    ``theta = {"w": weight, "b": bias}``; :math:`w` sets the steepness and :math:`-b/w` the
    point where :math:`f = 1/2`. Stable for large :math:`|wx + b|` (``jax.nn.sigmoid``).
    """
    w, b = _params(theta, ("w", "b"), "sigmoid_family")
    x, w, b = broadcast(as_float(x), w, b)
    return jax.nn.sigmoid(w * x + b)


# ---------------------------------------------------------------------------------------------
# Composition and inverses
# ---------------------------------------------------------------------------------------------


def compose(*fs: Callable[[Any], Any]) -> Callable[[Any], Any]:
    r"""The composition :math:`f_1 \circ f_2 \circ \dots \circ f_k`, applied right to left:

    .. math:: (f \circ g)(x) = f(g(x))

    so ``compose(f, g)`` applies ``g`` first. Order matters: for the deck's :math:`f = x^2`,
    :math:`g = x + 1`, :math:`(f\circ g)(x) = (x+1)^2` but :math:`(g \circ f)(x) = x^2 + 1`.
    ``compose()`` is the identity. The result is a pure function (jit/vmap/grad apply), and a
    network is ``compose(layer_L, ..., layer_1)``.
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


@functools.partial(jax.jit, static_argnums=(0, 4))
def _bisect(f, y, lo, hi, iterations):
    g_lo = f(lo) - y

    def body(_, bounds):
        lo, hi, g_lo = bounds
        mid = 0.5 * (lo + hi)
        g_mid = f(mid) - y
        same = jnp.sign(g_mid) == jnp.sign(g_lo)
        return jnp.where(same, mid, lo), jnp.where(same, hi, mid), jnp.where(same, g_mid, g_lo)

    lo, hi, _ = jax.lax.fori_loop(0, iterations, body, (lo, hi, g_lo))
    return 0.5 * (lo + hi)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _newton(f, y, x0, iterations):
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

    ``y`` may be an array (solved elementwise, with ``lo``/``hi``/``x0`` broadcast); the whole
    solve is ``jit``/``vmap``-able. The result is differentiable in ``y`` by the inverse
    function theorem, :math:`(f^{-1})'(y) = 1 / f'(f^{-1}(y))` (a custom JVP; the loop itself is
    not differentiated).

    When the values are concrete, a residual :math:`|f(x) - y|` above
    ``tol · max(1, |y|)`` raises ``ValueError`` (e.g. Newton hit :math:`f'(x) = 0` or ``y`` is
    outside the range of ``f``); under ``jit`` no check runs and such a solve returns NaN or a
    bracket end.

    Reference: Burden & Faires, *Numerical Analysis*, §2.1 (bisection) and §2.3 (Newton).
    """
    check_callable(f, "f")
    if method is None:
        method = "bisection" if bracket is not None else "newton"
    check_choice(method, "method", ("bisection", "newton"))
    if iterations is None:
        iterations = 64 if method == "bisection" else 50
    iterations = check_int(iterations, "iterations")
    y = as_float(y)
    check_finite(y, "y")

    if method == "bisection":
        if bracket is None or len(bracket) != 2:
            raise ValueError(f"bracket must be a pair (lo, hi) for bisection, got {bracket!r}")
        lo, hi = (as_float(b).astype(y.dtype) for b in bracket)
        check_finite((lo, hi), "bracket")
        y, lo, hi = broadcast(y, lo, hi)
        g = concrete(f(lo) - y), concrete(f(hi) - y)
        if g[0] is not None and g[1] is not None and np.any(np.sign(g[0]) * np.sign(g[1]) > 0):
            raise ValueError(
                "bracket must enclose a solution: f(lo) - y and f(hi) - y have the same sign "
                "(y outside the range of f on [lo, hi])"
            )

        def solve(y, lo, hi):
            return _bisect(f, y, lo, hi, iterations)

        start = (lo, hi)
    else:
        if x0 is None:
            raise ValueError("newton needs a starting point x0 (or pass bracket for bisection)")
        x0 = as_float(x0).astype(y.dtype)
        check_finite(x0, "x0")
        y, x0 = broadcast(y, x0)

        def solve(y, x0):
            return _newton(f, y, x0, iterations)

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
            raise ValueError(
                f"inverse did not converge with method={method!r}: |f(x) - y| reached "
                f"{float(np.max(residual)):.3g} (is y in the range of f, and f monotone there?)"
            )
    return x


# ---------------------------------------------------------------------------------------------
# Fitting θ by gradient descent
# ---------------------------------------------------------------------------------------------


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
      params: the fitted :math:`\\theta^*`, same pytree structure as ``theta0``.
      losses: :math:`J(\\theta_k)` for :math:`k = 0, \\dots,` ``steps`` (``steps + 1`` values:
        the initial loss, then the loss after every update).
    """

    params: Params
    losses: Array


def fit(
    f: Callable[[Array, Params], Array],
    theta0: Params,
    x: Any,
    y: Any,
    optimizer: optax.GradientTransformation,
    *,
    loss: Callable[[Array, Array], Array] = mse,
    steps: int = 500,
) -> FitResult:
    r"""Fit :math:`\theta` by gradient-based optimisation: "training = turning knobs
    :math:`\theta` until the output looks right".

    .. math:: \theta^* \approx \arg\min_\theta J(\theta), \qquad
              J(\theta) = \mathrm{loss}\big(f(x; \theta), y\big)

    Each step computes :math:`\nabla_\theta J` with ``jax.value_and_grad`` and lets
    ``optimizer`` (any ``optax.GradientTransformation``: ``optax.sgd``, ``optax.adam``, the
    chains of ``mlwork.optim``) turn it into an update, :math:`\theta \leftarrow \theta +
    \Delta\theta`; for plain SGD that is :math:`\theta \leftarrow \theta - \eta \nabla_\theta J`.
    All ``steps`` updates run as one ``lax.scan`` (one compiled loop, no host round trips).

    ``f(x, theta)`` is a parametric family such as :func:`linear`; ``loss(predictions, y)``
    defaults to mean squared error. ``fit`` can itself be wrapped in ``jax.jit`` (close over
    ``f``, ``optimizer`` and ``loss``).

    Raises ``ValueError`` for non-finite data, a non-positive ``steps``, an object that is not a
    gradient transformation, and — when the values are concrete — a loss that becomes
    non-finite (naming the first such step; usually the learning rate is too large).

    Reference: deck section 3 ("training = finding the best parameters θ*") and section 5
    (gradient descent); the optimizers are Optax's.
    """
    check_callable(f, "f")
    check_callable(loss, "loss")
    if not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))):
        raise ValueError(
            "optimizer must be an optax.GradientTransformation (with init and update), "
            f"got {type(optimizer).__name__}"
        )
    steps = check_int(steps, "steps")
    x, y = as_float(x), as_float(y)
    check_finite(x, "x")
    check_finite(y, "y")
    check_finite(theta0, "theta0")
    theta0 = jax.tree_util.tree_map(as_float, theta0)

    def objective(theta):
        return loss(f(x, theta), y)

    def step(carry, _):
        theta, opt_state = carry
        value, grads = jax.value_and_grad(objective)(theta)
        # Optax internals mix Python floats with int32 step counts (adam's decay**count), which
        # strict dtype promotion rejects; the optimizer is traced under standard promotion.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grads, opt_state, theta)
        return (optax.apply_updates(theta, updates), opt_state), value

    (theta, _), losses = jax.lax.scan(step, (theta0, optimizer.init(theta0)), length=steps)
    # Traced (not eager), so a diverged theta yields the non-finite loss this function reports below.
    losses = jnp.concatenate([losses, jax.jit(objective)(theta)[None]])
    values = concrete(losses)
    if values is not None and not np.all(np.isfinite(values)):
        first = int(np.argmin(np.isfinite(values)))
        raise ValueError(
            f"fit diverged: the loss became non-finite at step {first} "
            "(lower the learning rate or rescale x and y)"
        )
    return FitResult(theta, losses)
