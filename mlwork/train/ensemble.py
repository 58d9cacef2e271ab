r"""A population's ensemble: the members' outputs averaged, on the device, in batches.

:func:`ensemble_predict` is the mean of the members' probabilities (softmax for classes, sigmoid
for multi-hot labels) or values; :func:`ensemble_outputs` is the same ensemble as outputs the
task's metrics read, so :func:`ensemble_metrics` scores it like one model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from mlwork.train.run import Run


def ensemble_predict(run: Run, params: Any, model_state: Any, images: jax.Array) -> jax.Array:
    r"""The population's ensemble prediction: the mean of the members' softmax outputs (classes),
    sigmoid outputs (multi-hot labels) or values (a regression).

    .. math:: \bar p(x) = \frac{1}{K} \sum_{k=1}^{K} \operatorname{softmax}(f_{\theta_k}(x))

    computed in batches of ``config.eval_batch_size``, in float32.

    Args:
      run: the population's :class:`Run` (its model, normalisation and task).
      params: the members' parameters, a leading member axis ``(K, ...)`` on every leaf.
      model_state: the members' model state, likewise (``{}`` for an MLP).
      images: the inputs ``(n, *input_shape)`` as stored (uint8 images, float features, tokens).

    Returns:
      float32 ``(n, outputs)``: class probabilities, each row summing to 1 (classes), label
      probabilities (multi-hot), or the mean values.

    Example (needs a trained population; see :func:`init_state`):

    .. code-block:: python

        probs = ensemble_predict(run, state.params, state.model_state, run.test[0])
        accuracy = float((probs.argmax(-1) == run.test[1]).mean())
    """
    return _ensemble(run, params, model_state, images)


def _member_outputs(run: Run, params: Any, model_state: Any, x: jax.Array) -> jax.Array:
    """Every member's raw outputs ``(K, B, D)`` for a batch of stored inputs."""
    from mlwork.data.device import preprocess

    def one(p, s):
        return run.model.apply({"params": p, "state": s}, preprocess(x, run.mean, run.std))[0].astype(jnp.float32)

    return jax.vmap(one)(params, model_state)


def ensemble_outputs(run: Run, params: Any, model_state: Any, images: jax.Array) -> jax.Array:
    """The ensemble's outputs as the task's metrics read them, in batches of ``config.eval_batch_size``.

    Args:
      run: the population's :class:`Run`.
      params, model_state: the members' variables, a leading member axis on every leaf.
      images: the inputs ``(n, *input_shape)`` as stored.

    Returns:
      float32 ``(n, D)``: :meth:`~mlwork.train.task.Task.ensemble_outputs` — the log of the mean
      softmax (classes), the logit of the mean sigmoid (multi-hot), the mean value (values).

    Example (needs a trained population; see :func:`init_state`):

    .. code-block:: python

        outputs = ensemble_outputs(run, *best, run.test[0])
        run.task.finalize(run.task.stats(outputs, run.test[1]), len(run.test[1]))  # the ensemble's metrics
    """
    fn = jax.jit(lambda x: run.task.ensemble_outputs(_member_outputs(run, params, model_state, x)))
    bs = run.config.eval_batch_size
    return jnp.concatenate([fn(images[i:i + bs]) for i in range(0, images.shape[0], bs)])


def _ensemble(run: Run, params: Any, model_state: Any, images: jax.Array) -> jax.Array:
    fn = jax.jit(lambda x: jnp.mean(run.task.probabilities(_member_outputs(run, params, model_state, x)), axis=0))
    bs = run.config.eval_batch_size
    return jnp.concatenate([fn(images[i:i + bs]) for i in range(0, images.shape[0], bs)])


def ensemble_metrics(run: Run, params: Any, model_state: Any, images: jax.Array, targets: jax.Array
                     ) -> dict[str, float]:
    """The ensemble's figures on a split: ``ensemble_<metric>`` for each of the task's metrics,
    then ``ensemble_loss`` (the mean per-example loss of :func:`ensemble_outputs`).

    Args:
      run: the population's :class:`~mlwork.train.Run`.
      params, model_state: the members' variables, a leading member axis on every leaf.
      images: the inputs ``(n, *input_shape)`` as stored.
      targets: their targets ``(n, ...)``.

    Returns:
      ``{"ensemble_<metric>": float, ..., "ensemble_loss": float}``: each metric finished from
      its statistics summed over the whole split (:meth:`~mlwork.train.task.Task.finalize`).

    Example (needs a trained population; see :func:`init_state`):

    .. code-block:: python

        figures = ensemble_metrics(run, *best, *run.test)
        figures["ensemble_accuracy"], figures["ensemble_loss"]
    """
    outputs = ensemble_outputs(run, params, model_state, images)
    task, n = run.task, int(targets.shape[0])
    figures = {f"ensemble_{name}": float(value)
               for name, value in task.finalize(jax.device_get(task.stats(outputs, targets)), n).items()}
    figures["ensemble_loss"] = float(np.mean(np.asarray(task.example_loss(outputs, targets))))
    return figures
