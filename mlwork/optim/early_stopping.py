"""Early stopping as a small pure helper (deck section 15: "stop training when validation loss
starts increasing ... patience: wait k epochs before stopping; save model at best validation").

The state is a NamedTuple of arrays, so it is a pytree the trainer checkpoints with everything
else and resumes exactly; ``update`` runs on host floats or inside ``jit``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class EarlyStoppingState(NamedTuple):
    """``best``: best metric so far; ``best_epoch``: when it was seen (−1 before any);
    ``bad_epochs``: epochs since the last improvement; ``epoch``: epochs seen."""

    best: Array
    best_epoch: Array
    bad_epochs: Array
    epoch: Array


class EarlyStopping(NamedTuple):
    """``init() -> state``; ``update(state, value) -> (state, improved, stop)``."""

    init: callable
    update: callable
    patience: int
    min_delta: float
    mode: str


def early_stopping(patience: int = 5, min_delta: float = 0.0, mode: str = "min") -> EarlyStopping:
    r"""Early stopping on a monitored metric.

    A value improves on the best when it is better by more than ``min_delta``:
    :math:`v < \text{best} - \delta` for ``mode="min"`` (a loss), :math:`v > \text{best} + \delta`
    for ``mode="max"`` (an accuracy). After ``patience`` consecutive epochs without improvement
    ``stop`` becomes true (``patience`` 0 or 1 stops at the first epoch that does not improve).
    A non-finite value never counts as an improvement. (Keras' and Lightning's convention: with
    ``patience=5`` training stops at the 5th epoch in a row that did not improve.)
    """
    if isinstance(patience, bool) or int(patience) != patience or patience < 0:
        raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
    if not min_delta >= 0:
        raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    sign = 1.0 if mode == "min" else -1.0

    def init() -> EarlyStoppingState:
        return EarlyStoppingState(best=jnp.asarray(sign * jnp.inf, jnp.float32),
                                  best_epoch=jnp.asarray(-1, jnp.int32),
                                  bad_epochs=jnp.asarray(0, jnp.int32),
                                  epoch=jnp.asarray(0, jnp.int32))

    def update(state: EarlyStoppingState, value) -> tuple[EarlyStoppingState, Array, Array]:
        value = jnp.asarray(value, jnp.float32)
        improved = jnp.isfinite(value) & (sign * value < sign * state.best - min_delta)
        bad = jnp.where(improved, 0, state.bad_epochs + 1).astype(jnp.int32)
        new = EarlyStoppingState(best=jnp.where(improved, value, state.best),
                                 best_epoch=jnp.where(improved, state.epoch, state.best_epoch),
                                 bad_epochs=bad, epoch=state.epoch + 1)
        return new, improved, (~improved) & (bad >= max(patience, 1))

    return EarlyStopping(init, update, int(patience), float(min_delta), mode)
