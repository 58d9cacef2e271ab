"""Optimizers, schedules and regularizers of deck sections 14-15, as Optax.

* :func:`optimizer` — ``sgd``, ``momentum``, ``nesterov``, ``rmsprop``, ``adam``, ``adamw``
  (+ ``lamb``, ``lion``) as Optax chains with the learning rate in the state;
* :func:`schedule` — ``constant``, ``step``, ``exponential`` (:func:`exponential_decay`),
  ``cosine``, ``warmup_cosine``, ``onecycle``;
* regularizers — :func:`l2_penalty`, :func:`weight_decay`, :func:`l1_penalty`,
  :func:`l1_proximal` (an Optax transformation Optax lacks), :func:`early_stopping`.

Dropout and batch normalisation, the deck's other regularizers (section 15), are layers: they
live in :mod:`mlwork.nn` (:func:`mlwork.nn.dropout`, :func:`mlwork.nn.batch_norm`, or
``nn.mlp(..., dropout=0.2, batch_norm=True)``).
"""

import warnings as _warnings

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
    exponential_decay,
    onecycle,
    schedule,
    step,
    warmup_cosine,
)

__all__ = [
    "DEFAULTS", "OPTIMIZERS", "SCHEDULES", "EarlyStopping", "EarlyStoppingState", "L1ProximalState",
    "check_learning_rate", "constant", "cosine", "current_learning_rate", "decay_mask", "early_stopping",
    "exponential_decay", "l1_penalty", "l1_proximal", "l2_penalty", "onecycle", "optimizer", "schedule",
    "set_hyperparams", "step", "warmup_cosine", "weight_decay",
]

# The old name of exponential_decay works for one more version, with a DeprecationWarning.
# Dropout and batch normalisation moved out (to mlwork.nn) without an alias: optim depends on
# nothing in nn, and the error says where they are.
_NN_LAYERS = ("dropout", "batch_norm", "batch_norm_init")


def __getattr__(name: str):
    if name == "exponential":
        _warnings.warn("mlwork.optim.exponential is deprecated and will be removed in 0.3; use "
                       "mlwork.optim.exponential_decay", DeprecationWarning, stacklevel=2)
        return exponential_decay
    if name in _NN_LAYERS:
        raise AttributeError(f"module 'mlwork.optim' has no attribute {name!r}: it is a layer, "
                             f"mlwork.nn.{name}")
    raise AttributeError(f"module 'mlwork.optim' has no attribute {name!r}")
