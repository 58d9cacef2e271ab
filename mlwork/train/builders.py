"""The model, the schedule and the output check a config names, sized for the data.

:func:`build_model` turns ``config.model`` (a name in :data:`MODEL_BUILDERS`, or an import string
``package.module:factory``) into a :class:`~mlwork.nn.Model` sized from one example's shape and
the outputs per example; :func:`build_schedule` turns the epoch-level ``config.schedule`` into an
Optax schedule in optimizer steps; :func:`check_outputs` refuses, abstractly, a model whose
outputs do not fit the task's targets. :func:`~mlwork.train.programs.prepare` calls all three;
:func:`~mlwork.train.load_run` rebuilds a run's model with :func:`build_model`.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlwork import nn, optim
from mlwork.train.config import TrainConfig, hidden_sizes
from mlwork.train.errors import RunError
from mlwork.train.task import Task, is_import_string, resolve


def _mlp(config: TrainConfig, input_shape: tuple[int, ...], output_size: int, **kwargs: Any) -> nn.Model:
    return nn.mlp([math.prod(input_shape), *hidden_sizes(config), output_size], activation="relu",
                  dropout=config.dropout, **kwargs)


def _cnn(config: TrainConfig, input_shape: tuple[int, ...], output_size: int, **kwargs: Any) -> nn.Model:
    channels = (32, 64)
    if len(input_shape) not in (2, 3) or any(d % 2 ** len(channels) for d in input_shape[:2]):
        raise RunError(f"model 'cnn' needs images (H, W) or (H, W, C) with H and W multiples of "
                       f"{2 ** len(channels)}; got input shape {tuple(input_shape)} (use model mlp)")
    return nn.cnn(n_classes=output_size, channels=channels, dropout=config.dropout, **kwargs)


#: Built-in model name -> ``builder(config, input_shape, output_size, **kwargs) -> Model`` (``kwargs``: the
#: compute dtype). A registry: add a name here and ``TrainConfig.model`` still accepts only
#: :data:`~mlwork.train.config.MODELS` (names known without importing JAX) or import strings.
MODEL_BUILDERS: dict[str, Callable[..., nn.Model]] = {"mlp": _mlp, "cnn": _cnn}


def build_model(config: TrainConfig, input_shape: tuple[int, ...] = (28, 28), num_classes: int = 10, *,
                input_dtype: Any = jnp.float32) -> nn.Model:
    """The model ``config.model`` names, sized for the data.

    ``"mlp"``: a ReLU MLP ``D-h_1-...-C`` with hidden sizes ``config.hidden`` (default the deck's
    256, 128) and dropout ``config.dropout`` (``D`` the inputs per example, ``C`` the outputs);
    ``"cnn"``: the BatchNorm CNN (:func:`mlwork.nn.cnn`) with ``C`` outputs, for images whose sides
    are multiples of 4. An import string ``package.module:factory`` is called as
    ``factory(input_shape, output_size, **model_kwargs)``; it returns a :class:`~mlwork.nn.Model`
    or a ``flax.linen.Module`` (wrapped with :func:`mlwork.nn.from_flax`; its ``__call__`` may take
    ``train``). ``config.compute_dtype`` is passed on to the built-ins when it is not float32.

    Args:
      config: the run's knobs (``model``, ``model_kwargs``, ``hidden``, ``dropout``, ``compute_dtype``).
      input_shape: one example's shape, e.g. ``(28, 28)``.
      num_classes: ``C``, the model's outputs per example (the classes, or the values per target).
      input_dtype: what the model receives (float32; int32 for tokens), for a Flax module's ``init``.

    Returns:
      An uninitialised :class:`~mlwork.nn.Model` (``init`` and ``apply``).

    Raises:
      RunError: a CNN on inputs it cannot pool, a factory that cannot be imported, fails, or
        returns something that is not a model.

    Example:
      >>> import jax
      >>> from mlwork import nn
      >>> from mlwork.train import TrainConfig, build_model
      >>> model = build_model(TrainConfig(model="mlp"))
      >>> nn.count_params(model.init(jax.random.key(0), (28, 28)))  # 784·256+256 + 256·128+128 + 128·10+10
      235146
      >>> nn.count_params(build_model(TrainConfig(hidden="8"), (10,), 1).init(jax.random.key(0), (10,)))
      97
    """
    kwargs = {"compute_dtype": config.compute_dtype} if config.compute_dtype != "float32" else {}
    if config.model in MODEL_BUILDERS:
        return MODEL_BUILDERS[config.model](config, tuple(input_shape), int(num_classes), **kwargs)
    if not is_import_string(config.model):
        raise RunError(f"model must be one of {', '.join(MODEL_BUILDERS)} or package.module:factory; got "
                       f"{config.model!r}")
    factory = resolve(config.model, "model")
    user_kwargs = json.loads(config.model_kwargs) if config.model_kwargs else {}
    try:
        model = factory(tuple(input_shape), int(num_classes), **user_kwargs)
    except Exception as e:  # noqa: BLE001 - the user's factory: one line, naming it
        raise RunError(f"model {config.model!r} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                       ) from None
    if isinstance(model, nn.Model):
        return model
    try:
        import flax.linen as fnn
    except ImportError:  # pragma: no cover - flax is a dependency
        fnn = None
    if fnn is not None and isinstance(model, fnn.Module):
        takes_train = "train" in inspect.signature(type(model).__call__).parameters
        return nn.from_flax(model, train_arg="train" if takes_train else None, input_dtype=input_dtype)
    raise RunError(f"model {config.model!r} must return an mlwork.nn.Model or a flax.linen.Module; got "
                   f"{type(model).__name__}")


def build_schedule(config: TrainConfig, steps_per_epoch: int):
    r"""The learning-rate schedule, in optimizer steps, from the epoch-level ``config.schedule``.

    With :math:`\eta` = ``config.lr``, :math:`S` = ``steps_per_epoch`` and :math:`T = S \cdot`
    ``config.epochs`` (at least 1):

    * ``constant``: :math:`\eta`;
    * ``step``: :math:`\eta \cdot 0.5^{\lfloor t / 5S \rfloor}`, the deck's ``StepLR(5, 0.5)``;
    * ``exponential``: :math:`\eta \cdot 10^{-t/T}`, tenfold over the run;
    * ``cosine``: :math:`\eta \cdot \tfrac12 (1 + \cos(\pi t / T))` (Loshchilov & Hutter, 2017);
    * ``warmup_cosine``: a linear warm-up over one epoch to :math:`\eta`, then cosine to ``T``;
    * ``onecycle``: the one-cycle policy (Smith & Topin, 2019) peaking at :math:`\eta`.

    (See :func:`mlwork.optim.schedule`.)

    Args:
      config: the run's knobs (``schedule``, ``lr``, ``epochs``).
      steps_per_epoch: :math:`S`, optimizer steps per epoch, >= 1.

    Returns:
      An Optax schedule: step count -> learning rate (a float32 scalar).

    Example:
      >>> from mlwork.train import TrainConfig, build_schedule
      >>> schedule = build_schedule(TrainConfig(lr=0.1, schedule="step"), steps_per_epoch=10)
      >>> [round(float(schedule(t)), 3) for t in (0, 49, 50, 100)]  # halved every 5 epochs
      [0.1, 0.1, 0.05, 0.025]
    """
    total = max(1, config.epochs * steps_per_epoch)
    lr = config.lr
    return {
        "constant": lambda: optim.schedule("constant", value=lr),
        "step": lambda: optim.schedule("step", init_value=lr, step_size=5 * steps_per_epoch, gamma=0.5),
        "exponential": lambda: optim.schedule("exponential", init_value=lr, rate=float(np.log(10.0)) / total),
        "cosine": lambda: optim.schedule("cosine", init_value=lr, total_steps=total),
        "warmup_cosine": lambda: optim.schedule("warmup_cosine", peak_value=lr,
                                                warmup_steps=min(steps_per_epoch, total - 1), total_steps=total),
        "onecycle": lambda: optim.schedule("onecycle", peak_value=lr, total_steps=total),
    }[config.schedule]()


def check_outputs(model: nn.Model, task: Task, input_shape: tuple[int, ...], input_dtype: Any = jnp.float32) -> None:
    """Refuse a model whose outputs do not fit the targets (abstractly: nothing runs or compiles).

    Args:
      model: the :class:`~mlwork.nn.Model`.
      task: the run's :class:`~mlwork.train.task.Task` (its ``output_size`` and target kind).
      input_shape: one example's shape.
      input_dtype: the dtype the model receives (float32; int32 for tokens).

    Raises:
      RunError: the model cannot be initialised for ``input_shape``, or its outputs for a batch
        ``(B, *input_shape)`` are not ``(B, task.output_size)``.

    Example:
      >>> import numpy as np
      >>> from mlwork import nn
      >>> from mlwork.data import from_arrays
      >>> from mlwork.train import RunError, TrainConfig, check_outputs, make_task
      >>> task = make_task(TrainConfig(), from_arrays(np.zeros((4, 3)), np.array([0, 1, 2, 0])))
      >>> check_outputs(nn.mlp([3, 3]), task, (3,))  # three classes, three scores: fits
      >>> try:
      ...     check_outputs(nn.mlp([3, 1]), task, (3,))
      ... except RunError as e:
      ...     print(e)
      the model's outputs must have shape (batch, 3) (one score per class); got (2, 1) for a batch of 2
    """
    def outputs():
        variables = model.init(jax.random.key(0), input_shape)
        return model.apply(variables, jnp.zeros((2, *input_shape), input_dtype))[0]

    try:
        shape = tuple(jax.eval_shape(outputs).shape)
    except Exception as e:  # noqa: BLE001 - the model's own failure, in one line
        raise RunError(f"the model cannot take inputs of shape {tuple(input_shape)}: {type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if shape != (2, task.output_size):
        what = {"classes": "one score per class", "multilabel": "one score per label",
                "values": "one output per target value"}[task.kind]
        raise RunError(f"the model's outputs must have shape (batch, {task.output_size}) ({what}); got "
                       f"{shape} for a batch of 2")
