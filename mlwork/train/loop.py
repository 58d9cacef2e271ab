"""The training loop as an iterator: it yields at every epoch's end, and the caller decides.

:func:`train_epochs` runs the compiled calls of :func:`~mlwork.train.programs.compile_run`,
fetches their metrics once per call, evaluates on the validation split, and yields an
:class:`EpochEnd` (the state and one metrics row per member); when ``interrupt()`` turns true
between two calls in the middle of an epoch it yields an :class:`Interrupted` with the epoch's
running sums and stops. Saving, logging and stopping happen in the caller's loop body, in
plain sight (see :func:`~mlwork.train.lifecycle.train_and_evaluate`); :func:`fit` is the
iterator collected in memory::

    run = prepare(config, dataset)
    state = init_state(run)
    compiled = compile_run(run, state)
    for event in train_epochs(run, state, compiled):
        print(event.epoch, event.rows[0]["val_accuracy"])

A single model and a population (a state with a leading member axis) run the same loop: every
metric is handled per member, with one member for a single model.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlwork import nn, optim
from mlwork.train.config import TrainConfig
from mlwork.train.diagnostics import accumulate_monitor, monitor_row
from mlwork.train.errors import NonFiniteLossError
from mlwork.train.parallel import process_columns
from mlwork.train.programs import Compiled, Run, compile_run, init_state, prepare
from mlwork.train.state import TrainState

_FETCH = ("loss_sum", "stats", "nonfinite_step", "monitor")


class EpochEnd(NamedTuple):
    """An epoch finished.

    Attributes:
      epoch: the epoch just completed (1-based).
      state: the state after it (batched over members for a population).
      best: a population's ``(best_params, best_model_state)`` per member; ``None`` for a single model.
      rows: the epoch's ``metrics.jsonl`` rows, one per member.
      val_metric: the monitored validation metric (``run.task.monitor``; a population's mean over members).
      stop: early stopping ended the run here (a single model with ``patience``).
    """

    epoch: int
    state: TrainState
    best: tuple[Any, Any] | None
    rows: list[dict[str, Any]]
    val_metric: float
    stop: bool


class Interrupted(NamedTuple):
    """``interrupt()`` turned true in the middle of an epoch, after the call in flight.

    Attributes:
      epoch: epochs completed before this one.
      state, best: as in :class:`EpochEnd`, at the step reached.
      partial: the epoch's running sums so far (JSON-ready): save them with the checkpoint and pass
        them back as ``train_epochs(partial=...)`` to resume the epoch exactly.
    """

    epoch: int
    state: TrainState
    best: tuple[Any, Any] | None
    partial: dict[str, Any]


class MidEpoch(NamedTuple):
    """``checkpoint(step)`` asked for a checkpoint after a compiled call in the middle of an epoch;
    training goes on when the caller has saved it.

    Attributes:
      epoch: epochs completed before this one.
      state, best: as in :class:`EpochEnd`, at the step reached.
      partial: as :attr:`Interrupted.partial` (a copy: the epoch's sums keep growing afterwards),
        with ``step_in_epoch``, the steps of this epoch done.
    """

    epoch: int
    state: TrainState
    best: tuple[Any, Any] | None
    partial: dict[str, Any]


def _partial(time_s: float, sums: list[dict[str, Any]], position: int, feed: Any) -> dict[str, Any]:
    """A mid-epoch checkpoint's record of the epoch so far (a streamed run's Grain iterator state too)."""
    out = {"time_s": time_s, "members": sums, "step_in_epoch": position}
    if feed is not None:
        out["data_iterator"] = feed.get_state()
    return out


def _feed(run: Run, state: TrainState, epoch: int, position: int, chunk_steps: int,
          saved: dict[str, Any] | None) -> Any:
    """The Grain iterator over epoch ``epoch``'s (0-based) chunks, at step ``position`` of it: the
    saved iterator state when it is there and agrees with the state's step, else positioned there."""
    from mlwork.data.stream import chunk_starts, epoch_chunks

    order = np.asarray(jax.device_get(run.who.epoch_orders(state.rng, epoch, len(run.stream.source),
                                                           run.config.batch_size)))
    # each process reads only the part of every batch its devices hold (all of it in one process: a population's)
    lo, hi = process_columns(run.mesh, run.config.batch_size)
    order = order[..., lo:hi]
    starts = chunk_starts(run.steps_per_epoch, chunk_steps)
    if position not in starts:  # resumed with another chunk length: read from the step on
        return epoch_chunks(run.stream.source, order[..., position:, :], chunk_steps, threads=STREAM_THREADS)
    if saved is None or starts[min(int(saved.get("next_index", -1)), len(starts) - 1)] != position:
        saved = {"next_index": starts.index(position)} if position > 0 else None
    return epoch_chunks(run.stream.source, order, chunk_steps, threads=STREAM_THREADS, state=saved)


#: Grain's reading threads for a streamed run.
STREAM_THREADS = 2


def _add_stats(total: Any, new: Any) -> Any:
    """Metric statistics summed on the host in float64, JSON-ready (nested lists) for a mid-epoch checkpoint."""
    new = jax.tree.map(lambda x: np.asarray(x, np.float64), new)
    if total is not None:
        new = jax.tree.map(lambda b, a: np.asarray(a, np.float64) + b, new, total)  # total's lists are leaves
    return jax.tree.map(lambda x: x.tolist(), new)


def stopped_before(run: Run, state: TrainState) -> bool:
    """Whether early stopping already ended this single model's run (a resumed run stays stopped)."""
    patience = run.config.patience
    if not run.who.stops_early(patience):
        return False
    bad_epochs = int(state.early_stopping.bad_epochs)
    return bad_epochs > 0 and bad_epochs >= max(patience, 1)


def train_epochs(run: Run, state: TrainState, compiled: Compiled, *, best: tuple[Any, Any] | None = None,
                 partial: dict[str, Any] | None = None, stop_after: int | None = None,
                 interrupt: Callable[[], bool] | None = None, checkpoint: Callable[[int], bool] | None = None
                 ) -> Iterator[EpochEnd | Interrupted | MidEpoch]:
    """Train from where ``state`` stands to ``config.epochs`` (or ``stop_after`` more epochs, or
    early stopping), yielding after every epoch.

    Args:
      run, compiled: from :func:`~mlwork.train.programs.prepare` and
        :func:`~mlwork.train.programs.compile_run`.
      state: a :class:`TrainState` (with a leading member axis for a population); donated to the
        compiled calls, so use the yielded states afterwards, not this one.
      best: a population's per-member best ``(params, model_state)`` so far (default: the
        current ones).
      partial: :attr:`Interrupted.partial` of an epoch stopped mid-way, to finish it exactly.
      stop_after: stop after this many epochs of this call (as if interrupted).
      interrupt: polled after every compiled call that does not end an epoch; when it returns
        ``True`` the iterator yields :class:`Interrupted` and stops.
      checkpoint: ``checkpoint(step)``, asked (with the global step reached) after every compiled
        call that does not end an epoch and is not interrupted: ``True`` yields a
        :class:`MidEpoch` to save, then training goes on (e.g. a checkpoint manager's
        ``should_save`` under ``mlwork.train.checkpoint.clock_policy``).

    Yields:
      :class:`EpochEnd` per epoch, :class:`MidEpoch` when ``checkpoint`` asks; at most one
      :class:`Interrupted`, last.

    Raises:
      NonFiniteLossError: a member's loss became NaN or infinite (nothing is yielded for that
        epoch); it names the member (population), the epoch and the global step.

    Example (stop mid-epoch and finish that epoch exactly later; compiling and training take
    seconds, so this is not run here):

    .. code-block:: python

        from mlwork.train import Interrupted, compile_run, init_state, prepare, train_epochs

        run = prepare(config, dataset)           # config.steps_per_call shorter than an epoch
        state = init_state(run)
        compiled = compile_run(run, state)
        polls = iter(range(3))                   # interrupt at the third poll
        for event in train_epochs(run, state, compiled, interrupt=lambda: next(polls, 2) == 2):
            state = event.state
        if isinstance(event, Interrupted):
            for event in train_epochs(run, state, compiled, partial=event.partial):
                state = event.state
    """
    config, spe, who = run.config, run.steps_per_epoch, run.who
    best = who.initial_best(state, best)  # a population's: copies, as the calls donate the state's buffers
    start = who.scalar(state.epoch)
    if stopped_before(run, state):
        return
    update_stopping = who.vmap(run.stopper.update)
    for epoch in range(start + 1, config.epochs + 1):
        position = who.scalar(state.step) - (epoch - 1) * spe
        if partial and position > 0:
            sums, time_s = [dict(s) for s in partial["members"]], partial["time_s"]
        else:
            sums, time_s = [{"loss_sum": 0.0, "stats": None, "monitor": None} for _ in range(who.count)], 0.0
        feed = None if run.stream is None else _feed(run, state, epoch - 1, position, compiled.steps_per_call,
                                                     (partial or {}).get("data_iterator") if position > 0 else None)
        partial = None
        while position < spe:
            length = min(compiled.steps_per_call, spe - position)
            t = time.perf_counter()
            if feed is None:
                state, m = compiled.chunks[length](state, *run.train)
            else:
                batches = who.put_batches(*next(feed), run.mesh, config.batch_size)
                state, m = compiled.chunks[length](state, *batches, *run.train)
            m = jax.device_get({name: m[name] for name in _FETCH if name in m})
            time_s += time.perf_counter() - t
            for i, (member, total) in enumerate(zip(who.split(m), sums, strict=True)):
                if member["nonfinite_step"] >= 0:
                    raise NonFiniteLossError(epoch, int(member["nonfinite_step"]), member=who.index(i),
                                             detail=who.describe(i))
                total["loss_sum"] += float(member["loss_sum"])
                total["stats"] = _add_stats(total.get("stats"), member["stats"])
                total["monitor"] = accumulate_monitor(total["monitor"], member.get("monitor"))
            position += length
            if interrupt is not None and position < spe and interrupt():
                yield Interrupted(epoch - 1, state, best, _partial(time_s, sums, position, feed))
                return
            if checkpoint is not None and position < spe and checkpoint(who.scalar(state.step)):
                yield MidEpoch(epoch - 1, state, best, copy.deepcopy(_partial(time_s, sums, position, feed)))
        val = jax.device_get(compiled.evaluate_val(state.params, state.model_state, *run.val))
        es_state, improved, stop = update_stopping(state.early_stopping, jnp.asarray(val[run.task.monitor]))
        best, stop = who.keep_best(improved, state, best, stop)  # a population's members: each its own best
        state = state._replace(early_stopping=es_state)
        lr = optim.current_learning_rate(state.opt_state)
        lrs = [None] * who.count if lr is None else [float(x) for x in who.split(np.asarray(lr))]
        rows = []
        names = list(run.task.metrics)
        for i, (total, member_val) in enumerate(zip(sums, who.split(val), strict=True)):
            head = who.head(epoch, i)
            train = run.task.finalize(total["stats"], spe * config.batch_size)
            rows.append({**head, "train_loss": total["loss_sum"] / spe,
                         **{f"train_{name}": float(train[name]) for name in names},
                         "val_loss": float(member_val["loss"]),
                         **{f"val_{name}": float(member_val[name]) for name in names},
                         "learning_rate": lrs[i], "epoch_time_s": time_s, **monitor_row(total["monitor"])})
        val_metric = float(np.mean([r[f"val_{run.task.monitor}"] for r in rows]))
        yield EpochEnd(epoch, state, best, rows, val_metric, bool(stop))
        if stop or (stop_after is not None and epoch - start >= stop_after):
            return


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
      state: the final state (batched over members for a population).
      history: every ``metrics.jsonl`` row (one per epoch, per member for a population).
      run: the :class:`~mlwork.train.programs.Run`.
      compile_time_s: seconds spent compiling.
      best: a population's per-member best ``(params, model_state)``; ``None`` for a single model.
      member_block: a population's members per vmapped block; ``None`` for a single model.
    """

    state: TrainState
    history: list[dict[str, Any]]
    run: Run
    compile_time_s: float
    best: tuple[Any, Any] | None = None
    member_block: int | None = None


def fit(config: TrainConfig, dataset: Any, *, model: nn.Model | None = None,
        tx: optax.GradientTransformation | None = None, member_block: int | None = None,
        loss: Callable[[Any, Any], Any] | None = None, metrics: dict[str, Callable[[Any, Any], Any]] | None = None
        ) -> FitResult:
    """Train in memory: :func:`train_epochs` collected — the same compiled epochs as
    :func:`~mlwork.train.lifecycle.train_and_evaluate`, without a workdir, checkpoints or plots.

    Args:
      config: the run (a population when ``config.population > 1`` or ``config.sweep``).
      dataset: the data: an :class:`~mlwork.data.ArrayDataset` (any arrays) or a MNIST-family
        :class:`~mlwork.data.Dataset`.
      model, tx: replace the model / optimizer ``config`` names (see :func:`~mlwork.train.programs.prepare`).
      loss, metrics: a loss function and extra metric functions (see :func:`mlwork.train.task.make_task`).
      member_block: a population's members per vmapped block (speed only).

    Returns:
      A :class:`FitResult`. Evaluate it with ``make_evaluator(result.run)``.

    Raises:
      RunError, NonFiniteLossError: see :func:`~mlwork.train.programs.prepare` and :func:`train_epochs`.

    Example (training takes seconds to minutes, so this is not run here):

    .. code-block:: python

        from mlwork.data import load_dataset
        from mlwork.train import TrainConfig, fit, make_evaluator

        result = fit(TrainConfig(epochs=2), load_dataset("mnist"))
        result.history[-1]["val_accuracy"]          # e.g. 0.97
        evaluate = make_evaluator(result.run)
        float(evaluate(result.state.params, result.state.model_state, *result.run.test)["accuracy"])
    """
    run = prepare(config, dataset, model=model, tx=tx, loss=loss, metrics=metrics)
    state = init_state(run)
    compiled = compile_run(run, state, block=member_block)
    history: list[dict[str, Any]] = []
    best = None
    for event in train_epochs(run, state, compiled):
        history.extend(event.rows)
        state, best = event.state, event.best
    return FitResult(state, history, run, compiled.compile_time_s, best, compiled.member_block)
