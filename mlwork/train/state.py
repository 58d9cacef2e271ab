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

    For a population every leaf has a leading member axis ``(M, ...)``.

    Example:
      >>> import jax, optax
      >>> from mlwork import nn
      >>> from mlwork.optim import early_stopping
      >>> from mlwork.train import create_train_state
      >>> state = create_train_state(nn.mlp([4, 3, 2]), optax.sgd(0.1), jax.random.key(0), (4,),
      ...                            early_stopping(mode="max"))
      >>> int(state.step), int(state.epoch), state.params[0]["W"].shape, state.rng.dtype.name
      (0, 0, (3, 4), 'uint32')
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
        """The best validation accuracy so far, float32 (``-inf`` before the first evaluation)."""
        return self.early_stopping.best

    @property
    def key(self) -> Array:
        """The run's base PRNG key, ``rng`` wrapped back into a typed key (``jax.random.wrap_key_data``)."""
        return jax.random.wrap_key_data(self.rng)


def create_train_state(model: Model, tx: optax.GradientTransformation, key: Array,
                       input_shape: Sequence[int], early_stopping: EarlyStopping) -> TrainState:
    """Initialise the model and the optimizer into a fresh :class:`TrainState` (step 0, epoch 0).

    ``key`` is split in two: one half initialises the parameters, the other becomes the run's
    stream (``rng``) of data orders, dropout masks and augmentations.

    Args:
      model: an :class:`~mlwork.nn.Model` (e.g. :func:`mlwork.nn.mlp`).
      tx: the Optax optimizer; its state is initialised on the parameters.
      key: a PRNG key (``jax.random.key``).
      input_shape: one example's shape, without the batch axis, e.g. ``(28, 28)``.
      early_stopping: the early-stopping rule (:func:`mlwork.optim.early_stopping`), whose
        ``init()`` state is stored.

    Returns:
      A :class:`TrainState` with scalar int32 ``step`` and ``epoch`` at 0.

    Example:
      >>> import jax, optax
      >>> from mlwork import nn
      >>> from mlwork.optim import early_stopping
      >>> from mlwork.train import create_train_state
      >>> state = create_train_state(nn.mlp([4, 3, 2]), optax.adam(1e-3), jax.random.key(0), (4,),
      ...                            early_stopping(mode="max"))
      >>> nn.count_params({"params": state.params}), float(state.best_metric)
      (23, -inf)
    """
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
