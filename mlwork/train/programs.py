"""A run's compiled programs: :func:`compile_run` compiles the training call(s) and the
validation evaluation ahead of time, one model or a population with the same code (its
:class:`~mlwork.train.Members` compiles over the member axis, in vmapped blocks on a CPU);
:func:`make_evaluator` is the jitted evaluation.

The steps before compiling live beside this module and are re-exported from it, so
``from mlwork.train.programs import ...`` keeps working for every name it has held:
:mod:`~mlwork.train.run` (:func:`prepare` -> :class:`Run`, :func:`init_state`, what a checkpoint
holds), :mod:`~mlwork.train.builders` (the model, the schedule, the output check),
:mod:`~mlwork.train.members` (:class:`~mlwork.train.Members`), :mod:`~mlwork.train.ensemble` (a
population's ensemble).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import jax

from mlwork.train import parallel
from mlwork.train.builders import MODEL_BUILDERS, build_model, build_schedule, check_outputs
from mlwork.train.diagnostics import MONITOR_EVERY, make_epoch_monitor
from mlwork.train.ensemble import ensemble_outputs, ensemble_predict
from mlwork.train.hardware import compiler_options
from mlwork.train.members import Members
from mlwork.train.parallel import process_columns, streamed_batch_sharding
from mlwork.train.run import Run, Stream, check_devices, checkpoint_tree, init_state, prepare, split_tree
from mlwork.train.state import TrainState
from mlwork.train.step import make_evaluate, make_streamed_chunk, make_train_chunk, make_train_step

__all__ = ["MODEL_BUILDERS", "Compiled", "Members", "Run", "Stream", "build_model", "build_schedule", "check_devices",
           "check_outputs", "checkpoint_tree", "compile_run", "ensemble_outputs", "ensemble_predict", "init_state",
           "make_evaluator", "prepare", "process_columns", "split_tree", "streamed_batch_sharding"]


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
                             mesh=run.who.data_mesh(run.mesh), task=run.task)
    repl = parallel.replicated(run.mesh)
    return run.who.jit(evaluate, (True, True, False, False), (repl,) * 4, donate=False)


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
    train_step = make_train_step(run.model, run.tx, mean=run.mean, std=run.std, augment=config.augment,
                                 mesh=run.who.data_mesh(run.mesh), monitor_every=every,
                                 loss_fn=run.task.batch_loss, stats_fn=run.task.stats)
    hook = make_epoch_monitor(run.model, mean=run.mean, std=run.std, tx=run.tx,
                              loss_fn=run.task.batch_loss) if config.monitor else None
    per_call = config.call_steps(spe, streamed=run.stream is not None)
    lengths = sorted({per_call, spe % per_call, _resumed_tail(run, state, per_call)} - {0})
    options = compiler_options(run.mesh.devices.flat[0].platform)
    block = run.who.block(state, block)
    t0 = time.perf_counter()
    chunks = {}
    for length in lengths:
        if run.stream is not None:
            chunks[length] = _compile_streamed(run, state, train_step, hook, length, block, options)
            continue
        one = make_train_chunk(train_step, config.batch_size, None if length == spe else length, monitor=hook)
        repl = parallel.replicated(run.mesh)
        fn = run.who.jit(one, (True, False, False), (repl,) * 3, block=block)
        chunks[length] = fn.lower(state, *run.train).compile(compiler_options=options)
    evaluate_val = make_evaluator(run).lower(state.params, state.model_state, *run.val).compile(
        compiler_options=options)
    return Compiled(chunks, per_call, evaluate_val, time.perf_counter() - t0, block)


def _compile_streamed(run: Run, state: TrainState, train_step: Any, hook: Any, length: int, block: int | None,
                      options: Any) -> Any:
    """The chunk program of a streamed run: ``(state, xs, ys, probe_x, probe_y)``, the batches
    ``(length, B, ...)`` (a leading member axis for a population) read on the host."""
    one = make_streamed_chunk(train_step, run.steps_per_epoch, monitor=hook)
    source = run.stream.source
    shape = run.who.lead + (length, run.config.batch_size)
    xs = jax.ShapeDtypeStruct(shape + source.x.shape[1:], source.x.dtype)
    ys = jax.ShapeDtypeStruct(shape + source.y.shape[1:], source.y.dtype)
    repl, batch = parallel.replicated(run.mesh), streamed_batch_sharding(run.mesh)
    fn = run.who.jit(one, (True, True, True, False, False), (repl, batch, batch, repl, repl), block=block)
    return fn.lower(state, xs, ys, *run.train).compile(compiler_options=options)
