r"""The task's registries: losses and metrics by name.

A loss is ``loss(outputs (B, D), targets) -> (B,)``, one loss per example (the step minimises
their mean); :data:`TASK_LOSSES` maps a name to one and the target kinds it fits. A built-in
metric is a :class:`Metric` of **sufficient statistics**, summed over every example of the set,
so every example counts exactly once whatever the batch size; :data:`TASK_METRICS` maps a name to
a factory ``f(data) -> Metric`` and the target kinds it fits. :math:`R^2`, for instance, is
computed from the sums :math:`\sum (y - \hat y)^2`, :math:`\sum (y - c)` and :math:`\sum (y - c)^2`
(with :math:`c` the training targets' mean, which keeps the float32 sums well conditioned):

.. math:: R^2 = 1 - \frac{\sum (y - \hat y)^2}{\sum (y - c)^2 - (\sum (y - c))^2 / n}

averaged over the outputs (scikit-learn's ``uniform_average``), never a mean of per-batch
:math:`R^2`.

A new built-in loss or metric is one entry here (the configuration's check of a loss's name and
its ``--loss`` help read :data:`TASK_LOSSES`; this module loads without JAX for them);
:func:`register_loss` and :func:`register_metric` add one from outside. :func:`~mlwork.train.task.make_task` reads the
registries (and the defaults per target kind, ``DEFAULT_LOSS``, ``DEFAULT_METRICS``,
``DEFAULT_MONITOR``) to build a run's :class:`~mlwork.train.Task`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import jax

    Array = jax.Array


class _OnFirstUse:
    """A module imported when one of its attributes is first read: the registry loads without
    JAX, so :mod:`mlwork.train.config` checks a loss's name against it while parsing a command
    line; the functions below import JAX when they first run."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


jnp, optax = _OnFirstUse("jax.numpy"), _OnFirstUse("optax")


class Metric(NamedTuple):
    """A metric as sufficient statistics: summed over a set, then finished.

    Attributes:
      stats: ``stats(outputs (B, D), targets) -> {name: (B, ...)}``, each example's contribution.
      finalize: ``finalize(sums, n) -> scalar``, the metric from the statistics summed over ``n``
        examples.
      mode: ``"max"`` (higher is better), ``"min"``, or ``None`` (unknown: a custom function).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.train.task import TASK_METRICS
      >>> from mlwork.data import from_arrays
      >>> import numpy as np
      >>> data = from_arrays(np.zeros((4, 1)), np.array([0, 1, 0, 1]))
      >>> accuracy = TASK_METRICS["accuracy"][0](data)  # (factory, the target kinds it fits)
      >>> stats = accuracy.stats(jnp.array([[2.0, 1.0], [0.0, 1.0]]), jnp.array([0, 0]))
      >>> float(accuracy.finalize({k: v.sum(0) for k, v in stats.items()}, 2)), accuracy.mode
      (0.5, 'max')
    """

    stats: Callable[[Array, Array], dict[str, Array]]
    finalize: Callable[[dict[str, Array], Any], Array]
    mode: str | None


def _flat(outputs: Array, targets: Array) -> tuple[Array, Array]:
    return outputs.reshape(outputs.shape[0], -1), targets.reshape(targets.shape[0], -1).astype(outputs.dtype)


def softmax_cross_entropy(outputs: Array, targets: Array) -> Array:
    """Per-example softmax cross-entropy (nats) of logits ``(B, C)`` and integer labels ``(B,)`` (Optax's)."""
    return optax.softmax_cross_entropy_with_integer_labels(outputs.astype(jnp.float32), targets)


def sigmoid_binary_cross_entropy(outputs: Array, targets: Array) -> Array:
    """Per-example sigmoid binary cross-entropy (nats), the mean over the ``C`` labels of ``(B, C)`` (Optax's)."""
    o, t = _flat(outputs.astype(jnp.float32), targets)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(o, t), axis=-1)


def mean_squared_error(outputs: Array, targets: Array) -> Array:
    """Per-example squared error, the mean over the outputs (Optax's ``squared_error``)."""
    o, t = _flat(outputs.astype(jnp.float32), targets)
    return jnp.mean(optax.squared_error(o, t), axis=-1)


def mean_absolute_error(outputs: Array, targets: Array) -> Array:
    """Per-example absolute error, the mean over the outputs."""
    o, t = _flat(outputs.astype(jnp.float32), targets)
    return jnp.mean(jnp.abs(o - t), axis=-1)


def huber(outputs: Array, targets: Array, delta: float = 1.0) -> Array:
    """Per-example Huber loss (quadratic within ``delta``, linear beyond), the mean over the outputs (Optax's)."""
    o, t = _flat(outputs.astype(jnp.float32), targets)
    return jnp.mean(optax.huber_loss(o, t, delta=delta), axis=-1)


#: Loss name -> (per-example function, the target kinds it fits).
TASK_LOSSES: dict[str, tuple[Callable[[Array, Array], Array], tuple[str, ...]]] = {
    "softmax_cross_entropy": (softmax_cross_entropy, ("classes",)),
    "sigmoid_binary_cross_entropy": (sigmoid_binary_cross_entropy, ("multilabel",)),
    "mse": (mean_squared_error, ("values",)),
    "mae": (mean_absolute_error, ("values",)),
    "huber": (huber, ("values",)),
}
DEFAULT_LOSS = {"classes": "softmax_cross_entropy", "multilabel": "sigmoid_binary_cross_entropy", "values": "mse"}
DEFAULT_METRICS = {"classes": ("accuracy",), "multilabel": ("accuracy",), "values": ("mse", "mae", "r2")}
DEFAULT_MONITOR = {"classes": "accuracy", "multilabel": "accuracy", "values": "loss"}


def _mean_of(key: str) -> Callable[[dict[str, Array], Any], Array]:
    return lambda sums, n: jnp.mean(sums[key]) / n


def _accuracy(data: Any) -> Metric:
    if data.target == "multilabel":  # per label: the fraction of labels right
        return Metric(lambda o, t: {"correct": jnp.mean(((o > 0) == (t > 0.5)).astype(jnp.float32), axis=-1)},
                      _mean_of("correct"), "max")
    return Metric(lambda o, t: {"correct": (jnp.argmax(o, -1) == t).astype(jnp.float32)}, _mean_of("correct"), "max")


def _top_k(k: int) -> Callable[[Any], Metric]:
    def factory(data: Any) -> Metric:
        def stats(o, t):
            true_score = jnp.take_along_axis(o, t[:, None].astype(jnp.int32), axis=-1)
            rank = jnp.sum(o > true_score, axis=-1)  # classes scored strictly above the true one
            return {"correct": (rank < k).astype(jnp.float32)}

        return Metric(stats, _mean_of("correct"), "max")

    return factory


def _error(power: int) -> Callable[[Any], Metric]:
    def factory(data: Any) -> Metric:
        def stats(o, t):
            o, t = _flat(o.astype(jnp.float32), t)
            return {"error": jnp.abs(o - t) ** power}

        return Metric(stats, _mean_of("error"), "min")

    return factory


def _rmse(data: Any) -> Metric:
    mse = _error(2)(data)
    return Metric(mse.stats, lambda sums, n: jnp.sqrt(jnp.mean(sums["error"]) / n), "min")


def _r2(data: Any) -> Metric:
    shift = jnp.asarray(data.target_mean, jnp.float32)

    def stats(o, t):
        o, t = _flat(o.astype(jnp.float32), t)
        centred = t - shift[None]
        return {"sse": (o - t) ** 2, "y": centred, "yy": centred ** 2}

    def finalize(sums, n):
        sst = sums["yy"] - sums["y"] ** 2 / n
        return jnp.mean(jnp.where(sst > 0, 1.0 - sums["sse"] / jnp.where(sst > 0, sst, 1.0), 0.0))

    return Metric(stats, finalize, "max")


#: Metric name -> (factory ``f(data) -> Metric``, the target kinds it fits). ``topK_accuracy``
#: (e.g. ``top3_accuracy``) is read as top-K accuracy.
TASK_METRICS: dict[str, tuple[Callable[[Any], Metric], tuple[str, ...]]] = {
    "accuracy": (_accuracy, ("classes", "multilabel")),
    "top5_accuracy": (_top_k(5), ("classes",)),
    "mse": (_error(2), ("values",)),
    "mae": (_error(1), ("values",)),
    "rmse": (_rmse, ("values",)),
    "r2": (_r2, ("values",)),
}


def register_loss(name: str, loss: Callable[[Array, Array], Array], targets: tuple[str, ...] = ("classes",
                                                                                                "multilabel", "values")
                  ) -> None:
    """Add a loss to :data:`TASK_LOSSES` under ``name`` (then ``TrainConfig(loss=name)`` in this process).

    Args:
      name: the registry name, a Python identifier.
      loss: ``loss(outputs (B, D), targets) -> (B,)``.
      targets: the target kinds it fits.

    Raises:
      ValueError: ``name`` is not an identifier.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.train.task import TASK_LOSSES, register_loss
      >>> register_loss("doc_l4", lambda o, t: jnp.mean((o - t[:, None]) ** 4, axis=-1), ("values",))
      >>> "doc_l4" in TASK_LOSSES
      True
    """
    if not str(name).isidentifier():
        raise ValueError(f"name must be a Python identifier; got {name!r}")
    TASK_LOSSES[name] = (loss, tuple(targets))


def register_metric(name: str, factory: Callable[[Any], Metric], targets: tuple[str, ...]) -> None:
    """Add a metric to :data:`TASK_METRICS`: ``factory(data) -> Metric`` (see :class:`Metric`).

    Args:
      name: the registry name, a Python identifier.
      factory: builds the :class:`Metric` for an :class:`~mlwork.data.ArrayDataset`.
      targets: the target kinds it fits.

    Raises:
      ValueError: ``name`` is not an identifier.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.train.task import TASK_METRICS, Metric, register_metric
      >>> max_error = Metric(lambda o, t: {"e": jnp.abs(o[:, 0] - t)}, lambda s, n: s["e"] / n, "min")
      >>> register_metric("doc_mae1", lambda data: max_error, ("values",))
      >>> "doc_mae1" in TASK_METRICS
      True
    """
    if not str(name).isidentifier():
        raise ValueError(f"name must be a Python identifier; got {name!r}")
    TASK_METRICS[name] = (factory, tuple(targets))


def _named_metric(name: str, data: Any) -> tuple[Metric, tuple[str, ...]]:
    m = re.fullmatch(r"top(\d+)_accuracy", name)
    if name not in TASK_METRICS and m and int(m[1]) >= 1:
        return _top_k(int(m[1]))(data), ("classes",)
    factory, kinds = TASK_METRICS[name]
    return factory(data), kinds


def _custom_metric(fn: Callable[[Array, Array], Array]) -> Metric:
    return Metric(lambda o, t: {"value": fn(o, t)}, _mean_of("value"), None)
