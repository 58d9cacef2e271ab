r"""Learning-rate schedules of deck section 14, as ``optax.Schedule`` functions of the step ``t``.

``t`` counts optimizer steps; the trainer converts epochs to steps. Each schedule is built on
Optax's schedule functions:

* ``constant(value)``: :math:`\eta_t = \eta`;
* ``step(init_value, step_size, gamma)``: :math:`\eta_t = \eta_0\,\gamma^{\lfloor t/s \rfloor}`
  (PyTorch's ``StepLR``);
* ``exponential(init_value, rate)``: :math:`\eta_t = \eta_0\,e^{-\lambda t}`;
* ``cosine(init_value, total_steps, min_value=0)``:
  :math:`\eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})(1 + \cos(t\pi/T))`;
* ``warmup_cosine(peak_value, warmup_steps, total_steps, init_value=0, min_value=0)``: linear
  warm-up from ``init_value`` to ``peak_value``, then cosine to ``min_value`` at ``total_steps``
  (the warm-up counts towards the total);
* ``onecycle(peak_value, total_steps)``: Smith's one-cycle policy, cosine up for 30% of the
  steps from ``peak/25``, then cosine down to ``peak/(25·10⁴)`` (PyTorch's defaults).

After ``total_steps`` the cosine-family schedules stay at their final value.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from mlwork._validate import check_finite_number


def _nonneg(value, name: str) -> float:
    v = check_finite_number(value, name)
    if v < 0:
        raise ValueError(f"{name} must be >= 0 (a learning rate), got {v}")
    return v


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or int(value) <= 0:
        raise ValueError(f"{name} must be a positive integer number of steps, got {value!r}")
    return int(value)


def constant(value: float = 1e-3) -> optax.Schedule:
    r""":math:`\eta_t = \eta` for every step."""
    return optax.constant_schedule(_nonneg(value, "value"))


def step(init_value: float, step_size: int, gamma: float = 0.1) -> optax.Schedule:
    r"""Step decay :math:`\eta_t = \eta_0\,\gamma^{\lfloor t/s \rfloor}` (PyTorch's ``StepLR``).

    The deck's pipeline uses ``StepLR(step_size=5, gamma=0.5)`` in epochs; pass
    ``step_size = 5 * steps_per_epoch`` here.
    """
    init_value = _nonneg(init_value, "init_value")
    step_size = _positive_int(step_size, "step_size")
    gamma = check_finite_number(gamma, "gamma")
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1] (a decay factor), got {gamma}")
    return optax.exponential_decay(init_value, transition_steps=step_size, decay_rate=gamma,
                                   staircase=True)


def exponential(init_value: float, rate: float) -> optax.Schedule:
    r"""Exponential decay :math:`\eta_t = \eta_0\,e^{-\lambda t}` with ``rate`` :math:`=\lambda \ge 0`."""
    init_value = _nonneg(init_value, "init_value")
    rate = _nonneg(rate, "rate")
    return optax.exponential_decay(init_value, transition_steps=1, decay_rate=math.exp(-rate))


def cosine(init_value: float, total_steps: int, min_value: float = 0.0) -> optax.Schedule:
    r"""Cosine annealing :math:`\eta_t = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})(1 + \cos(t\pi/T))`,
    :math:`T` = ``total_steps``, constant :math:`\eta_{\min}` after :math:`T` (Loshchilov & Hutter, 2017)."""
    init_value = _nonneg(init_value, "init_value")
    total_steps = _positive_int(total_steps, "total_steps")
    min_value = _nonneg(min_value, "min_value")
    if min_value > init_value:
        raise ValueError(f"min_value ({min_value}) must not exceed init_value ({init_value})")
    if init_value == 0.0:
        return optax.constant_schedule(0.0)
    return optax.cosine_decay_schedule(init_value, decay_steps=total_steps, alpha=min_value / init_value)


def warmup_cosine(peak_value: float, warmup_steps: int, total_steps: int, init_value: float = 0.0,
                  min_value: float = 0.0) -> optax.Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then cosine decay
    to ``min_value`` at ``total_steps`` (which includes the warm-up), as the deck advises
    ("start with small η, gradually increase, then decay")."""
    peak_value = _nonneg(peak_value, "peak_value")
    init_value = _nonneg(init_value, "init_value")
    min_value = _nonneg(min_value, "min_value")
    total_steps = _positive_int(total_steps, "total_steps")
    if (isinstance(warmup_steps, bool) or int(warmup_steps) != warmup_steps
            or not 0 <= warmup_steps < total_steps):
        raise ValueError(f"warmup_steps must be an integer in [0, total_steps={total_steps}), "
                         f"got {warmup_steps!r}")
    return optax.warmup_cosine_decay_schedule(init_value, peak_value, int(warmup_steps), total_steps,
                                              end_value=min_value)


def onecycle(peak_value: float, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
             final_div_factor: float = 1e4) -> optax.Schedule:
    """Smith & Topin's one-cycle policy: cosine warm-up from ``peak/div_factor`` to ``peak`` over
    ``pct_start`` of the steps, then cosine decay to ``peak/(div_factor·final_div_factor)``
    (the defaults are PyTorch's ``OneCycleLR``)."""
    peak_value = _nonneg(peak_value, "peak_value")
    total_steps = _positive_int(total_steps, "total_steps")
    if not 0.0 < pct_start < 1.0:
        raise ValueError(f"pct_start must be in (0, 1), got {pct_start}")
    if div_factor <= 0 or final_div_factor <= 0:
        raise ValueError("div_factor and final_div_factor must be positive")
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


constant, step, exponential, cosine, warmup_cosine, onecycle = (
    _standard_promotion(f) for f in (constant, step, exponential, cosine, warmup_cosine, onecycle))

SCHEDULES: dict[str, Callable[..., optax.Schedule]] = {
    "constant": constant,
    "step": step,
    "exponential": exponential,
    "cosine": cosine,
    "warmup_cosine": warmup_cosine,
    "onecycle": onecycle,
}


def schedule(name: str, **kwargs) -> optax.Schedule:
    """Build a schedule by name: ``schedule("cosine", init_value=0.1, total_steps=1000)``.

    Valid names: ``constant``, ``step``, ``exponential``, ``cosine``, ``warmup_cosine``,
    ``onecycle``; the keywords of each are those of the function of the same name.
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; expected one of: {', '.join(SCHEDULES)}")
    try:
        return SCHEDULES[name](**kwargs)
    except TypeError as e:  # a wrong keyword: say which ones the schedule takes
        import inspect

        params = ", ".join(inspect.signature(SCHEDULES[name]).parameters)
        raise ValueError(f"schedule {name!r} takes keywords ({params}); {e}") from None
