r"""Learning-rate schedules of deck section 14, as ``optax.Schedule`` functions of the step ``t``.

``t`` counts optimizer steps; the trainer converts epochs to steps. Each schedule is built on
Optax's schedule functions and returns a float32 scalar:

* :func:`constant`: :math:`\eta_t = \eta`;
* :func:`step`: :math:`\eta_t = \eta_0\,\gamma^{\lfloor t/s \rfloor}` (PyTorch's ``StepLR``);
* :func:`exponential_decay`: :math:`\eta_t = \eta_0\,e^{-\lambda t}`;
* :func:`cosine`: :math:`\eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})(1 + \cos(t\pi/T))`;
* :func:`warmup_cosine`: linear warm-up from ``init_value`` (0 by default, so the first step's
  learning rate is exactly 0) to ``peak_value``, then cosine to ``min_value`` at ``total_steps``;
* :func:`onecycle`: Smith's one-cycle policy (PyTorch's ``OneCycleLR`` defaults).

After ``total_steps`` the cosine-family schedules stay at their final value. :func:`schedule`
builds any of them by name (the names of :data:`SCHEDULES`, which the trainer's ``--schedule``
flag uses).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from mlwork._validate import check_choice, check_int, check_real, fail


def _rate(value, name: str) -> float:
    return check_real(value, name, low=0.0)  # a learning rate: finite and >= 0


def constant(value: float = 1e-3) -> optax.Schedule:
    r"""The constant schedule :math:`\eta_t = \eta`.

    Args:
      value: the learning rate :math:`\eta \ge 0`.

    Returns:
      A schedule ``t -> float32 scalar``.

    Raises:
      ValueError: if ``value`` is negative, NaN or infinite.

    Example:
      >>> from mlwork import optim
      >>> sched = optim.constant(0.3)
      >>> [round(float(sched(t)), 4) for t in (0, 10, 1000)]
      [0.3, 0.3, 0.3]
    """
    return optax.constant_schedule(_rate(value, "value"))


def step(init_value: float, step_size: int, gamma: float = 0.1) -> optax.Schedule:
    r"""Step decay :math:`\eta_t = \eta_0\,\gamma^{\lfloor t/s \rfloor}` (PyTorch's ``StepLR``).

    The deck's MNIST pipeline uses ``StepLR(step_size=5, gamma=0.5)`` counted in epochs; pass
    ``step_size = 5 * steps_per_epoch`` here.

    Args:
      init_value: :math:`\eta_0 \ge 0`.
      step_size: :math:`s`, optimizer steps between decays (a positive integer).
      gamma: the factor :math:`\gamma \in (0, 1]` applied every ``step_size`` steps.

    Returns:
      A schedule ``t -> float32 scalar``.

    Raises:
      ValueError: for a negative ``init_value``, a ``step_size`` that is not a positive integer or
        a ``gamma`` outside :math:`(0, 1]`.

    Example:
      >>> from mlwork import optim
      >>> sched = optim.step(1e-3, step_size=5, gamma=0.5)
      >>> [round(float(sched(t)), 6) for t in (0, 4, 5, 10)]
      [0.001, 0.001, 0.0005, 0.00025]
    """
    init_value = _rate(init_value, "init_value")
    step_size = check_int(step_size, "step_size", minimum=1)
    gamma = check_real(gamma, "gamma", low=0.0, high=1.0, low_open=True)
    return optax.exponential_decay(init_value, transition_steps=step_size, decay_rate=gamma,
                                   staircase=True)


def exponential_decay(init_value: float, rate: float) -> optax.Schedule:
    r"""Exponential decay :math:`\eta_t = \eta_0\,e^{-\lambda t}`.

    Args:
      init_value: :math:`\eta_0 \ge 0`.
      rate: :math:`\lambda \ge 0`, per optimizer step.

    Returns:
      A schedule ``t -> float32 scalar``.

    Raises:
      ValueError: for a negative, NaN or infinite ``init_value`` or ``rate``.

    Example:
      >>> import math
      >>> from mlwork import optim
      >>> sched = optim.exponential_decay(0.1, rate=0.05)
      >>> round(float(sched(20)), 5), round(0.1 * math.exp(-0.05 * 20), 5)
      (0.03679, 0.03679)
    """
    init_value = _rate(init_value, "init_value")
    rate = check_real(rate, "rate", low=0.0)
    return optax.exponential_decay(init_value, transition_steps=1, decay_rate=math.exp(-rate))


def cosine(init_value: float, total_steps: int, min_value: float = 0.0) -> optax.Schedule:
    r"""Cosine annealing :math:`\eta_t = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})(1 + \cos(t\pi/T))`.

    :math:`T` is ``total_steps``; after it the rate stays at :math:`\eta_{\min}`
    (Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent with Warm Restarts", without
    restarts).

    Args:
      init_value: :math:`\eta_0 \ge 0`.
      total_steps: :math:`T`, a positive integer.
      min_value: :math:`\eta_{\min}`, between 0 and ``init_value``.

    Returns:
      A schedule ``t -> float32 scalar``.

    Raises:
      ValueError: for a negative rate, a ``total_steps`` that is not a positive integer, or
        ``min_value > init_value``.

    Example:
      >>> from mlwork import optim
      >>> sched = optim.cosine(0.1, total_steps=50, min_value=0.001)
      >>> [round(float(sched(t)), 4) for t in (0, 25, 50, 80)]
      [0.1, 0.0505, 0.001, 0.001]
    """
    init_value = _rate(init_value, "init_value")
    total_steps = check_int(total_steps, "total_steps", minimum=1)
    min_value = check_real(min_value, "min_value", low=0.0, high=init_value)
    if init_value == 0.0:
        return optax.constant_schedule(0.0)
    return optax.cosine_decay_schedule(init_value, decay_steps=total_steps, alpha=min_value / init_value)


def warmup_cosine(peak_value: float, warmup_steps: int, total_steps: int, init_value: float = 0.0,
                  min_value: float = 0.0) -> optax.Schedule:
    r"""Linear warm-up to ``peak_value``, then cosine decay to ``min_value`` at ``total_steps``.

    As the deck advises ("start with small η, gradually increase, then decay"). With the default
    ``init_value=0`` the learning rate of step 0 is exactly 0: the first update leaves the
    parameters unchanged (pass a small ``init_value`` to move from the first step).
    ``total_steps`` includes the warm-up.

    Args:
      peak_value: the rate reached after ``warmup_steps``, :math:`\ge 0`.
      warmup_steps: an integer in ``[0, total_steps)``.
      total_steps: a positive integer.
      init_value: the rate at step 0, :math:`\ge 0`.
      min_value: the rate at and after ``total_steps``, :math:`\ge 0`.

    Returns:
      A schedule ``t -> float32 scalar``.

    Raises:
      ValueError: for a negative rate or step counts out of range.

    Example:
      >>> from mlwork import optim
      >>> sched = optim.warmup_cosine(1.0, warmup_steps=10, total_steps=110, min_value=0.1)
      >>> [round(float(sched(t)), 4) for t in (0, 5, 10, 60, 110)]
      [0.0, 0.5, 1.0, 0.55, 0.1]
    """
    peak_value = _rate(peak_value, "peak_value")
    init_value = _rate(init_value, "init_value")
    min_value = _rate(min_value, "min_value")
    total_steps = check_int(total_steps, "total_steps", minimum=1)
    warmup_steps = check_int(warmup_steps, "warmup_steps", minimum=0, maximum=total_steps - 1)
    return optax.warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, total_steps,
                                              end_value=min_value)


def onecycle(peak_value: float, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
             final_div_factor: float = 1e4) -> optax.Schedule:
    r"""Smith & Topin's one-cycle policy ("Super-Convergence", 2019), PyTorch's ``OneCycleLR``.

    Cosine warm-up from ``peak_value / div_factor`` to ``peak_value`` over the first
    ``pct_start`` of the steps, then cosine decay to ``peak_value / (div_factor · final_div_factor)``.

    Args:
      peak_value: the highest rate, :math:`\ge 0`.
      total_steps: a positive integer.
      pct_start: the warm-up's share of the steps, in :math:`(0, 1)`.
      div_factor: start at ``peak_value / div_factor`` (> 0).
      final_div_factor: end at ``peak_value / (div_factor · final_div_factor)`` (> 0).

    Returns:
      A schedule ``t -> float32 scalar``.

    Raises:
      ValueError: for an argument out of range.

    Example:
      >>> from mlwork import optim
      >>> sched = optim.onecycle(0.4, total_steps=100)
      >>> [round(float(sched(t)), 6) for t in (0, 30, 100)]
      [0.016, 0.4, 2e-06]
    """
    peak_value = _rate(peak_value, "peak_value")
    total_steps = check_int(total_steps, "total_steps", minimum=1)
    pct_start = check_real(pct_start, "pct_start", low=0.0, high=1.0, low_open=True, high_open=True)
    div_factor = check_real(div_factor, "div_factor", low=0.0, low_open=True)
    final_div_factor = check_real(final_div_factor, "final_div_factor", low=0.0, low_open=True)
    return optax.cosine_onecycle_schedule(total_steps, peak_value, pct_start=pct_start,
                                          div_factor=div_factor, final_div_factor=final_div_factor)


def _standard_promotion(fn: Callable[..., optax.Schedule]) -> Callable[..., optax.Schedule]:
    """Make the schedule built by ``fn`` evaluate under standard dtype promotion, returning float32.

    Optax's schedules mix Python floats with the int32 step count, which JAX's strict promotion
    mode rejects; callers may run in strict mode (our tests do).
    """

    @functools.wraps(fn)
    def build(*args, **kwargs) -> optax.Schedule:
        inner = fn(*args, **kwargs)

        def sched(count):
            with jax.numpy_dtype_promotion("standard"):
                return jnp.asarray(inner(count), jnp.float32)

        return sched

    return build


constant, step, exponential_decay, cosine, warmup_cosine, onecycle = (
    _standard_promotion(f) for f in (constant, step, exponential_decay, cosine, warmup_cosine, onecycle))

#: Schedule builders by name, as :func:`schedule` and the trainer's ``--schedule`` look them up.
SCHEDULES: dict[str, Callable[..., optax.Schedule]] = {
    "constant": constant,
    "step": step,
    "exponential": exponential_decay,
    "cosine": cosine,
    "warmup_cosine": warmup_cosine,
    "onecycle": onecycle,
}


def schedule(name: str, **kwargs) -> optax.Schedule:
    """Build a schedule by name.

    Args:
      name: ``constant``, ``step``, ``exponential`` (:func:`exponential_decay`), ``cosine``,
        ``warmup_cosine`` or ``onecycle``.
      **kwargs: the keywords of the function of that name.

    Returns:
      A schedule ``t -> float32 scalar``.

    Raises:
      ValueError: for an unknown name, a keyword the schedule does not take, or a bad value.

    Example:
      >>> from mlwork import optim
      >>> sched = optim.schedule("cosine", init_value=0.1, total_steps=1000)
      >>> round(float(sched(500)), 4)
      0.05
    """
    check_choice(name, "name", tuple(SCHEDULES))
    builder = SCHEDULES[name]
    params = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        fail("the keywords", f"among ({', '.join(params)}) for schedule {name!r}", ", ".join(unknown))
    missing = [p for p, v in params.items() if v.default is inspect.Parameter.empty and p not in kwargs]
    if missing:
        fail("the keywords", f"complete for schedule {name!r}, which needs {', '.join(missing)}",
             "no " + ", ".join(missing))
    return builder(**kwargs)
