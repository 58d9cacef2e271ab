r"""Fitting a curve's parameters (deck sections 3 and 5): "training = turning knobs θ".

:func:`fit_curve` fits :math:`\theta` of a parametric family :math:`f(x; \theta)` from
:mod:`~mlwork.foundations.functions` to data with any Optax optimizer, all steps in one
``lax.scan``. (Renamed from ``fit``/``FitResult``, which remain as deprecated aliases.)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlwork._validate import check_callable, check_finite, check_int, concrete, fail
from mlwork.foundations._checks import as_float

Array = jax.Array
Params = Any




class CurveFit(NamedTuple):
    """What :func:`fit_curve` returns.

    Attributes:
      params: the fitted :math:`\\theta^*`, same pytree structure as ``theta0``.
      losses: :math:`J(\\theta_k)` for :math:`k = 0, \\dots,` ``steps`` (``steps + 1`` values:
        the initial loss, then the loss after every update).
    """

    params: Params
    losses: Array


def _mean_squared_error(predictions: Array, targets: Array) -> Array:
    return jnp.mean(jnp.square(predictions - targets))


def fit_curve(
    f: Callable[[Array, Params], Array],
    theta0: Params,
    x: Any,
    y: Any,
    optimizer: optax.GradientTransformation,
    *,
    loss: Callable[[Array, Array], Array] | None = None,
    steps: int = 500,
) -> CurveFit:
    r"""Fit the parameters :math:`\theta` of a curve :math:`f(x; \theta)` to data by gradient
    steps: "training = turning knobs :math:`\theta` until the output looks right".

    .. math:: \theta^* \approx \arg\min_\theta J(\theta), \qquad
              J(\theta) = \mathrm{loss}\big(f(x; \theta), y\big)

    Each step computes :math:`\nabla_\theta J` with ``jax.value_and_grad`` and lets
    ``optimizer`` (any ``optax.GradientTransformation``: ``optax.sgd``, ``optax.adam``, the
    chains of ``mlwork.optim``) turn it into an update, :math:`\theta \leftarrow \theta +
    \Delta\theta`; for plain SGD that is :math:`\theta \leftarrow \theta - \eta \nabla_\theta J`.
    All ``steps`` updates run as one ``lax.scan`` (one compiled loop, no host round trips).
    ``fit_curve`` can itself be wrapped in ``jax.jit`` (close over ``f``, ``optimizer`` and
    ``loss``).

    Args:
      f: a parametric family ``f(x, theta)`` such as :func:`linear`.
      theta0: the starting parameters, a pytree of float arrays.
      x, y: the data, float arrays; ``f(x, theta)`` must have the shape of ``y``.
      optimizer: an ``optax.GradientTransformation``.
      loss: ``loss(predictions, y) -> scalar``; default the mean squared error
        :math:`\frac1N\sum_i (f(x_i) - y_i)^2`.
      steps: the number of updates, a positive integer.

    Returns:
      :class:`CurveFit` ``(params, losses)``.

    Raises:
      ValueError: non-finite data or ``theta0``, ``steps`` not a positive integer, an object
        that is not a gradient transformation, ``f(x, theta)`` not of the shape of ``y``, and —
        when the values are concrete — a loss that becomes non-finite (naming ``optimizer`` and
        the first such step; usually the learning rate is too large).

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from mlwork import foundations as fd
      >>> x = jnp.linspace(-1.0, 1.0, 21)
      >>> r = fd.fit_curve(fd.linear, {"m": 0.0, "b": 0.0}, x, 2 * x - 0.5, optax.sgd(0.3), steps=200)
      >>> print(f"{float(r.params['m']):.3f} {float(r.params['b']):.3f}")
      2.000 -0.500

    Reference: deck section 3 ("training = finding the best parameters θ*") and section 5
    (gradient descent); the optimizers are Optax's.
    """
    check_callable(f, "f")
    loss = _mean_squared_error if loss is None else check_callable(loss, "loss")
    if not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))):
        fail("optimizer", "an optax.GradientTransformation (with init and update)", type(optimizer).__name__)
    steps = check_int(steps, "steps", minimum=1)
    x, y = as_float(x), as_float(y)
    check_finite(x, "x")
    check_finite(y, "y")
    check_finite(theta0, "theta0")
    theta0 = jax.tree_util.tree_map(as_float, theta0)
    out = jax.eval_shape(f, x, theta0)
    if getattr(out, "shape", None) != y.shape:
        fail("y", f"the shape of f(x, theta), {getattr(out, 'shape', type(out).__name__)}", f"shape {y.shape}")

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
        fail("optimizer", "a step size under which the loss stays finite (lower the learning rate, or "
             "rescale x and y)", f"a non-finite loss at step {first}")
    return CurveFit(theta, losses)


def fit(*args: Any, **kwargs: Any) -> CurveFit:
    """Deprecated name of :func:`fit_curve` (warns with ``DeprecationWarning``)."""
    warnings.warn("mlwork.foundations.fit is deprecated; use fit_curve", DeprecationWarning, stacklevel=2)
    return fit_curve(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "FitResult":
        warnings.warn("mlwork.foundations.FitResult is deprecated; use CurveFit", DeprecationWarning, stacklevel=2)
        return CurveFit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
