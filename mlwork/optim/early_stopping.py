"""Early stopping as a small pure helper (deck section 15: "stop training when validation loss
starts increasing ... patience: wait k epochs before stopping; save model at best validation").

The state is a NamedTuple of arrays, so it is a pytree the trainer checkpoints with everything
else and resumes exactly; ``update`` runs on host floats or inside ``jit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mlwork._validate import check_choice, check_int, check_real

Array = jax.Array


class EarlyStoppingState(NamedTuple):
    """The state of :func:`early_stopping`, a pytree of scalars.

    Attributes:
      best: the best value seen so far (float32; ±inf before any).
      best_epoch: the epoch it was seen at (int32; −1 before any).
      bad_epochs: epochs since the last improvement (int32).
      epoch: epochs seen (int32).
    """

    best: Array
    best_epoch: Array
    bad_epochs: Array
    epoch: Array


class EarlyStopping(NamedTuple):
    """What :func:`early_stopping` returns: a pair of pure functions and the settings.

    Attributes:
      init: ``init() -> EarlyStoppingState``.
      update: ``update(state, value) -> (state, improved, stop)``; ``improved`` and ``stop`` are
        boolean scalars.
      patience: the ``patience`` it was built with.
      min_delta: the ``min_delta`` it was built with.
      mode: ``"min"`` or ``"max"``.
    """

    init: Callable[[], EarlyStoppingState]
    update: Callable[..., tuple[EarlyStoppingState, Array, Array]]
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
    ``patience=5`` training stops at the 5th epoch in a row that did not improve.) ``update``
    is pure: it runs on host floats or inside ``jit``, and the state is checkpointed with the run.

    Args:
      patience: epochs without improvement before stopping, an integer :math:`\ge 0`.
      min_delta: the margin :math:`\delta \ge 0` an improvement must exceed.
      mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).

    Returns:
      An :class:`EarlyStopping` ``(init, update, patience, min_delta, mode)``.

    Raises:
      ValueError: for a negative or non-integer ``patience``, a negative ``min_delta`` or an
        unknown ``mode``.

    Example:
      >>> from mlwork import optim
      >>> es = optim.early_stopping(patience=2, mode="max")
      >>> state = es.init()
      >>> for acc in [0.90, 0.93, 0.92, 0.92]:
      ...     state, improved, stop = es.update(state, acc)
      ...     print(acc, bool(improved), bool(stop))
      0.9 True False
      0.93 True False
      0.92 False False
      0.92 False True
      >>> int(state.best_epoch)
      1
    """
    patience = check_int(patience, "patience", minimum=0)
    min_delta = check_real(min_delta, "min_delta", low=0.0)
    check_choice(mode, "mode", ("min", "max"))
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
