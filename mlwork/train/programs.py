"""A config made concrete, and its compiled programs: one model or a population, one code path.

:func:`prepare` turns a :class:`~mlwork.train.config.TrainConfig` and a
:class:`~mlwork.data.Dataset` into a :class:`Run` (the model, the optimizer, the splits on the
devices); :func:`init_state` builds its first state; :func:`compile_run` compiles the training
call(s) and the validation evaluation ahead of time.

A population (``config.is_population``) is the same run with a leading member axis on every
leaf of its state. Members differ by seed and optionally by learning rate and decoupled weight
decay, which live in each member's optimizer state (:func:`mlwork.optim.set_hyperparams`), so
one vmapped program trains them all, and member k ends where training it alone ends (to float32
tolerance: vmap batches the matrix products). On a CPU the members train in vmapped blocks
sized to the last-level cache, one block after another in the same program
(``mlwork.train.hardware.member_block()``). A population runs on one device; data parallelism
(:mod:`mlwork.train.parallel`) is for single models.

What a checkpoint holds (``checkpoint_tree()``): a single model's :class:`TrainState`; for a
population, ``{"state": TrainState (batched), "best_params", "best_model_state"}`` — each
member's parameters at its best validation epoch, which the test evaluation and the ensemble use.
"""

from __future__ import annotations

import inspect
import json
import math
import time
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
from mlwork.train.config import Member, TrainConfig, hidden_sizes
from mlwork.train.diagnostics import MONITOR_EVERY, make_epoch_monitor
from mlwork.train.diagnostics.monitor import PROBE_SIZE
from mlwork.train.errors import RunError
from mlwork.train.hardware import compiler_options, member_block
from mlwork.train.state import TrainState, create_train_state
from mlwork.train.step import make_evaluate, make_streamed_chunk, make_train_chunk, make_train_step
from mlwork.train.task import Task, is_import_string, make_task, resolve


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


class Members(NamedTuple):
    """Who a run trains — one model (``members=None``) or a population — and everything that
    differs between the two, in one place: the loop and the lifecycle ask it instead of branching.

    A population's state has a leading member axis on every leaf; a single model's has none, and
    counts as one member wherever metrics are handled per member.

    Attributes:
      members: the population's :class:`~mlwork.train.config.Member` list, or ``None``.

    Example:
      >>> import numpy as np
      >>> from mlwork.train.config import Member
      >>> from mlwork.train.programs import Members
      >>> single, pop = Members(None), Members([Member(0, 1e-3, 0.0), Member(1, 1e-3, 0.0)])
      >>> single.count, pop.count, float(pop.split({"loss": np.array([0.5, 0.7])})[1]["loss"]), single.head(3, 0)
      (1, 2, 0.7, {'epoch': 3})
    """

    members: list[Member] | None

    @property
    def count(self) -> int:
        """Members in the state (1 for a single model)."""
        return 1 if self.members is None else len(self.members)

    def scalar(self, x: Any) -> int:
        """An int of a per-member counter that all members share (``state.step``, ``state.epoch``)."""
        return int(x) if self.members is None else int(x[0])

    def first(self, tree: Any) -> Any:
        """The first member's leaves (a single model's as they are)."""
        return tree if self.members is None else jax.tree.map(lambda x: x[0], tree)

    def split(self, tree: Any) -> list[Any]:
        """Host values as one entry per member (a single model's get a list of one)."""
        if self.members is None:
            return [tree]
        return [jax.tree.map(lambda x, i=i: np.asarray(x)[i], tree) for i in range(len(self.members))]

    def vmap(self, fn: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
        """``fn`` over the member axis (``jax.vmap``), or ``fn`` itself for a single model."""
        return fn if self.members is None else jax.vmap(fn, **kwargs)

    def index(self, i: int) -> int | None:
        """Member ``i`` as error messages name it: ``None`` for a single model."""
        return None if self.members is None else i

    def describe(self, i: int | None) -> str:
        """Member ``i``'s seed and hyperparameters in words (``""`` for a single model)."""
        return "" if self.members is None or i is None else "seed {}, lr {:g}, weight_decay {:g}".format(
            *self.members[i])

    def head(self, epoch: int, i: int) -> dict[str, Any]:
        """The first fields of member ``i``'s ``metrics.jsonl`` row."""
        return {"epoch": epoch} if self.members is None else {"epoch": epoch, "member": i,
                                                              **self.members[i]._asdict()}


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
        return None if self.members is None else len(self.members)

    @property
    def who(self) -> Members:
        """The run's :class:`Members`: one model or a population, asked instead of branching."""
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
    population = config.is_population
    if population and tx is not None:
        raise RunError("a population trains mlwork's optimizer (its members' learning rates and weight decays "
                       "live in its state); a custom tx is for single models")
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
               (put(va_x), put(va_y)), (put(te_x), put(te_y)), mesh, config.members() if population else None,
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


def streamed_batch_sharding(mesh: Mesh) -> Any:
    """A streamed chunk's batches ``(L, B, ...)``: split over the mesh's ``data`` axis along ``B``."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec(None, parallel.DATA_AXIS))


def process_columns(mesh: Mesh, batch_size: int) -> tuple[int, int]:
    """The slice ``[lo, hi)`` of every global batch this process's devices hold (all of it in one process)."""
    spans = sorted({index[1].indices(batch_size)[:2] for index in
                    streamed_batch_sharding(mesh).addressable_devices_indices_map((1, batch_size)).values()})
    lo, hi = spans[0][0], spans[-1][1]
    if sum(b - a for a, b in spans) != hi - lo:
        raise RunError(f"this process's devices hold a non-contiguous part of the batch ({spans}); the streamed "
                       "input path needs each process's devices adjacent on the mesh")
    return lo, hi


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


def check_devices(config: TrainConfig) -> Mesh:
    """The mesh ``config`` trains on, checked before any data are loaded.

    Raises:
      RunError: more devices than exist, a batch the devices cannot split evenly, a population in
        a multi-process job.
    """
    population = config.is_population
    if population and jax.process_count() > 1:
        raise RunError(f"a population trains in one process; this job has {jax.process_count()} (data "
                       "parallelism over processes is for single models)")
    try:
        mesh = parallel.make_mesh(1 if population else config.devices)
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
    if run.members is None:
        state = create_train_state(run.model, run.tx, jax.random.key(run.config.seed), run.input_shape, run.stopper)
        return parallel.put_replicated(state, run.mesh)
    keys = jnp.stack([jax.random.key(m.seed) for m in run.members])
    states = jax.vmap(lambda k: create_train_state(run.model, run.tx, k, run.input_shape, run.stopper))(keys)
    scale = jnp.asarray([m.lr / run.config.lr for m in run.members], jnp.float32)
    decay = jnp.asarray([m.weight_decay for m in run.members], jnp.float32)
    return states._replace(opt_state=optim.set_hyperparams(states.opt_state, lr_scale=scale, weight_decay=decay))


def checkpoint_tree(run: Run, state: TrainState, best: tuple[Any, Any] | None = None) -> Any:
    """What a checkpoint of ``state`` holds (see the module docstring)."""
    if run.members is None:
        return state
    best_params, best_model_state = best if best is not None else jax.tree.map(jnp.copy, (state.params,
                                                                                         state.model_state))
    return {"state": state, "best_params": best_params, "best_model_state": best_model_state}


def split_tree(run: Run, tree: Any) -> tuple[TrainState, tuple[Any, Any] | None]:
    """The inverse of ``checkpoint_tree()``: ``(state, best or None)``."""
    if run.members is None:
        return tree, None
    return tree["state"], (tree["best_params"], tree["best_model_state"])


def make_evaluator(run: Run):
    """The jitted evaluation of ``run``'s model (see :func:`~mlwork.train.make_evaluate`).

    ``evaluate(params, model_state, inputs, targets) -> {"loss", <metric>..., "predictions"}``:
    the mean per-example loss and each of the task's metrics over the whole set (e.g. accuracy,
    a fraction), and the per-example predictions (the class, or the values), in batches of
    ``config.eval_batch_size``. For a population the parameters carry a leading member axis, and
    so does every output (each member on the same images).

    Args:
      run: from :func:`prepare`.

    Returns:
      The jitted function; a single model's runs sharded over ``run.mesh``.

    Example (needs a trained state; see :func:`init_state` for the rest of the pipeline):

    .. code-block:: python

        evaluate = make_evaluator(run)
        metrics = evaluate(state.params, state.model_state, *run.test)
        float(metrics["accuracy"])
    """
    evaluate = make_evaluate(run.model, mean=run.mean, std=run.std, batch_size=run.config.eval_batch_size,
                             mesh=None if run.members is not None else run.mesh, task=run.task)
    if run.members is not None:
        return jax.jit(jax.vmap(evaluate, in_axes=(0, 0, None, None)))
    repl = parallel.replicated(run.mesh)
    return jax.jit(evaluate, in_shardings=repl, out_shardings=repl)


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


class Compiled(NamedTuple):
    """The ahead-of-time compiled programs of a run.

    Attributes:
      chunks: steps per call -> the compiled training call (``(state, images, labels) -> (state,
        metrics)``; the state is donated).
      steps_per_call: the usual chunk length (a whole epoch by default).
      evaluate_val: the compiled validation evaluation.
      compile_time_s: seconds spent compiling (all of the above).
      member_block: members per vmapped block (populations; ``None`` for a single model).
    """

    chunks: dict[int, Any]
    steps_per_call: int
    evaluate_val: Any
    compile_time_s: float
    member_block: int | None = None


def _state_bytes_per_member(state: TrainState) -> int:
    """Parameters, optimizer state and (as much again as the parameters) gradients, per member."""
    k = int(state.step.shape[0])
    nbytes = lambda tree: sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))  # noqa: E731
    return max(1, (2 * nbytes(state.params) + nbytes(state.opt_state)) // k)


def _resumed_tail(run: Run, state: TrainState, per_call: int) -> int:
    """The last chunk's length of an epoch resumed mid-way at a step that is not a multiple of
    ``per_call`` (a run saved with another chunk length); 0 otherwise, or for an abstract state."""
    try:
        position = run.who.scalar(state.step) - run.who.scalar(state.epoch) * run.steps_per_epoch
    except (TypeError, jax.errors.ConcretizationTypeError):
        return 0
    return (run.steps_per_epoch - position) % per_call if position % per_call else 0


def compile_run(run: Run, state: TrainState, *, block: int | None = None) -> Compiled:
    """Compile the training call(s) and the validation evaluation ahead of time: one program per
    epoch by default; with ``config.steps_per_call`` or a checkpoint clock
    (:meth:`~mlwork.train.TrainConfig.call_steps`) a chunk program, reused for every full chunk,
    plus one for the epoch's shorter last chunk when the chunk length does not divide the epoch
    (and one for the rest of an epoch resumed at a step saved with another chunk length).

    With ``config.monitor`` the calls also return the training monitor
    (:mod:`mlwork.train.diagnostics`): gradient norms sampled every ``MONITOR_EVERY`` steps and,
    at the epoch's end, parameter norms, the update/parameter ratio and the dead-ReLU fraction on
    a probe batch (per member, for a population).

    Args:
      run: from :func:`prepare`.
      state: from :func:`init_state` (or restored); only its shapes are used.
      block: population members per vmapped block (default ``member_block()``);
        it changes speed, not results.

    Raises:
      RunError: a ``block`` outside ``[1, population]``.

    Returns:
      The :class:`Compiled` programs.

    Example (compiling takes seconds; see :func:`init_state` for the whole pipeline):

    .. code-block:: python

        compiled = compile_run(run, state)
        compiled.steps_per_call, compiled.compile_time_s   # e.g. 703, 2.1 (a whole epoch per call)
    """
    config, spe = run.config, run.steps_per_epoch
    every = min(MONITOR_EVERY, spe) if config.monitor else 0  # >= 1 sampled step per epoch
    population = run.members is not None
    train_step = make_train_step(run.model, run.tx, mean=run.mean, std=run.std, augment=config.augment,
                                 mesh=None if population else run.mesh, monitor_every=every,
                                 loss_fn=run.task.batch_loss, stats_fn=run.task.stats)
    hook = make_epoch_monitor(run.model, mean=run.mean, std=run.std, tx=run.tx,
                              loss_fn=run.task.batch_loss) if config.monitor else None
    per_call = config.call_steps(spe, streamed=run.stream is not None)
    lengths = sorted({per_call, spe % per_call, _resumed_tail(run, state, per_call)} - {0})
    options = compiler_options(run.mesh.devices.flat[0].platform)
    if population:
        k = len(run.members)
        block = member_block(_state_bytes_per_member(state), k) if block is None else int(block)
        if not 1 <= block <= k:
            raise RunError(f"member block must be between 1 and the population size {k}, got {block}")
    t0 = time.perf_counter()
    chunks = {}
    for length in lengths:
        if run.stream is not None:
            chunks[length] = _compile_streamed(run, state, train_step, hook, length, block, options)
            continue
        one = make_train_chunk(train_step, config.batch_size, None if length == spe else length, monitor=hook)
        if not population:
            repl = parallel.replicated(run.mesh)
            fn = jax.jit(one, donate_argnums=0, in_shardings=repl, out_shardings=repl)
        elif block == len(run.members):
            fn = jax.jit(jax.vmap(one, in_axes=(0, None, None)), donate_argnums=0)
        else:
            fn = jax.jit(lambda st, x, y, one=one: jax.lax.map(lambda s: one(s, x, y), st, batch_size=block),
                         donate_argnums=0)
        chunks[length] = fn.lower(state, *run.train).compile(compiler_options=options)
    evaluate_val = make_evaluator(run).lower(state.params, state.model_state, *run.val).compile(
        compiler_options=options)
    return Compiled(chunks, per_call, evaluate_val, time.perf_counter() - t0, block if population else None)


def _compile_streamed(run: Run, state: TrainState, train_step: Any, hook: Any, length: int, block: int | None,
                      options: Any) -> Any:
    """The chunk program of a streamed run: ``(state, xs, ys, probe_x, probe_y)``, the batches
    ``(length, B, ...)`` (a leading member axis for a population) read on the host."""
    one = make_streamed_chunk(train_step, run.steps_per_epoch, monitor=hook)
    source, lead = run.stream.source, () if run.members is None else (len(run.members),)
    shape = lead + (length, run.config.batch_size)
    xs = jax.ShapeDtypeStruct(shape + source.x.shape[1:], source.x.dtype)
    ys = jax.ShapeDtypeStruct(shape + source.y.shape[1:], source.y.dtype)
    if run.members is None:
        repl, batch = parallel.replicated(run.mesh), streamed_batch_sharding(run.mesh)
        fn = jax.jit(one, donate_argnums=0, in_shardings=(repl, batch, batch, repl, repl), out_shardings=repl)
    elif block == len(run.members):
        fn = jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None, None)), donate_argnums=0)
    else:
        fn = jax.jit(lambda st, x, y, px, py: jax.lax.map(lambda a: one(*a, px, py), (st, x, y), batch_size=block),
                     donate_argnums=0)
    return fn.lower(state, xs, ys, *run.train).compile(compiler_options=options)
