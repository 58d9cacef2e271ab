"""A config made concrete: :func:`prepare` turns a :class:`~mlwork.train.config.TrainConfig`
and the data into a :class:`Run` (the model, the optimizer, the splits on the devices, who is
trained); :func:`init_state` builds its first state.

One model or a population (``config.is_population``): the run's :class:`~mlwork.train.Members`
(``run.who``) holds every difference between the two (see :mod:`mlwork.train.members`), including
what a checkpoint holds (``checkpoint_tree()``). :func:`~mlwork.train.programs.compile_run`
compiles the run's programs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from mlwork import nn, optim
from mlwork.data.arrays import ArrayDataset, as_arrays
from mlwork.data.sources import Dataset, split_validation
from mlwork.train import parallel
from mlwork.train.builders import build_model, build_schedule, check_outputs
from mlwork.train.config import Member, TrainConfig
from mlwork.train.diagnostics.monitor import PROBE_SIZE
from mlwork.train.errors import RunError
from mlwork.train.members import Members
from mlwork.train.parallel import process_columns
from mlwork.train.state import TrainState, create_train_state
from mlwork.train.task import Task, make_task


class Stream(NamedTuple):
    """A training split streamed from disk (see :mod:`mlwork.data.stream`).

    Attributes:
      source: the memory-mapped :class:`~mlwork.data.stream.NpySource`.
      notice: why the run streams, one line (``--stream``, or the size over the budget).
    """

    source: Any
    notice: str


class Run(NamedTuple):
    """A config made concrete: the model, the optimizer, and the splits on the device(s) (from :func:`prepare`).

    Attributes:
      config: the run's :class:`~mlwork.train.TrainConfig`.
      model: the :class:`~mlwork.nn.Model` trained.
      tx: the Optax optimizer (with the schedule in it).
      schedule: the learning-rate schedule, step -> rate (:func:`build_schedule`).
      custom_tx: whether ``tx`` was passed to :func:`prepare` rather than built from the config.
      stopper: the early-stopping rule on validation accuracy (``mode="max"``).
      mean, std: the normalisation applied on the device (``(x / 255 - mean) / std``).
      steps_per_epoch: optimizer steps per epoch, ``n_train // batch_size`` (the remainder is
        dropped; each epoch reshuffles).
      train, val, test: ``(uint8 images (n, *input_shape), int32 labels (n,))`` on the device(s).
      mesh: the device mesh (one device for a population).
      members: the population's members, ``None`` for a single model.
      input_shape, num_classes, class_names: from the data set (one example's shape, e.g. ``(28, 28)``;
        ``num_classes`` is the model's outputs per example, the classes or the values per target;
        ``class_names`` is empty for values).
      task: the :class:`~mlwork.train.task.Task`: loss, metrics, monitored metric and its mode.
      data: the :class:`~mlwork.data.ArrayDataset` the splits came from.
      test_is_val: no test split was given: the test figures are the validation split's.
      stream: the streamed training split (:class:`Stream`), or ``None`` when it sits on the
        device; then ``train`` holds only its first ``PROBE_SIZE`` examples (the monitor's probe).
    """

    config: TrainConfig
    model: nn.Model
    tx: optax.GradientTransformation
    schedule: Callable[[Any], Any]
    custom_tx: bool
    stopper: optim.EarlyStopping
    mean: float
    std: float
    steps_per_epoch: int
    train: tuple[jax.Array, jax.Array]
    val: tuple[jax.Array, jax.Array]
    test: tuple[jax.Array, jax.Array]
    mesh: Mesh
    members: list[Member] | None
    input_shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...]
    task: Task | None = None
    data: ArrayDataset | None = None
    test_is_val: bool = False
    stream: Stream | None = None

    @property
    def population(self) -> int | None:
        """Members in the state's leading axis, ``None`` for a single model."""
        return self.who.population

    @property
    def who(self) -> Members:
        """The run's :class:`~mlwork.train.Members`: one model or a population, asked instead of branching."""
        return Members(self.members)


def prepare(config: TrainConfig, dataset: ArrayDataset | Dataset, *, model: nn.Model | None = None,
            tx: optax.GradientTransformation | None = None, loss: Callable[[Any, Any], Any] | None = None,
            metrics: dict[str, Callable[[Any, Any], Any]] | None = None) -> Run:
    """Check ``config`` against the devices and the data, carve the seeded validation split (unless
    the data have one), put the splits on the device(s) (inputs in their stored dtype: uint8
    images, float32 features, int32 tokens), and build the task, model, schedule, optimizer and
    early stopping. Nothing is compiled or written.

    Args:
      config: the run's knobs.
      dataset: an :class:`~mlwork.data.ArrayDataset` (any arrays), or a MNIST-family
        :class:`~mlwork.data.Dataset`.
      model: replaces the model ``config`` names (any :class:`~mlwork.nn.Model`).
      tx: replaces the optimizer ``config`` names (any Optax transformation; not for populations,
        whose per-member hyperparameters live in mlwork's own optimizer state).
      loss: a loss function ``loss(outputs, targets) -> (B,)`` replacing ``config.loss``.
      metrics: extra metrics, ``name -> metric(outputs, targets) -> (B,)`` (see
        :func:`mlwork.train.task.make_task`).

    Raises:
      RunError: more devices than exist, a batch the devices cannot split evenly, a batch larger
        than the training split, a custom ``tx`` on a population (or a population in a
        multi-process job), a task, loss or metric the targets do not fit, a model whose
        outputs do not fit the targets.
      ValueError: ``config.val_fraction`` leaves no training example
        (:func:`mlwork.data.split_validation`).

    Returns:
      A :class:`Run`.

    Example:
      >>> import numpy as np
      >>> from mlwork.data import Dataset
      >>> from mlwork.train import TrainConfig, prepare
      >>> images, labels = np.zeros((40, 28, 28), np.uint8), np.arange(40, dtype=np.uint8) % 10
      >>> dataset = Dataset("mnist", images, labels, images[:10], labels[:10], source="memory")
      >>> run = prepare(TrainConfig(batch_size=8, val_fraction=0.25), dataset)
      >>> run.steps_per_epoch, run.train[0].shape, run.val[1].dtype.name, run.population  # 30 // 8
      (3, (30, 28, 28), 'int32', None)
    """
    who = Members.of(config)
    who.check_tx(tx)
    data = as_arrays(dataset)
    if config.augment and (data.input_kind != "images" or len(data.input_shape) != 2):
        raise RunError(f"augment is for grey images (H, W) stored as uint8; the inputs are {data.input_kind} of "
                       f"shape {data.input_shape}")
    task = make_task(config, data, loss=loss, metrics=metrics)
    mesh = check_devices(config)
    mean, std = data.mean_std
    if data.x_val is None:
        tr_x, tr_y, va_x, va_y = split_validation(data.x_train, data.y_train, config.val_fraction,
                                                  seed=config.split_seed)
    else:
        tr_x, tr_y, va_x, va_y = data.x_train, data.y_train, data.x_val, data.y_val
    test_is_val = data.x_test is None
    te_x, te_y = (va_x, va_y) if test_is_val else (data.x_test, data.y_test)
    steps_per_epoch = len(tr_y) // config.batch_size
    if steps_per_epoch == 0:
        raise RunError(f"batch_size {config.batch_size} exceeds the {len(tr_y)} training examples")
    input_shape = data.input_shape
    class_names = tuple(data.class_names or ())
    put = lambda x: parallel.put_replicated(np.asarray(x), mesh)  # noqa: E731
    schedule = build_schedule(config, steps_per_epoch)
    custom_tx = tx is not None
    tx = tx or optim.optimizer(config.optimizer, schedule, weight_decay=config.weight_decay, l1=config.l1,
                               clip_norm=config.clip_norm)
    stopper = optim.early_stopping(patience=config.patience if config.patience is not None else 2**30,
                                   mode=task.mode)
    input_dtype = jnp.int32 if data.input_kind == "tokens" else jnp.float32
    model = model or build_model(config, input_shape, task.output_size, input_dtype=input_dtype)
    check_outputs(model, task, input_shape, input_dtype)
    stream = _stream(config, tr_x, tr_y, mesh)
    if stream is not None:
        tr_x, tr_y = tr_x[:PROBE_SIZE], tr_y[:PROBE_SIZE]
    return Run(config, model, tx, schedule, custom_tx, stopper, mean, std, steps_per_epoch, (put(tr_x), put(tr_y)),
               (put(va_x), put(va_y)), (put(te_x), put(te_y)), mesh, who.members,
               input_shape, task.output_size, class_names, task, data, test_is_val, stream)


def _stream(config: TrainConfig, x: Any, y: Any, mesh: Mesh) -> Stream | None:
    """The streamed split when ``config.stream`` asks or the arrays exceed the device budget."""
    mib = (np.asarray(x).nbytes + np.asarray(y).nbytes) / 2**20
    budget = config.device_memory_budget_mb
    if not config.stream and (budget is None or mib <= budget):
        return None
    from mlwork.data.stream import NpySource, write_npy_cache

    source = NpySource(write_npy_cache(x, y))
    why = "--stream" if config.stream else f"{mib:.1f} MiB exceed the device memory budget of {budget:g} MiB"
    lo, hi = process_columns(mesh, config.batch_size)
    share = "" if jax.process_count() == 1 else f"; this process reads examples {lo}:{hi} of every batch"
    return Stream(source, f"streaming the training split from {source.folder} ({why}){share}")


def check_devices(config: TrainConfig) -> Mesh:
    """The mesh ``config`` trains on, checked before any data are loaded.

    Raises:
      RunError: more devices than exist, a batch the devices cannot split evenly, a population in
        a multi-process job.
    """
    devices = Members.of(config).devices(config.devices)
    try:
        mesh = parallel.make_mesh(devices)
        parallel.check_batch(config.batch_size, mesh)
    except ValueError as e:
        raise RunError(str(e)) from None
    return mesh


def init_state(run: Run) -> TrainState:
    r"""A fresh :class:`~mlwork.train.TrainState` for ``run``, at step 0.

    A single model is seeded by ``config.seed`` and replicated over the mesh. A population stacks
    :math:`K` states on a leading axis: member :math:`k` seeded by its own seed, with its
    learning-rate scale :math:`\eta_k / \eta` and weight decay in its optimizer state
    (:func:`mlwork.optim.set_hyperparams`).

    Args:
      run: from :func:`prepare`.

    Returns:
      The state; every leaf ``(K, ...)`` for a population.

    Example (compiling a run takes seconds, so this is not run here):

    .. code-block:: python

        from mlwork.data import load_dataset
        from mlwork.train import TrainConfig, compile_run, init_state, prepare, train_epochs

        run = prepare(TrainConfig(epochs=2, population=4), load_dataset("mnist"))
        state = init_state(run)                    # every leaf (4, ...)
        compiled = compile_run(run, state)
        for event in train_epochs(run, state, compiled):
            print([row["val_accuracy"] for row in event.rows])   # one row per member
    """
    return run.who.init_state(lambda key: create_train_state(run.model, run.tx, key, run.input_shape, run.stopper),
                              run.config.seed, run.config.lr, run.mesh)


def checkpoint_tree(run: Run, state: TrainState, best: tuple[Any, Any] | None = None) -> Any:
    """What a checkpoint of ``state`` holds (see :meth:`Members.checkpoint_tree`)."""
    return run.who.checkpoint_tree(state, best)


def split_tree(run: Run, tree: Any) -> tuple[TrainState, tuple[Any, Any] | None]:
    """The inverse of ``checkpoint_tree()``: ``(state, best or None)``."""
    return run.who.split_tree(tree)
