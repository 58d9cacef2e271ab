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
                    mesh: Mesh | None = None, monitor_every: int = 0,
                    stats_fn: Callable[[Array, Array], Any] | None = None):
    r"""``train_step(state, images_u8, labels) -> (state, metrics)``: one optimizer step on one batch.

    The batch is preprocessed on the device (:func:`mlwork.data.preprocess`: augmentation when
    ``augment``, then :math:`(x/255 - \mu)/\sigma`), then

    .. math:: L(\theta) = \operatorname{loss\_fn}(f_\theta(x), y), \qquad
              (u, s') = \operatorname{tx.update}(\nabla_\theta L, s, \theta), \qquad \theta' = \theta + u

    with dropout on (``train=True``). The step's randomness is
    ``fold_in(fold_in(state.key, STEP), state.step)``, so it is a function of the state. Pure: jit
    it, scan it or vmap it.

    Args:
      model: the :class:`~mlwork.nn.Model`.
      tx: the Optax optimizer.
      mean: :math:`\mu`, the pixel mean on ``[0, 1]`` images.
      std: :math:`\sigma`, the pixel standard deviation, positive.
      augment: random shifts and rotations (:func:`mlwork.data.augment`).
      loss_fn: ``loss_fn(logits (B, C), labels (B,)) -> scalar``, the batch's mean loss; default
        softmax cross-entropy (nats).
      mesh: shard the batch over the mesh's ``data`` axis (:mod:`mlwork.train.parallel`);
        ``None``: no constraint.
      monitor_every: ``k > 0`` adds ``metrics["monitor"]``: the global and per-layer gradient
        norms every k-th step, zeros in between
        (:func:`mlwork.train.diagnostics.sampled_gradient_statistics`).
      stats_fn: ``stats_fn(outputs, targets) -> pytree``, the batch's summed metric statistics
        (:meth:`mlwork.train.task.Task.stats`), returned as ``metrics["stats"]`` instead of
        ``correct``; ``None``: the count of correct argmax predictions.

    Returns:
      ``train_step``. Its arguments: a :class:`~mlwork.train.TrainState`, a batch of inputs
      ``(B, *input_shape)`` (uint8 images, float features or integer tokens) and targets; its
      ``metrics``: the batch's float32 ``loss``, the int32 number of ``correct`` predictions (or
      ``stats``) (and ``monitor``). The new state has ``step + 1``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from mlwork import nn
      >>> from mlwork.optim import early_stopping
      >>> from mlwork.train import create_train_state, make_train_step
      >>> model, tx = nn.mlp([4, 2]), optax.sgd(0.1)
      >>> state = create_train_state(model, tx, jax.random.key(0), (2, 2), early_stopping(mode="max"))
      >>> step = jax.jit(make_train_step(model, tx, mean=0.0, std=1.0))
      >>> images, labels = jnp.zeros((3, 2, 2), jnp.uint8), jnp.array([0, 1, 0])
      >>> new_state, metrics = step(state, images, labels)
      >>> int(new_state.step), metrics["loss"].dtype.name, metrics["correct"].shape
      (1, 'float32', ())
    """

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
        new_state = state._replace(step=state.step + 1, params=params, model_state=new_model_state,
                                   opt_state=opt_state)
        if stats_fn is None:
            metrics = {"loss": loss, "correct": jnp.sum(jnp.argmax(logits, -1) == labels)}
        else:
            metrics = {"loss": loss, "stats": stats_fn(logits, labels)}
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

    ``metrics``: mean ``loss``, ``loss_sum``, ``correct``, ``accuracy`` of the chunk (or, with a
    step's ``stats_fn``, ``stats``: its statistics summed over the chunk's steps), the per-step
    ``losses``, ``nonfinite_step`` (the global step of the first non-finite loss, −1 if none), and
    ``steps``: every per-step metric the step returned, stacked. With ``monitor`` (see
    :func:`mlwork.train.diagnostics.make_epoch_monitor`) also ``monitor``:
    ``monitor(state, steps["monitor"] or None, images, labels, epoch_done)``, computed after the
    chunk's last step in the same program.

    Args:
      train_step: from :func:`make_train_step`.
      batch_size: examples per step, >= 1.
      length: steps in the chunk, in ``[1, steps_per_epoch]``; ``None``: the whole epoch.
      monitor: the end-of-chunk hook above, or ``None``.

    Returns:
      ``train_chunk``, taking the whole training split: uint8 images ``(n, *input_shape)`` and
      integer labels ``(n,)``.

    Raises:
      ValueError: (when ``train_chunk`` is traced) ``batch_size > n``, or ``length`` outside
        ``[1, n // batch_size]``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from mlwork import nn
      >>> from mlwork.optim import early_stopping
      >>> from mlwork.train import create_train_state, make_train_chunk, make_train_step
      >>> model, tx = nn.mlp([4, 2]), optax.sgd(0.1)
      >>> state = create_train_state(model, tx, jax.random.key(0), (2, 2), early_stopping(mode="max"))
      >>> chunk = jax.jit(make_train_chunk(make_train_step(model, tx, mean=0.0, std=1.0), batch_size=2, length=2))
      >>> images, labels = jnp.zeros((6, 2, 2), jnp.uint8), jnp.array([0, 1, 0, 1, 0, 1])
      >>> state, metrics = chunk(state, images, labels)  # steps 1-2 of a 3-step epoch
      >>> int(state.step), int(state.epoch), metrics["losses"].shape, int(metrics["nonfinite_step"])
      (2, 0, (2,), -1)
    """

    def train_chunk(state: TrainState, images: Array, labels: Array):
        n = images.shape[0]
        steps_per_epoch = n // batch_size
        if steps_per_epoch == 0:
            raise ValueError(f"batch size {batch_size} is larger than the {n} training examples")
        size = steps_per_epoch if length is None else length
        if not 1 <= size <= steps_per_epoch:
            raise ValueError(f"a chunk of {size} steps does not fit an epoch of {steps_per_epoch}")
        order = epoch_order(state.key, state.epoch, n, batch_size)
        if size == steps_per_epoch:
            batches = order
        else:
            position = state.step - state.epoch * steps_per_epoch
            batches = jax.lax.dynamic_slice_in_dim(order, position, size, axis=0)
        start = state.step

        def body(st, idx):
            return train_step(st, images[idx], labels[idx])

        state, m = jax.lax.scan(body, state, batches)
        return _end_chunk(state, m, start, size, batch_size, steps_per_epoch, monitor, images, labels)

    return train_chunk


def epoch_order(key: Array, epoch: Array | int, n: int, batch_size: int) -> Array:
    """The example indices of an epoch's steps, ``(n // batch_size, batch_size)`` int32: a
    permutation of ``range(n)`` drawn with ``fold_in(fold_in(key, ORDER), epoch)``, the remainder
    dropped. The in-memory chunks gather their batches with it on the device; the streamed input
    path (:mod:`mlwork.data.stream`) reads the same rows from disk, so both visit the same batches.

    Args:
      key: the run's base key (``state.key``).
      epoch: the epoch, 0-based (``state.epoch``).
      n: training examples, >= ``batch_size``.
      batch_size: examples per step.

    Returns:
      int32 ``(n // batch_size, batch_size)``.

    Example:
      >>> import jax
      >>> from mlwork.train.step import epoch_order
      >>> order = epoch_order(jax.random.key(0), 0, 10, 3)
      >>> order.shape, len(set(order.ravel().tolist()))  # 3 steps of 3, the tenth example dropped
      ((3, 3), 9)
    """
    steps_per_epoch = n // batch_size
    order_key = jax.random.fold_in(jax.random.fold_in(key, ORDER), epoch)
    order = jax.random.permutation(order_key, n)[: steps_per_epoch * batch_size]
    return order.reshape(steps_per_epoch, batch_size)


def _end_chunk(state, m, start, size, batch_size, steps_per_epoch, monitor, images, labels):
    """A chunk's metrics from its scanned steps ``m``, and the epoch advanced when it ended."""
    bad = ~jnp.isfinite(m["loss"])
    metrics = {
        "loss": jnp.mean(m["loss"]),
        "loss_sum": jnp.sum(m["loss"]),
        "losses": m["loss"],
        "nonfinite_step": jnp.where(jnp.any(bad), start + jnp.argmax(bad), -1),
        "steps": m,
    }
    if "correct" in m:
        metrics["correct"] = jnp.sum(m["correct"])
        metrics["accuracy"] = metrics["correct"] / (size * batch_size)
    if "stats" in m:
        metrics["stats"] = jax.tree.map(lambda x: jnp.sum(x, axis=0), m["stats"])
    done = state.step - state.epoch * steps_per_epoch >= steps_per_epoch
    if monitor is not None:
        metrics["monitor"] = monitor(state, m.get("monitor"), images, labels, done)
    return state._replace(epoch=state.epoch + done.astype(state.epoch.dtype)), metrics


def make_streamed_chunk(train_step, steps_per_epoch: int, *, monitor: Callable[..., dict] | None = None):
    """``train_chunk(state, xs, ys, probe_x, probe_y) -> (state, metrics)``: the steps of a chunk
    whose batches come from the host (the streamed input path), as one ``lax.scan``.

    The same steps as :func:`make_train_chunk`'s when ``xs[i]`` holds the rows
    ``epoch_order(...)[position + i]`` (what :mod:`mlwork.data.stream` reads), with the same
    metrics; the epoch advances when the chunk ends it. ``probe_x``/``probe_y``: the training
    split's first examples, for ``monitor`` (whose probe is the first ``PROBE_SIZE`` examples).

    Args:
      train_step: from :func:`make_train_step`.
      steps_per_epoch: optimizer steps per epoch, >= 1.
      monitor: the end-of-chunk hook of :func:`make_train_chunk`, or ``None``.

    Returns:
      ``train_chunk``: ``xs`` ``(L, B, *input_shape)``, ``ys`` ``(L, B, ...)``, one batch per step.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from mlwork import nn
      >>> from mlwork.optim import early_stopping
      >>> from mlwork.train import create_train_state, make_train_step
      >>> from mlwork.train.step import make_streamed_chunk
      >>> model, tx = nn.mlp([4, 2]), optax.sgd(0.1)
      >>> state = create_train_state(model, tx, jax.random.key(0), (2, 2), early_stopping(mode="max"))
      >>> chunk = jax.jit(make_streamed_chunk(make_train_step(model, tx, mean=0.0, std=1.0), steps_per_epoch=2))
      >>> xs, ys = jnp.zeros((2, 3, 2, 2), jnp.uint8), jnp.zeros((2, 3), jnp.int32)
      >>> state, metrics = chunk(state, xs, ys, xs[0], ys[0])  # a whole 2-step epoch of 3-example batches
      >>> int(state.step), int(state.epoch), metrics["losses"].shape
      (2, 1, (2,))
    """

    def train_chunk(state: TrainState, xs: Array, ys: Array, probe_x: Array, probe_y: Array):
        start = state.step
        state, m = jax.lax.scan(lambda st, batch: train_step(st, *batch), state, (xs, ys))
        return _end_chunk(state, m, start, xs.shape[0], xs.shape[1], steps_per_epoch, monitor, probe_x, probe_y)

    return train_chunk


def make_train_epoch(train_step, batch_size: int, *, monitor: Callable[..., dict] | None = None):
    """``train_epoch(state, images, labels) -> (state, metrics)``: one whole epoch as one ``lax.scan``.

    One pass over a seeded permutation of the data in fixed-shape batches (the remainder
    dropped): :func:`make_train_chunk` with the whole epoch. Call it at an epoch's start.

    Args:
      train_step: from :func:`make_train_step`.
      batch_size: examples per step, >= 1.
      monitor: the end-of-epoch hook of :func:`make_train_chunk`, or ``None``.

    Returns:
      ``train_epoch``; ``metrics`` as :func:`make_train_chunk`'s. The new state has
      ``step + n // batch_size`` and ``epoch + 1``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from mlwork import nn
      >>> from mlwork.optim import early_stopping
      >>> from mlwork.train import create_train_state, make_train_epoch, make_train_step
      >>> model, tx = nn.mlp([4, 2]), optax.sgd(0.1)
      >>> state = create_train_state(model, tx, jax.random.key(0), (2, 2), early_stopping(mode="max"))
      >>> epoch = jax.jit(make_train_epoch(make_train_step(model, tx, mean=0.0, std=1.0), batch_size=2))
      >>> images, labels = jnp.zeros((5, 2, 2), jnp.uint8), jnp.array([0, 1, 0, 1, 0])
      >>> state, metrics = epoch(state, images, labels)  # 5 // 2 steps, the fifth example dropped
      >>> int(state.step), int(state.epoch), int(metrics["correct"]) <= 4
      (2, 1, True)
    """
    return make_train_chunk(train_step, batch_size, None, monitor=monitor)


def make_evaluate(model: Model, *, mean: float, std: float, batch_size: int = 1000,
                  loss_fn: Callable[[Array, Array], Array] = softmax_cross_entropy, mesh: Mesh | None = None,
                  task: Any = None):
    r"""``evaluate(params, model_state, images, labels) -> metrics``: the whole set in evaluation mode.

    Evaluation mode: no dropout, BatchNorm's running statistics. The set goes through in
    fixed-size batches, the last padded and masked, so every example counts and nothing
    recompiles:

    .. math:: \text{loss} = \frac1n \sum_{i=1}^{n} \operatorname{loss\_fn}(f(x_i), y_i), \qquad
              \text{accuracy} = \frac1n \sum_{i=1}^{n} [\arg\max f(x_i) = y_i]

    Args:
      model: the :class:`~mlwork.nn.Model`.
      mean: the pixel mean on ``[0, 1]`` images.
      std: the pixel standard deviation, positive.
      batch_size: examples per batch (rounded up to a multiple of the mesh's devices).
      loss_fn: ``loss_fn(logits (B, C), labels (B,)) -> scalar``; default softmax cross-entropy
        (nats).
      mesh: shard each batch over the mesh's ``data`` axis; ``None``: no constraint.
      task: a :class:`~mlwork.train.task.Task`: its per-example loss replaces ``loss_fn``, and every
        one of its metrics is computed from sufficient statistics summed over the whole set
        (each example counted once whatever ``batch_size``); ``predictions`` are the task's.

    Returns:
      ``evaluate``, pure (jit it). Its arguments: the parameters and model state, inputs
      ``(n, *input_shape)`` (uint8 images, float features, integer tokens), targets; its
      ``metrics``: float32 ``loss`` and ``accuracy`` (a fraction) — or, with ``task``, each of its
      metrics by name — and ``predictions`` (``(n,)``, the argmax per example; with ``task``,
      :meth:`~mlwork.train.task.Task.predictions`).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork import nn
      >>> from mlwork.train import make_evaluate
      >>> params = [{"W": jnp.eye(2, 4), "b": jnp.zeros(2)}]  # logits: the first two pixels
      >>> evaluate = jax.jit(make_evaluate(nn.mlp([4, 2]), mean=0.0, std=1.0, batch_size=2))
      >>> images = jnp.array([[[255, 0], [0, 0]], [[0, 255], [0, 0]], [[0, 255], [0, 0]]], jnp.uint8)
      >>> metrics = evaluate(params, {}, images, jnp.array([0, 1, 0]))
      >>> metrics["predictions"].tolist(), round(float(metrics["accuracy"]), 4)
      ([0, 1, 1], 0.6667)
      >>> round(float(metrics["loss"]), 4)  # (2 log(1 + 1/e) + log(1 + e)) / 3
      0.6466
    """

    def evaluate(params: Any, model_state: Any, images: Array, labels: Array) -> dict[str, Array]:
        n = images.shape[0]
        n_dev = 1 if mesh is None else mesh.size
        bs = -(-min(batch_size, n) // n_dev) * n_dev  # a multiple of the device count
        n_batches = -(-n // bs)
        pad = n_batches * bs - n
        xs = jnp.concatenate([images, jnp.zeros((pad, *images.shape[1:]), images.dtype)])
        valid = jnp.arange(n_batches * bs) < n

        if task is not None:
            ys = jnp.concatenate([labels, jnp.zeros((pad, *labels.shape[1:]), labels.dtype)])
            xs, ys, valid = (a.reshape(n_batches, bs, *a.shape[1:]) for a in (xs, ys, valid))

            def task_body(carry, batch):
                x, y, v = constrain_batch(batch, mesh)
                outputs, _ = model.apply({"params": params, "state": model_state}, preprocess(x, mean, std))
                loss_sum = carry[0] + jnp.sum(jnp.where(v, task.example_loss(outputs, y), 0.0))
                stats = jax.tree.map(jnp.add, carry[1], task.stats(outputs, y, v))
                return (loss_sum, stats), task.predictions(outputs)

            zero = jax.eval_shape(lambda: task.stats(
                model.apply({"params": params, "state": model_state}, preprocess(xs[0], mean, std))[0], ys[0]))
            zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), zero)
            (loss_sum, stats), preds = jax.lax.scan(task_body, (jnp.zeros((), jnp.float32), zero), (xs, ys, valid))
            return {"loss": loss_sum / n, **task.finalize(stats, n),
                    "predictions": preds.reshape(-1, *preds.shape[2:])[:n]}
        ys = jnp.concatenate([labels, jnp.zeros((pad,), labels.dtype)])
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
