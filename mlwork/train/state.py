"""The training state: one pytree holding everything needed to continue a run exactly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mlwork.nn.models import Model
from mlwork.optim.early_stopping import EarlyStopping, EarlyStoppingState

Array = jax.Array


class TrainState(NamedTuple):
    """Everything a run needs to continue exactly (and what a checkpoint holds).

    Attributes:
      step: optimizer steps taken so far (int32).
      epoch: epochs completed so far (int32).
      params: the model's trainable parameters.
      model_state: non-trainable model state (BatchNorm running statistics; ``{}`` for an MLP).
      opt_state: the Optax optimizer state (with the learning rate in it).
      rng: the run's base PRNG key as raw key data (uint32); every random draw is a ``fold_in``
        of it by purpose, epoch and step, so the stream is a function of the state.
      early_stopping: best validation accuracy, its epoch, and the epochs since it improved.
    """

    step: Array
    epoch: Array
    params: Any
    model_state: Any
    opt_state: Any
    rng: Array
    early_stopping: EarlyStoppingState

    @property
    def best_metric(self) -> Array:
        """The best validation accuracy so far (−inf... before the first evaluation)."""
        return self.early_stopping.best

    @property
    def key(self) -> Array:
        return jax.random.wrap_key_data(self.rng)


def create_train_state(model: Model, tx: optax.GradientTransformation, key: Array,
                       input_shape: Sequence[int], early_stopping: EarlyStopping) -> TrainState:
    """Initialise the model and optimizer; ``key`` seeds both the parameters and the run's
    stream of data orders, dropout masks and augmentations."""
    k_init, k_run = jax.random.split(key)
    variables = model.init(k_init, tuple(input_shape))
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        epoch=jnp.zeros((), jnp.int32),
        params=params,
        model_state=variables.get("state", {}),
        opt_state=tx.init(params),
        rng=jax.random.key_data(k_run),
        early_stopping=early_stopping.init(),
    )
