"""Optimizers, schedules and regularizers of deck sections 14-15, as Optax.

* :func:`optimizer` — ``sgd``, ``momentum``, ``nesterov``, ``rmsprop``, ``adam``, ``adamw``
  (+ ``lamb``, ``lion``) as Optax chains with the learning rate in the state;
* :func:`schedule` — ``constant``, ``step``, ``exponential``, ``cosine``, ``warmup_cosine``,
  ``onecycle``;
* regularizers — :func:`l2_penalty`, :func:`weight_decay`, :func:`l1_penalty`,
  :func:`l1_proximal` (an Optax transformation Optax lacks), :func:`dropout`,
  :func:`batch_norm`, :func:`early_stopping`.
"""

from mlwork.nn.layers import batch_norm, batch_norm_init, dropout
from mlwork.optim.early_stopping import EarlyStopping, EarlyStoppingState, early_stopping
from mlwork.optim.optimizers import (
    DEFAULTS,
    OPTIMIZERS,
    check_learning_rate,
    current_learning_rate,
    optimizer,
    set_hyperparams,
)
from mlwork.optim.regularizers import (
    L1ProximalState,
    decay_mask,
    l1_penalty,
    l1_proximal,
    l2_penalty,
    weight_decay,
)
from mlwork.optim.schedules import (
    SCHEDULES,
    constant,
    cosine,
    exponential,
    onecycle,
    schedule,
    step,
    warmup_cosine,
)

__all__ = [
    "DEFAULTS", "OPTIMIZERS", "SCHEDULES", "EarlyStopping", "EarlyStoppingState", "L1ProximalState",
    "batch_norm", "batch_norm_init", "check_learning_rate", "constant", "cosine", "current_learning_rate",
    "decay_mask", "dropout", "early_stopping", "exponential", "l1_penalty", "l1_proximal", "l2_penalty",
    "onecycle", "optimizer", "schedule", "set_hyperparams", "step", "warmup_cosine", "weight_decay",
]
