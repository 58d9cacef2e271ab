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
from mlwork.data.sources import Dataset, split_validation
from mlwork.train import parallel
from mlwork.train.config import Member, TrainConfig
from mlwork.train.diagnostics import MONITOR_EVERY, make_epoch_monitor
from mlwork.train.errors import RunError
from mlwork.train.hardware import compiler_options, member_block
from mlwork.train.state import TrainState, create_train_state
from mlwork.train.step import make_evaluate, make_train_chunk, make_train_step


def build_model(config: TrainConfig, input_shape: tuple[int, ...] = (28, 28), num_classes: int = 10) -> nn.Model:
    """The model ``config.model`` names, sized for the data: the deck's ``D-256-128-C`` ReLU MLP
    with dropout (``D`` = pixels per image), or the BatchNorm CNN with ``C`` classes."""
    kwargs = {"compute_dtype": config.compute_dtype} if config.compute_dtype != "float32" else {}
    if config.model == "mlp":
        return nn.mlp([math.prod(input_shape), 256, 128, num_classes], activation="relu", dropout=config.dropout,
                      **kwargs)
    return nn.cnn(n_classes=num_classes, dropout=config.dropout, **kwargs)


def build_schedule(config: TrainConfig, steps_per_epoch: int):
    """The learning-rate schedule in optimizer steps, from epoch-level choices:
    ``step`` halves the rate every 5 epochs (the deck's ``StepLR(5, 0.5)``); ``exponential``
    decays it tenfold over the run; the cosine family spans the whole run (warm-up: 1 epoch)."""
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


class Run(NamedTuple):
    """A config made concrete: the model, the optimizer, and the splits on the device(s).

    Attributes:
      members: the population's members, ``None`` for a single model.
      input_shape, num_classes, class_names: from the data set (one image's shape, e.g. ``(28, 28)``).
      mean, std: the normalisation applied on the device (``(x / 255 - mean) / std``).
      train, val, test: ``(uint8 images (n, *input_shape), int32 labels (n,))`` on the device(s).
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

    @property
    def population(self) -> int | None:
        """Members in the state's leading axis, ``None`` for a single model."""
        return None if self.members is None else len(self.members)


def prepare(config: TrainConfig, dataset: Dataset, *, model: nn.Model | None = None,
            tx: optax.GradientTransformation | None = None) -> Run:
    """Check ``config`` against the devices and the data, carve the seeded validation split, put
    the uint8 images and int32 labels on the device(s), and build the model, schedule, optimizer
    and early stopping. Nothing is compiled or written.

    Args:
      config: the run's knobs.
      dataset: uint8 images ``(n, *input_shape)`` and integer labels per split.
      model: replaces the model ``config`` names (any :class:`~mlwork.nn.Model`).
      tx: replaces the optimizer ``config`` names (any Optax transformation; not for populations,
        whose per-member hyperparameters live in mlwork's own optimizer state).

    Raises:
      RunError: more devices than exist, a batch the devices cannot split evenly, a batch larger
        than the training split, a custom ``tx`` on a population.
    """
    population = config.is_population
    if population and tx is not None:
        raise RunError("a population trains mlwork's optimizer (its members' learning rates and weight decays "
                       "live in its state); a custom tx is for single models")
    mesh = check_devices(config)
    mean, std = dataset.mean_std
    tr_x, tr_y, va_x, va_y = split_validation(dataset.train_images, dataset.train_labels,
                                              config.val_fraction, seed=config.split_seed)
    steps_per_epoch = len(tr_y) // config.batch_size
    if steps_per_epoch == 0:
        raise RunError(f"batch_size {config.batch_size} exceeds the {len(tr_y)} training examples")
    input_shape = tuple(int(d) for d in np.shape(dataset.train_images)[1:])
    class_names = tuple(dataset.class_names)
    put = lambda x, dtype: parallel.put_replicated(np.asarray(x, dtype), mesh)  # noqa: E731
    schedule = build_schedule(config, steps_per_epoch)
    custom_tx = tx is not None
    tx = tx or optim.optimizer(config.optimizer, schedule, weight_decay=config.weight_decay, l1=config.l1,
                               clip_norm=config.clip_norm)
    stopper = optim.early_stopping(patience=config.patience if config.patience is not None else 2**30,
                                   mode="max")
    return Run(config, model or build_model(config, input_shape, len(class_names)), tx, schedule, custom_tx,
               stopper, mean, std, steps_per_epoch, (put(tr_x, np.uint8), put(tr_y, np.int32)),
               (put(va_x, np.uint8), put(va_y, np.int32)),
               (put(dataset.test_images, np.uint8), put(dataset.test_labels, np.int32)), mesh,
               config.members() if population else None, input_shape, len(class_names), class_names)


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
    """A fresh :class:`TrainState` seeded by ``config.seed``, replicated over the mesh; for a
    population, K states stacked on a leading axis (member k seeded by its own seed, with its
    learning-rate scale and weight decay in its optimizer state)."""
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
    """``evaluate(params, model_state, images, labels) -> {"loss", "accuracy", "predictions"}``,
    jitted (see :func:`~mlwork.train.step.make_evaluate`); for a population, every member's
    (each with a leading member axis) on the same images."""
    evaluate = make_evaluate(run.model, mean=run.mean, std=run.std, batch_size=run.config.eval_batch_size,
                             mesh=None if run.members is not None else run.mesh)
    if run.members is not None:
        return jax.jit(jax.vmap(evaluate, in_axes=(0, 0, None, None)))
    repl = parallel.replicated(run.mesh)
    return jax.jit(evaluate, in_shardings=repl, out_shardings=repl)


def ensemble_predict(run: Run, params: Any, model_state: Any, images: jax.Array) -> jax.Array:
    """Mean softmax over the members (axis 0 of ``params``), in batches: ``(n, classes)``."""
    from mlwork.data.device import preprocess

    def member_probs(p, s, x):
        logits, _ = run.model.apply({"params": p, "state": s}, preprocess(x, run.mean, run.std))
        return jax.nn.softmax(logits.astype(jnp.float32))

    @jax.jit
    def batch_probs(x):
        return jnp.mean(jax.vmap(member_probs, in_axes=(0, 0, None))(params, model_state, x), axis=0)

    bs = run.config.eval_batch_size
    return jnp.concatenate([batch_probs(images[i:i + bs]) for i in range(0, images.shape[0], bs)])


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


def compile_run(run: Run, state: TrainState, *, block: int | None = None) -> Compiled:
    """Compile the training call(s) and the validation evaluation ahead of time: one program per
    epoch by default; with ``config.steps_per_call`` a chunk program, plus one for the epoch's
    shorter last chunk when the chunk length does not divide the epoch.

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
    """
    config, spe = run.config, run.steps_per_epoch
    every = min(MONITOR_EVERY, spe) if config.monitor else 0  # >= 1 sampled step per epoch
    population = run.members is not None
    train_step = make_train_step(run.model, run.tx, mean=run.mean, std=run.std, augment=config.augment,
                                 mesh=None if population else run.mesh, monitor_every=every)
    hook = make_epoch_monitor(run.model, mean=run.mean, std=run.std, tx=run.tx) if config.monitor else None
    per_call = min(config.steps_per_call or spe, spe)
    lengths = sorted({per_call, spe % per_call} - {0})
    options = compiler_options(run.mesh.devices.flat[0].platform)
    if population:
        k = len(run.members)
        block = member_block(_state_bytes_per_member(state), k) if block is None else int(block)
        if not 1 <= block <= k:
            raise RunError(f"member block must be between 1 and the population size {k}, got {block}")
    t0 = time.perf_counter()
    chunks = {}
    for length in lengths:
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
