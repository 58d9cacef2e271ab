r"""The task of a run: its loss, its metrics and the metric that decides what "best" means.

Losses and metrics are found by name in registries (:data:`TASK_LOSSES`, :data:`TASK_METRICS`,
in :mod:`mlwork.train.task_registry`; add your own with :func:`register_loss` /
:func:`register_metric`), by an import string ``package.module:function``, or passed as
functions:

* a loss is ``loss(outputs (B, D), targets) -> (B,)``, one loss per example (the step minimises
  their mean);
* a metric is ``metric(outputs (B, D), targets) -> (B,)``, one value per example, averaged over
  the evaluation set; a built-in metric is a :class:`Metric` of sufficient statistics, summed
  over every example of the set, so every example counts exactly once whatever the batch size.

**Values are learnt standardised.** For a regression the model's outputs :math:`o` stand for
:math:`(y - \mu_y) / \sigma_y` (the training targets' mean and standard deviation per output):
the loss compares :math:`o` with the standardised targets (so its scale, and a learning rate
that suits it, do not depend on the targets' units), while the metrics, ``predict_run`` and the
plots use :math:`\hat y = \mu_y + \sigma_y o`, in the targets' own units.

The targets' kind (:data:`mlwork.data.TARGETS`) chooses the defaults: class labels train with
softmax cross-entropy and monitor ``accuracy`` (``max``); multi-hot labels with sigmoid binary
cross-entropy and ``accuracy`` (per label); values with the squared error, metrics ``mse``,
``mae``, ``r2``, monitoring ``loss`` (``min``).

The registries' names are re-exported here, so ``from mlwork.train.task import TASK_LOSSES``
keeps working.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mlwork.train.errors import RunError
from mlwork.train.task_registry import (
    DEFAULT_LOSS,
    DEFAULT_METRICS,
    DEFAULT_MONITOR,
    TASK_LOSSES,
    TASK_METRICS,
    Metric,
    _custom_metric,
    _named_metric,
    huber,
    mean_absolute_error,
    mean_squared_error,
    register_loss,
    register_metric,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
)

__all__ = ["DEFAULT_LOSS", "DEFAULT_METRICS", "DEFAULT_MONITOR", "TASKS", "TASK_LOSSES", "TASK_METRICS", "Metric",
           "Task", "huber", "is_import_string", "make_task", "mean_absolute_error", "mean_squared_error",
           "register_loss", "register_metric", "resolve", "sigmoid_binary_cross_entropy", "softmax_cross_entropy"]

Array = jax.Array
#: The kinds of task (the command line's ``--task``) and the target kinds each takes.
TASKS = {"classification": ("classes", "multilabel"), "regression": ("values",)}
_IMPORT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_import_string(text: Any) -> bool:
    """Whether ``text`` reads ``package.module:attribute``.

    Example:
      >>> from mlwork.train.task import is_import_string
      >>> is_import_string("my_pkg.models:small_cnn"), is_import_string("mlp")
      (True, False)
    """
    return isinstance(text, str) and bool(_IMPORT.match(text))


def resolve(spec: str, what: str) -> Any:
    """The object an import string ``package.module:attribute`` names.

    Args:
      spec: the import string.
      what: the argument it came from, for the error message (e.g. ``"model"``).

    Returns:
      The object.

    Raises:
      RunError: the module cannot be imported or lacks the attribute (one line).

    Example:
      >>> from mlwork.train.task import resolve
      >>> resolve("math:pi", "value")
      3.141592653589793
    """
    module_name, _, attribute = spec.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's module's
        first = str(e).splitlines()[0] if str(e) else ""
        raise RunError(f"{what} {spec!r} cannot be imported: {type(e).__name__}: {first}") from None
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise RunError(f"{what} {spec!r}: module {module_name!r} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    return obj


class Task(NamedTuple):
    """A run's task (from :func:`make_task`).

    Attributes:
      kind: the targets' kind (:data:`mlwork.data.TARGETS`).
      loss_name: the loss's name (or import string, or ``"custom"``).
      loss: ``loss(outputs, targets) -> (B,)``.
      metrics: name -> :class:`Metric`, in order.
      monitor: the metric that chooses the best checkpoint and drives early stopping (``"loss"`` or
        a name in ``metrics``), on the validation split.
      mode: ``"max"`` or ``"min"``: which way ``monitor`` improves.
      output_size: the model's outputs per example.
      target_shape: one target's shape.
      shift, scale: values only: the training targets' mean and standard deviation per output,
        float32 ``(output_size,)`` (``None`` otherwise); see the module docstring.
    """

    kind: str
    loss_name: str
    loss: Callable[[Array, Array], Array]
    metrics: dict[str, Metric]
    monitor: str
    mode: str
    output_size: int
    target_shape: tuple[int, ...]
    shift: Any = None
    scale: Any = None

    def to_units(self, outputs: Array) -> Array:
        r"""Outputs in the targets' units: :math:`\mu_y + \sigma_y o` for values; as they are otherwise."""
        if self.shift is None:
            return outputs
        o = outputs.astype(jnp.float32).reshape(outputs.shape[0], -1)
        return o * jnp.asarray(self.scale)[None] + jnp.asarray(self.shift)[None]

    def standardize(self, targets: Array) -> Array:
        r"""Targets as the loss sees them: :math:`(y - \mu_y) / \sigma_y` for values, ``(B, D)``;
        as they are otherwise."""
        if self.shift is None:
            return targets
        t = targets.astype(jnp.float32).reshape(targets.shape[0], -1)
        return (t - jnp.asarray(self.shift)[None]) * (1.0 / jnp.asarray(self.scale))[None]

    def example_loss(self, outputs: Array, targets: Array) -> Array:
        """The per-example losses, ``(B,)`` (on standardised targets for values)."""
        return self.loss(outputs, self.standardize(targets))

    def batch_loss(self, outputs: Array, targets: Array) -> Array:
        """The mean of the per-example losses over the batch (what the step minimises)."""
        return jnp.mean(self.example_loss(outputs, targets))

    def stats(self, outputs: Array, targets: Array, valid: Array | None = None) -> dict[str, dict[str, Array]]:
        """Every metric's sufficient statistics summed over the batch (over ``valid`` examples only),
        the outputs in the targets' units."""
        out = {}
        outputs = self.to_units(outputs)
        for name, metric in self.metrics.items():
            per_example = metric.stats(outputs, targets)
            if valid is not None:
                per_example = {k: jnp.where(valid.reshape((-1,) + (1,) * (v.ndim - 1)), v, 0) for k, v in
                               per_example.items()}
            out[name] = {k: jnp.sum(v.astype(jnp.float32), axis=0) for k, v in per_example.items()}
        return out

    def finalize(self, sums: Mapping[str, Mapping[str, Any]], n: Any) -> dict[str, Any]:
        """Every metric from its summed statistics over ``n`` examples."""
        return {name: metric.finalize({k: jnp.asarray(v) for k, v in sums[name].items()}, n)
                for name, metric in self.metrics.items()}

    def predictions(self, outputs: Array) -> Array:
        """Per-example predictions for reports: the class (argmax), the multi-hot labels, or the values."""
        if self.kind == "classes":
            return jnp.argmax(outputs, -1)
        if self.kind == "multilabel":
            return (outputs > 0).astype(jnp.int32)
        return self.to_units(outputs).reshape((outputs.shape[0], *self.target_shape))

    def probabilities(self, outputs: Array) -> Array:
        """What ``predict_run`` returns: softmax (classes), sigmoid (multi-hot) or the values (float32)."""
        outputs = outputs.astype(jnp.float32)
        if self.kind == "classes":
            return jax.nn.softmax(outputs, axis=-1)
        if self.kind == "multilabel":
            return jax.nn.sigmoid(outputs)
        return self.to_units(outputs)

    def ensemble_outputs(self, member_outputs: Array) -> Array:
        """Members' outputs ``(K, B, D)`` -> the ensemble's, as outputs the metrics read: the log of the
        mean softmax (classes), the logit of the mean sigmoid (multi-hot), the mean value."""
        if self.kind == "values":
            return jnp.mean(member_outputs.astype(jnp.float32), axis=0)
        p = jnp.mean(self.probabilities(member_outputs), axis=0)
        tiny = jnp.finfo(jnp.float32).tiny
        if self.kind == "classes":
            return jnp.log(jnp.maximum(p, tiny))
        return jnp.log(jnp.maximum(p, tiny)) - jnp.log(jnp.maximum(1.0 - p, tiny))


def _check_per_example(fn: Callable[[Array, Array], Array], what: str, name: str, data: Any, output_size: int) -> None:
    """A user's loss or metric must map ``(B, output_size)`` float32 outputs and ``(B, ...)``
    targets to ``(B,)`` per-example values: checked abstractly (``jax.eval_shape``, nothing runs),
    with ``B`` unlike every other axis so a mean over the wrong axis shows."""
    target_shape = tuple(data.y_train.shape[1:])
    b = max((output_size, *target_shape)) + 1
    outputs = jax.ShapeDtypeStruct((b, output_size), jnp.float32)
    targets = jax.ShapeDtypeStruct((b, *target_shape), data.y_train.dtype)
    given = f"outputs {outputs.shape} float32 and targets {targets.shape} {targets.dtype.name}"
    try:
        out = jax.eval_shape(fn, outputs, targets)
    except Exception as e:  # noqa: BLE001 - a user's function: any failure is a refusal
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise RunError(f"{what} {name!r} failed on {given}: {type(e).__name__}: {reason}") from None
    shape = getattr(out, "shape", None)
    if shape is None or tuple(shape) != (b,) or not jnp.issubdtype(out.dtype, jnp.floating):
        got = f"shape {tuple(shape)} {out.dtype}" if shape is not None else type(out).__name__
        raise RunError(f"{what} {name!r} must return one float per example, shape ({b},) for {given}; got {got}")


def make_task(config: Any, data: Any, *, loss: Callable[[Array, Array], Array] | None = None,
              metrics: Mapping[str, Callable[[Array, Array], Array]] | Sequence[Callable] | None = None) -> Task:
    """The :class:`Task` of ``config`` for ``data``: loss, metrics, monitor and mode, checked together.

    Args:
      config: a :class:`~mlwork.train.TrainConfig` (``task``, ``loss``, ``metrics``,
        ``monitor_metric``, ``monitor_mode``).
      data: an :class:`~mlwork.data.ArrayDataset` (its target kind, shapes, training target mean).
      loss: a loss function to use instead of ``config.loss``.
      metrics: extra metrics as functions ``name -> metric(outputs, targets) -> (B,)``, or a list
        of such functions, each named by its ``__name__``.

    Returns:
      The :class:`Task`.

    Raises:
      RunError: one line: a ``task`` the targets do not fit, a loss or metric unknown or unfit
        for the targets (a user's function that fails on, or does not return one float per
        example of, ``(B, output_size)`` outputs and the targets), a ``topK_accuracy`` with ``K``
        not below the classes, a monitor that is not among the metrics, a mode that contradicts the
        monitored metric's, or a custom monitored metric without a mode.

    Example:
      >>> import numpy as np
      >>> from mlwork.data import from_arrays
      >>> from mlwork.train import RunError, TrainConfig
      >>> from mlwork.train.task import make_task
      >>> data = from_arrays(np.zeros((4, 2)), np.array([0.5, 1.0, 1.5, 2.0]))
      >>> task = make_task(TrainConfig(), data)
      >>> task.kind, task.loss_name, list(task.metrics), task.monitor, task.mode
      ('values', 'mse', ['mse', 'mae', 'r2'], 'loss', 'min')
      >>> try:
      ...     make_task(TrainConfig(loss="softmax_cross_entropy"), data)
      ... except RunError as e:
      ...     print(e)  # doctest: +ELLIPSIS
      loss 'softmax_cross_entropy' is for class labels; the targets are values (use mse, ...)
    """
    kind = data.target
    metrics = _metric_functions(metrics)
    if config.task is not None and kind not in TASKS[config.task]:
        raise RunError(f"task {config.task!r} needs {' or '.join(_WORDS[k] for k in TASKS[config.task])} as "
                       f"targets; the data hold {_WORDS[kind]}{_multi_hot_hint(kind, TASKS[config.task])}")
    if loss is not None:
        loss_name, loss_fn = getattr(loss, "__name__", "custom"), loss
    else:
        loss_name = config.loss or DEFAULT_LOSS[kind]
        if is_import_string(loss_name):
            loss_fn = resolve(loss_name, "loss")
            if not callable(loss_fn):
                raise RunError(f"loss {loss_name!r} must name a function loss(outputs, targets) -> per-example losses")
        elif loss_name not in TASK_LOSSES:
            raise RunError(f"loss must be one of {', '.join(TASK_LOSSES)} or package.module:function; "
                           f"got {loss_name!r}")
        else:
            loss_fn, kinds = TASK_LOSSES[loss_name]
            if kind not in kinds:
                fits = [n for n, (_, k) in TASK_LOSSES.items() if kind in k]
                raise RunError(f"loss {loss_name!r} is for {' or '.join(_WORDS[k] for k in kinds)}; the targets are "
                               f"{_WORDS[kind]} (use {', '.join(fits)}){_multi_hot_hint(kind, kinds)}")
    names = [n.strip() for n in config.metrics.split(",") if n.strip()] if config.metrics else \
        list(DEFAULT_METRICS[kind])
    built: dict[str, Metric] = {}
    for name in names:
        if name == "loss":  # always reported
            continue
        if is_import_string(name):
            fn = resolve(name, "metric")
            built[name.rpartition(":")[2]] = _custom_metric(fn)
            continue
        top = re.fullmatch(r"top(\d+)_accuracy", name)
        if name not in TASK_METRICS and not top:
            raise RunError(f"metrics must be names among {', '.join(TASK_METRICS)} (or topK_accuracy, or "
                           f"package.module:function); got {name!r}")
        if top and int(top[1]) < 1:
            raise RunError(f"metric {name!r} needs k of at least 1 (topK_accuracy: the true class among the K "
                           "highest outputs)")
        metric, kinds = _named_metric(name, data)
        if kind not in kinds:
            raise RunError(f"metric {name!r} is for {' or '.join(_WORDS[k] for k in kinds)}; the targets are "
                           f"{_WORDS[kind]}")
        if top and int(top[1]) >= data.output_size:
            raise RunError(f"metric {name!r} needs k below the number of classes ({data.output_size}); it would "
                           "always be 1")
        built[name] = metric
    for name, fn in (metrics or {}).items():
        built[name] = fn if isinstance(fn, Metric) else _custom_metric(fn)
    monitor = config.monitor_metric or DEFAULT_MONITOR[kind]
    if monitor != "loss" and monitor not in built and config.monitor_metric is None:
        raise RunError(f"monitor_metric defaults to {monitor!r} for {_WORDS[kind]}, which the metrics {sorted(built)} "
                       "leave out; add it to the metrics or choose monitor_metric (one of them, or 'loss')")
    if monitor != "loss" and monitor not in built:
        raise RunError(f"monitor_metric must be 'loss' or one of the metrics {sorted(built)}; got {monitor!r}")
    natural = "min" if monitor == "loss" else built[monitor].mode
    mode = config.monitor_mode or natural
    if mode is None:
        raise RunError(f"monitor_mode must be given (min or max) for the custom metric {monitor!r}")
    if natural is not None and mode != natural:
        raise RunError(f"monitor_mode must be {natural!r} for {monitor!r} (it improves that way); got {mode!r}")
    output_size = data.output_size
    if loss is not None or is_import_string(loss_name):
        _check_per_example(loss_fn, "loss", loss_name, data, output_size)
    for name in filter(is_import_string, names):
        _check_per_example(resolve(name, "metric"), "metric", name, data, output_size)
    for name, fn in (metrics or {}).items():
        if not isinstance(fn, Metric):
            _check_per_example(fn, "metric", name, data, output_size)
    shift, scale = (None, None) if kind != "values" else (
        jnp.asarray(data.target_mean, jnp.float32), jnp.asarray(data.target_std, jnp.float32))
    return Task(kind, loss_name, loss_fn, built, monitor, mode, output_size, data.target_shape, shift, scale)


_WORDS = {"classes": "class labels", "multilabel": "multi-hot labels", "values": "values"}


def _multi_hot_hint(kind: str, wanted: tuple[str, ...]) -> str:
    """How to make float 0/1 targets multi-hot labels, when that is what a refusal asked for."""
    if kind != "values" or "multilabel" not in wanted:
        return ""
    return ("; multi-hot labels are read from boolean targets, from_arrays(..., target='multilabel'), or 0/1 "
            "columns with --task classification")


def _metric_functions(metrics: Any) -> dict[str, Callable[[Array, Array], Array]]:
    """``metrics=`` as ``name -> function``: a mapping as it is, a list of functions by their ``__name__``."""
    if metrics is None:
        return {}
    if isinstance(metrics, Mapping):
        out = dict(metrics)
    elif isinstance(metrics, (list, tuple)) and all(callable(fn) for fn in metrics):
        out = {}
        for fn in metrics:
            name = getattr(fn, "__name__", "")
            if not name.isidentifier() or name in out:
                raise RunError(f"metrics: a list names each function by its __name__, which must be a distinct "
                               f"identifier; got {name!r}{' twice' if name in out else ''} (pass a dict name -> "
                               "function)")
            out[name] = fn
    else:
        raise RunError(f"metrics must be a dict name -> metric(outputs, targets) or a list of such functions; "
                       f"got {type(metrics).__name__}")
    for name, fn in out.items():
        if not callable(fn):
            raise RunError(f"metrics: {name!r} must be a function metric(outputs, targets) -> (B,); got "
                           f"{type(fn).__name__}")
    return out
