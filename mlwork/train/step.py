"""The compiled pieces of training: one step, one epoch (a ``lax.scan``), evaluation.

Randomness is a function of the state: the epoch's data order uses
``fold_in(fold_in(key, ORDER), epoch)``; the step's dropout and augmentation use
``fold_in(fold_in(key, STEP), step)``. Resuming from a checkpoint therefore replays exactly the
same stream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from mlwork.data.device import preprocess
from mlwork.nn.losses import softmax_cross_entropy
from mlwork.nn.models import Model
from mlwork.train.diagnostics.monitor import sampled_gradient_statistics
from mlwork.train.parallel import constrain_batch
from mlwork.train.state import TrainState

Array = jax.Array
ORDER, STEP = 0, 1  # fold_in tags of the two random streams


def make_train_step(model: Model, tx: optax.GradientTransformation, *, mean: float, std: float,
                    augment: bool = False, loss_fn: Callable[[Array, Array], Array] = softmax_cross_entropy,
                    mesh: Mesh | None = None, monitor_every: int = 0):
    """``train_step(state, images_u8, labels) -> (state, metrics)``: preprocess on the device,
    gradient of ``loss_fn(model(x), y)``, one Optax update. ``metrics`` has the batch ``loss`` and
    the number of ``correct`` predictions. Pure: jit it, scan it or vmap it. With a ``mesh`` the
    batch is sharded over its ``data`` axis (see :mod:`mlwork.train.parallel`). With
    ``monitor_every=k > 0`` ``metrics`` also has ``monitor``: the global and per-layer gradient
    norms on every k-th step, zeros in between (see
    :func:`mlwork.train.diagnostics.sampled_gradient_statistics`)."""

    def train_step(state: TrainState, images: Array, labels: Array) -> tuple[TrainState, dict[str, Array]]:
        images, labels = constrain_batch((images, labels), mesh)
        step_key = jax.random.fold_in(jax.random.fold_in(state.key, STEP), state.step)
        k_aug, k_dropout = jax.random.split(step_key)
        x = preprocess(images, mean, std, key=k_aug, augment_data=augment)

        def loss_and_aux(params):
            logits, new_model_state = model.apply({"params": params, "state": state.model_state}, x,
                                                  train=True, key=k_dropout)
            return loss_fn(logits, labels), (logits, new_model_state)

        (loss, (logits, new_model_state)), grads = jax.value_and_grad(loss_and_aux, has_aux=True)(
            state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        correct = jnp.sum(jnp.argmax(logits, -1) == labels)
        new_state = state._replace(step=state.step + 1, params=params, model_state=new_model_state,
                                   opt_state=opt_state)
        metrics = {"loss": loss, "correct": correct}
        if monitor_every:
            metrics["monitor"] = sampled_gradient_statistics(grads, state.step, monitor_every)
        return new_state, metrics

    return train_step


def make_train_chunk(train_step, batch_size: int, length: int | None = None, *,
                     monitor: Callable[..., dict] | None = None):
    """``train_chunk(state, images, labels) -> (state, metrics)``: ``length`` consecutive steps of
    the current epoch, from where ``state`` stands in it, as one ``lax.scan``.

    The epoch visits a seeded permutation of the data (the key is ``state``'s, folded with the
    epoch) in fixed-shape batches, the remainder dropped; there are ``n // batch_size`` steps
    per epoch, and the position in the epoch is ``state.step − state.epoch · steps_per_epoch``.
    ``length=None`` is the whole epoch from its start (:func:`make_train_epoch`). When a chunk
    ends the epoch, ``state.epoch`` advances. Splitting epochs into chunks changes nothing but
    how often control returns to the host (e.g. to answer a preemption signal).

    ``metrics``: mean ``loss``, ``loss_sum``, ``correct``, ``accuracy`` of the chunk, the per-step
    ``losses``, ``nonfinite_step`` (the global step of the first non-finite loss, −1 if none), and
    ``steps``: every per-step metric the step returned, stacked. With ``monitor`` (see
    :func:`mlwork.train.diagnostics.make_epoch_monitor`) also ``monitor``:
    ``monitor(state, steps["monitor"] or None, images, labels, epoch_done)``, computed after the
    chunk's last step in the same program.
    """

    def train_chunk(state: TrainState, images: Array, labels: Array):
        n = images.shape[0]
        steps_per_epoch = n // batch_size
        if steps_per_epoch == 0:
            raise ValueError(f"batch size {batch_size} is larger than the {n} training examples")
        size = steps_per_epoch if length is None else length
        if not 1 <= size <= steps_per_epoch:
            raise ValueError(f"a chunk of {size} steps does not fit an epoch of {steps_per_epoch}")
        order_key = jax.random.fold_in(jax.random.fold_in(state.key, ORDER), state.epoch)
        order = jax.random.permutation(order_key, n)[: steps_per_epoch * batch_size]
        order = order.reshape(steps_per_epoch, batch_size)
        if size == steps_per_epoch:
            batches = order
        else:
            position = state.step - state.epoch * steps_per_epoch
            batches = jax.lax.dynamic_slice_in_dim(order, position, size, axis=0)
        start = state.step

        def body(st, idx):
            return train_step(st, images[idx], labels[idx])

        state, m = jax.lax.scan(body, state, batches)
        bad = ~jnp.isfinite(m["loss"])
        correct = jnp.sum(m["correct"])
        metrics = {
            "loss": jnp.mean(m["loss"]),
            "loss_sum": jnp.sum(m["loss"]),
            "correct": correct,
            "accuracy": correct / (size * batch_size),
            "losses": m["loss"],
            "nonfinite_step": jnp.where(jnp.any(bad), start + jnp.argmax(bad), -1),
            "steps": m,
        }
        done = state.step - state.epoch * steps_per_epoch >= steps_per_epoch
        if monitor is not None:
            metrics["monitor"] = monitor(state, m.get("monitor"), images, labels, done)
        return state._replace(epoch=state.epoch + done.astype(state.epoch.dtype)), metrics

    return train_chunk


def make_train_epoch(train_step, batch_size: int, *, monitor: Callable[..., dict] | None = None):
    """``train_epoch(state, images, labels) -> (state, metrics)``: one pass over a seeded
    permutation of the data in fixed-shape batches (the remainder dropped), as one ``lax.scan``
    (:func:`make_train_chunk` with the whole epoch). Call it at an epoch's start."""
    return make_train_chunk(train_step, batch_size, None, monitor=monitor)


def make_evaluate(model: Model, *, mean: float, std: float, batch_size: int = 1000,
                  loss_fn: Callable[[Array, Array], Array] = softmax_cross_entropy, mesh: Mesh | None = None):
    """``evaluate(params, model_state, images, labels) -> metrics``: the whole set in fixed-size
    batches (the last padded and masked, so every example counts and nothing recompiles), in
    evaluation mode (no dropout, running BatchNorm statistics). ``metrics``: ``loss`` (mean),
    ``accuracy``, ``predictions`` (argmax per example)."""

    def evaluate(params: Any, model_state: Any, images: Array, labels: Array) -> dict[str, Array]:
        n = images.shape[0]
        n_dev = 1 if mesh is None else mesh.size
        bs = -(-min(batch_size, n) // n_dev) * n_dev  # a multiple of the device count
        n_batches = -(-n // bs)
        pad = n_batches * bs - n
        xs = jnp.concatenate([images, jnp.zeros((pad, *images.shape[1:]), images.dtype)])
        ys = jnp.concatenate([labels, jnp.zeros((pad,), labels.dtype)])
        valid = jnp.arange(n_batches * bs) < n
        xs, ys, valid = (a.reshape(n_batches, bs, *a.shape[1:]) for a in (xs, ys, valid))

        def body(carry, batch):
            x, y, v = constrain_batch(batch, mesh)
            logits, _ = model.apply({"params": params, "state": model_state}, preprocess(x, mean, std))
            per_example = jax.vmap(loss_fn)(logits[:, None], y[:, None])
            preds = jnp.argmax(logits, -1)
            loss_sum = carry[0] + jnp.sum(jnp.where(v, per_example, 0.0))
            correct = carry[1] + jnp.sum(v & (preds == y))
            return (loss_sum, correct), preds

        (loss_sum, correct), preds = jax.lax.scan(
            body, (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)), (xs, ys, valid))
        return {"loss": loss_sum / n, "accuracy": correct / n, "predictions": preds.reshape(-1)[:n]}

    return evaluate
