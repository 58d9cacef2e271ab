"""``train_and_evaluate(config, workdir)``: a run's whole life in a workdir, one model or many.

The same code serves a single model and a population (see :mod:`mlwork.train.programs`):

1. **Refuse before writing.** The config was validated when it was built; :func:`prepare`
   checks it against the devices and the data; the workdir is checked read-only (another run
   in it, nothing to resume, a ``--resume`` whose config differs from the recorded one).
2. **Lock** the workdir (one writer; the kernel frees the lock when the process dies, and the
   run's end, by any exit it answers, removes the lock file; a file left by a killed run is
   taken over, with a line naming its pid).
3. **Resume** from the newest intact checkpoint: one that does not fit the request is refused
   (nothing is moved); damaged ones (unreadable, wrong bytes) are named, moved to
   ``damaged_checkpoints/`` and skipped; a run stopped before its first checkpoint starts over.
4. **Train** with :func:`~mlwork.train.loop.train_epochs` under a
   :class:`~mlwork.train.guard.PreemptionGuard`: each epoch's checkpoint (latest N + best by
   validation) and ``metrics.jsonl`` row are written in this module's loop body; SIGTERM/SIGINT
   mid-epoch saves the step reached with the epoch's partial sums, and so does each checkpoint
   on a clock (``checkpoint_every_steps``/``_minutes``: Orbax's save-decision policy, asked after
   every compiled chunk).
5. **Report**: the best checkpoint (each member's best epoch, for a population) is evaluated on
   the test split; ``summary.json`` and the plots are written.

Outputs: ``config.json`` (the :class:`TrainConfig` fields plus what the run found: data source,
shapes, parameter count, members; ``TrainConfig.from_json`` reads it back), ``metrics.jsonl``,
``summary.json``, ``checkpoints/``, ``plots/``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import statistics
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import optax
from tqdm.auto import tqdm

from mlwork import nn
from mlwork.data.arrays import ArrayDataset, as_arrays
from mlwork.data.sources import Dataset
from mlwork.train import checkpoint as ckpt
from mlwork.train import parallel, report
from mlwork.train.config import TrainConfig
from mlwork.train.errors import CheckpointError, NonFiniteLossError, Preempted, RunError, WorkdirInUse
from mlwork.train.guard import PreemptionGuard, WorkdirLock
from mlwork.train.logs import epoch_line, use_progress_bar
from mlwork.train.loop import EpochEnd, Interrupted, MidEpoch, stopped_before, train_epochs
from mlwork.train.programs import (
    Run,
    checkpoint_tree,
    compile_run,
    init_state,
    make_evaluator,
    prepare,
    split_tree,
)
from mlwork.train.provenance import data_sha256, reproducibility_record, run_metadata
from mlwork.train.tensorboard import TensorBoardWriter


def _has_checkpoints(workdir: Path) -> bool:
    folder = workdir / "checkpoints"
    return folder.is_dir() and any(p.name.isdigit() for p in folder.iterdir())


def holds_run(workdir: str | Path) -> bool:
    """Whether ``workdir`` holds a run (its ``config.json`` or a checkpoint)."""
    workdir = Path(workdir)
    return (workdir / "config.json").exists() or _has_checkpoints(workdir)


def resolve_resume(workdir: str | Path, resume: bool | str) -> bool:
    """``resume`` as a yes or no: ``"auto"`` resumes when ``workdir`` holds a run and starts one
    otherwise (so a scheduler can rerun one command after every preemption).

    Raises:
      RunError: ``resume`` is not ``True``, ``False`` or ``"auto"``.
    """
    if resume == "auto":
        return holds_run(workdir)
    if not isinstance(resume, bool):
        raise RunError(f"resume must be True, False or 'auto', got {resume!r}")
    return resume


def check_workdir(workdir: Path, config: TrainConfig, data_source: str | None, resume: bool | str, *,
                  data_hash: str | None = None, task: Any = None) -> bool:
    """Refuse a workdir that is (or lies under) a file, holds another run, or nothing to resume,
    or a run that differs from ``config`` (read-only; ``data_source`` ``None``: not compared, for
    a check before the data are loaded), from the data (``data_hash``, the
    :func:`~mlwork.train.provenance.data_sha256` of the arrays, when given) or from the task
    (``task``, when given: its loss, metrics and monitored metric by name, so a run trained with a
    loss function is not resumed without it). Returns ``True`` when a ``resume`` must start from
    scratch: the run was stopped before its first checkpoint.

    Raises:
      RunError: naming what differs or what is missing.
    """
    workdir = Path(workdir)
    for folder in (workdir, *workdir.parents):  # the nearest existing one must be a folder
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise RunError(f"workdir {workdir} cannot be a folder: {folder} is a file; choose another --workdir")
            break
    resume = resolve_resume(workdir, resume)
    existing = workdir / "config.json"
    has_checkpoints = _has_checkpoints(workdir)
    if not resume:
        if existing.exists() or has_checkpoints:
            raise RunError(f"workdir {workdir} already holds a run; pass --resume to continue it or "
                           "choose another --workdir")
        return False
    if not has_checkpoints and not existing.exists():
        missing = "" if workdir.is_dir() else " (the folder does not exist)"
        raise RunError(f"--resume: no checkpoint in {workdir / 'checkpoints'}{missing}; --resume auto starts a "
                       "run when there is none")
    if not has_checkpoints:  # stopped before its first checkpoint: nothing to continue, any config starts over
        return True
    if existing.exists():
        try:
            old = json.loads(existing.read_text())
        except (OSError, ValueError) as e:
            raise RunError(f"--resume: cannot read {existing}: {e}") from None
        if "members" in old and "population" not in old:  # a population recorded before config v2
            raise RunError(f"workdir {workdir} holds a population recorded by an older mlwork; use another --workdir")
        differs = config.resume_mismatch(old)
        if differs:
            raise RunError(f"--resume: workdir {workdir} holds a run with {differs}; change the flag back or use "
                           "another --workdir (nothing was changed)")
        old_source = old.get("data_source")
        if data_source is not None and old_source not in (None, data_source):
            raise RunError(f"--resume: workdir {workdir} was trained on {old_source}, not {data_source}")
        old_hash = old.get("data_sha256")
        if data_hash is not None and old_hash not in (None, data_hash):
            raise RunError(f"--resume: workdir {workdir} was trained on other data (SHA-256 {old_hash[:12]}..., these "
                           f"arrays {data_hash[:12]}...: {data_source or 'the data'} changed since); resume with the "
                           "run's data or use another --workdir")
        differs = None if task is None else _task_mismatch(old, task)
        if differs:
            raise RunError(f"--resume: workdir {workdir} holds a run with {differs}; pass the run's own (nothing "
                           "was changed)")
    return not has_checkpoints


def _keep_first_argv(record: dict[str, Any], recorded_config: Path) -> None:
    """In this invocation's reproducibility ``record``: ``argv`` back to the command that started
    the run (from its ``config.json``), this one's appended to ``resumed_argv``."""
    try:
        before = json.loads(recorded_config.read_text()).get("reproducibility") or {}
    except (OSError, ValueError):
        return
    if "argv" in before:
        record["resumed_argv"] = [*before.get("resumed_argv", []), record["argv"]]
        record["argv"] = before["argv"]


def _task_mismatch(recorded: dict[str, Any], task: Any) -> str | None:
    """The first of the recorded loss, metrics and monitored metric (by name) that ``task`` does not match."""
    for key, now in (("loss_name", task.loss_name), ("metric_names", list(task.metrics)),
                     ("monitored", task.monitor), ("monitored_mode", task.mode)):
        then = recorded.get(key)
        if then is not None and then != now:
            name = {"loss_name": "loss", "metric_names": "metrics", "monitored": "monitor_metric",
                    "monitored_mode": "monitor_mode"}[key]
            return f"{name} {then!r}, not {now!r}"
    return None


def _restore(manager, run: Run, template: Any, log: Callable[[str], None]) -> tuple[Any, dict, int]:
    """The newest intact checkpoint; a checkpoint that does not fit ``template`` is a mismatched
    request (RunError, nothing moved), not damage."""
    latest = manager.latest_step()
    if latest is not None:
        differs = ckpt.structure_mismatch(manager, latest, template)
        if differs:
            raise RunError(f"--resume: checkpoint {latest} in {manager.directory} does not fit {run.who.kind} of this "
                           f"config ({differs}); nothing was changed")
    return ckpt.restore_latest_intact(manager, template, warn=log, quarantine=True)


def run_record(run: Run, dataset: Dataset, state: Any) -> dict[str, Any]:
    """What ``config.json`` records beside the config: what the run found (the keys of
    ``RUN_RECORD_KEYS``): the data source and what its model expects
    (``run_metadata()``), the parameter count, steps per epoch, a
    population's members, and the :func:`~mlwork.train.provenance.reproducibility_record`."""
    params = run.who.first(state.params)
    record = {"data_source": dataset.source, "n_params": nn.count_params(params),
              "steps_per_epoch": run.steps_per_epoch, **run_metadata(run.data, run.mean, run.std, run.task),
              "test_split": "validation" if run.test_is_val else "test",
              "reproducibility": reproducibility_record(run.mesh), **run.who.record()}
    return record


def train_and_evaluate(config: TrainConfig, workdir: str | Path, dataset: Dataset | ArrayDataset, *,
                       resume: bool | str = False, stop_after: int | None = None, progress: bool = True,
                       log: Callable[[str], None] = print, plots: bool = True, model: nn.Model | None = None,
                       tx: optax.GradientTransformation | None = None, member_block: int | None = None,
                       loss: Callable[[Any, Any], Any] | None = None,
                       metrics: dict[str, Callable[[Any, Any], Any]] | None = None) -> dict[str, Any]:
    """Train ``config`` on ``dataset`` in ``workdir`` and evaluate its best checkpoint on the test
    split; return the summary (also written to ``summary.json``). One model, or a population when
    ``config.population > 1`` or ``config.sweep`` is set — with the same guarantees.

    Args:
      config: the run's knobs (validated when built).
      workdir: the run's folder (created; one run per folder).
      dataset: any arrays (an :class:`~mlwork.data.ArrayDataset`: :func:`mlwork.data.from_arrays`,
        :func:`mlwork.data.load_npz`), or a MNIST-family :class:`~mlwork.data.Dataset`
        (:func:`mlwork.data.load_dataset`).
      resume: continue from the newest intact checkpoint with the same data order, RNG stream,
        schedule position and early-stopping counters: the final parameters equal an
        uninterrupted run's bit for bit (CPU). A run stopped before its first checkpoint starts
        over. ``"auto"``: resume when ``workdir`` holds a run, else start one.
      stop_after: end this invocation after that many epochs, as if interrupted.
      progress: a tqdm bar per epoch.
      log: where one-line messages go (resume, fallbacks, early stopping).
      plots: write the PNGs in ``workdir/plots``.
      model, tx: replace the model / optimizer ``config`` names (single models for ``tx``); the rest of
        the pipeline (data, checkpoints, metrics, plots) is unchanged.
      member_block: a population's members per vmapped block (speed only).
      loss, metrics: a loss function and extra metric functions (see
        :func:`mlwork.train.task.make_task`); a run trained with them is loaded back with
        :func:`~mlwork.train.load_run` all the same (prediction needs neither).

    Returns:
      The summary: the test loss and every metric (``test_<metric>``) of the best checkpoint by
      the monitored validation metric, epochs run, timings, ``params_sha256`` of the final
      parameters; for a population, every member's and the ensemble's.

    Raises:
      RunError: a config the devices or data cannot run, a workdir holding another run, a
        ``resume`` with nothing to resume or a config or checkpoint that differs (nothing written).
      WorkdirInUse: another process is training in ``workdir``.
      NonFiniteLossError: the loss became NaN/inf (nothing saved for that epoch; names the member).
      Preempted: SIGTERM or SIGINT; a checkpoint was written first.
      CheckpointError: a checkpoint could not be written (earlier ones intact), or none is intact.

    Example::

        from mlwork.data import load_dataset
        from mlwork.train import TrainConfig, train_and_evaluate
        summary = train_and_evaluate(TrainConfig(epochs=2), "runs/demo", load_dataset("mnist"))
        summary["test_accuracy"]
    """
    workdir = Path(workdir)
    log, progress, primary = _process_log(log), progress and parallel.is_primary(), parallel.is_primary()
    dataset = as_arrays(dataset)
    data_hash = data_sha256(dataset)
    check_workdir(workdir, config, dataset.source, resume, data_hash=data_hash)  # read-only, before any write
    run = prepare(config, dataset, model=model, tx=tx, loss=loss, metrics=metrics)
    clock = ckpt.clock_policy(config.checkpoint_every_steps, config.checkpoint_every_minutes, run.steps_per_epoch)
    with _workdir_lock(workdir) as lock, PreemptionGuard() as guard, \
            contextlib.closing(ckpt.checkpoint_manager(workdir, keep=config.keep_checkpoints,
                                                       keep_best=config.keep_best, save_policy=clock)) as manager:
        if lock.stale_pid is not None:
            log(f"workdir {workdir}: the run that held it (pid {lock.stale_pid}) ended without releasing it "
                "(killed?); taking it over")
        resuming = resolve_resume(workdir, resume)  # "auto": does the workdir hold a run, now that we hold the lock
        fresh = check_workdir(workdir, config, dataset.source, resuming, data_hash=data_hash,
                              task=run.task)  # again, now that we hold the lock; the task too
        parallel.all_processes(True)  # every process has checked before the primary writes
        requested = lambda: parallel.any_process(guard.requested)  # noqa: E731 (one signalled process stops all)
        tree, history, partial = _start(run, manager, workdir, resuming and not fresh, log)
        if run.stream is not None:
            log(run.stream.notice)
        if resuming and fresh:
            log(f"no checkpoint in {workdir} yet (stopped before its first): starting from scratch")
        elif resume == "auto" and not resuming:
            log(f"--resume auto: no run in {workdir} yet: starting one")
        meta = {**config.to_dict(), **run_record(run, dataset, split_tree(run, tree)[0]), "data_sha256": data_hash}
        if resuming and not fresh:  # the command that started the run stays; each resume's is added
            _keep_first_argv(meta["reproducibility"], workdir / "config.json")
        if primary:
            report.write_json(workdir / "config.json", meta)
            report.write_metrics(workdir / "metrics.jsonl", history)
        state, best = split_tree(run, tree)
        if progress:
            log(f"compiling the training programs ({config.model}{run.who.tag(', {} members')}) ...")
        compiled = compile_run(run, state, block=member_block)
        stopped_early = False
        bar_wanted = progress and use_progress_bar()
        board = TensorBoardWriter(workdir) if primary and TensorBoardWriter.available() else None
        if primary and board is None:
            log("tensorboardX is not installed: no TensorBoard events for this run")
        with _progress_bar(run, _epoch(run, tree), bar_wanted) as bar, \
                contextlib.closing(board) if board is not None else contextlib.nullcontext():
            try:
                on_clock = None if clock is None else manager.should_save
                for event in train_epochs(run, state, compiled, best=best, partial=partial, stop_after=stop_after,
                                          interrupt=requested, checkpoint=on_clock):
                    state, best = event.state, event.best
                    _check_workdir_still_there(lock, _step(run, state))
                    if isinstance(event, MidEpoch):  # a checkpoint on the clock: save the step reached, go on
                        ckpt.save(manager, _step(run, state), checkpoint_tree(run, state, best),
                                  {"history": history, "config": meta, "partial": event.partial})
                        continue
                    if isinstance(event, Interrupted):  # SIGTERM/SIGINT mid-epoch: save the step reached
                        ckpt.save(manager, _step(run, state), checkpoint_tree(run, state, best),
                                  {"history": history, "config": meta, "partial": event.partial})
                        raise Preempted(_step(run, state), event.epoch, workdir, guard.signal_name or "SIGTERM")
                    history.extend(event.rows)
                    score = event.val_metric if run.task.mode == "max" else -event.val_metric
                    ckpt.save(manager, _step(run, state), checkpoint_tree(run, state, best),
                              {"history": history, "config": meta}, epoch=event.epoch, score=score)
                    if primary:
                        report.write_metrics(workdir / "metrics.jsonl", history)
                    for row in event.rows if board is not None else ():
                        board.write_row(row)
                    _show(bar, event, run.task.monitor)
                    if progress and not bar_wanted:  # not a terminal: one line per epoch (Keras' verbose=2)
                        log(epoch_line(run.who.unsplit(event.rows), config.epochs))
                    if event.stop:
                        stopped_early = True
                        log(f"early stopping after epoch {event.epoch}: no improvement in validation "
                            f"{run.task.monitor} for {config.patience} epochs")
                    elif requested() and event.epoch < config.epochs:
                        raise Preempted(_step(run, state), event.epoch, workdir, guard.signal_name or "SIGTERM")
            except NonFiniteLossError as e:  # say what is on disk
                raise NonFiniteLossError(e.epoch, e.step, member=e.member, detail=_detail(run, e.member),
                                         checkpoint_dir=Path(str(manager.directory)),
                                         has_checkpoint=bool(manager.all_steps())) from None
            finally:
                ckpt.finish(manager)  # a checkpoint being written is finished (or its failure reported)
            if progress:
                log("evaluating the best checkpoint on the test split"
                    + run.who.tag(" (each member's best epoch, and the ensemble)"))
            test, best_epoch, best_val = _evaluate_best(run, manager, state, best)
            summary = report.summarize(run, dataset, history, state, test, compile_time_s=compiled.compile_time_s,
                                       best_epoch=best_epoch, best_val=best_val,
                                       stopped_early=stopped_early or stopped_before(run, state),
                                       member_block=compiled.member_block)
            summary["reproducibility"] = meta["reproducibility"]
            if primary:
                report.write_json(workdir / "summary.json", summary)
            if board is not None:
                board.write_summary(summary)
    if plots and primary:
        report.plot(workdir / "plots", run, dataset, history, test)
    return summary


def _check_workdir_still_there(lock: WorkdirLock, step: int) -> None:
    """Writing into a workdir someone removed (or replaced) would recreate half a run there.
    The primary holds the lock; every process learns its answer."""
    if not parallel.all_processes(lock.held() if parallel.is_primary() else True):
        raise CheckpointError(f"could not write checkpoint {step}: the workdir {lock.path.parent} was removed or "
                              "replaced during the run")


@contextlib.contextmanager
def _workdir_lock(workdir: Path):
    """The workdir's :class:`WorkdirLock`, held by the primary process; in a multi-process job
    every process learns whether the primary got it, and all refuse together if not."""
    lock = WorkdirLock(workdir)
    if jax.process_count() == 1:
        with lock:
            yield lock
        return
    refused = None
    if parallel.is_primary():
        try:
            lock.__enter__()
        except WorkdirInUse as e:
            refused = e
    if not parallel.all_processes(refused is None):
        raise refused or WorkdirInUse(f"workdir {workdir} is in use by another run (process 0 could not lock it); "
                                      "wait for it or use another --workdir")
    try:
        yield lock
    finally:
        lock.__exit__(None, None, None)


def _process_log(log: Callable[[str], None]) -> Callable[[str], None]:
    """``log`` as is on the primary process; the others prefix ``[process i/n]``."""
    prefix = parallel.process_prefix()
    if not prefix or parallel.is_primary():
        return log
    return lambda message: log(prefix + message)


def _start(run: Run, manager, workdir: Path, restore: bool, log: Callable[[str], None]
           ) -> tuple[Any, list[dict[str, Any]], dict[str, Any] | None]:
    """``(checkpoint tree, history, partial sums)`` to start from: fresh, or the newest intact checkpoint."""
    tree = checkpoint_tree(run, init_state(run))
    if not restore:
        return tree, [], None
    tree, saved, step = _restore(manager, run, tree, log)
    log(f"resumed from step {step} (epoch {_epoch(run, tree)}) in {manager.directory}")
    return tree, [r for r in saved.get("history", []) if r["epoch"] <= _epoch(run, tree)], saved.get("partial")


def _evaluate_best(run: Run, manager, state: Any, best: tuple[Any, Any] | None
                   ) -> tuple[dict[str, Any], int | None, float | None]:
    """Test figures of the best checkpoint (a single model) or of each member's best epoch and
    their ensemble (a population): ``(test metrics, best epoch, best validation accuracy)``."""
    variables, best_epoch, best_val = run.who.best_variables(manager, state, best)
    test = jax.device_get(make_evaluator(run)(*variables, *run.test))
    test.update(run.who.ensemble_figures(run, variables))
    return test, best_epoch, best_val


def _progress_bar(run: Run, initial: int, progress: bool):
    config = run.config
    return tqdm(total=config.epochs, initial=initial, unit="epoch", disable=None if progress else True,
                desc=f"{run.data.name}-{config.model.rpartition(':')[2]}{run.who.tag(' x{}')}")


def _epoch(run: Run, tree: Any) -> int:
    return run.who.scalar(split_tree(run, tree)[0].epoch)


def _step(run: Run, state: Any) -> int:
    return run.who.scalar(state.step)


def _detail(run: Run, member: int | None) -> str:
    return run.who.describe(member)


def _show(bar, event: EpochEnd, monitor: str = "accuracy") -> None:
    bar.update(1)
    rows = event.rows
    bar.set_postfix(loss=f"{statistics.fmean(r['train_loss'] for r in rows):.4f}",
                    **{f"val_{monitor}": f"{statistics.fmean(r[f'val_{monitor}'] for r in rows):.4f}"})


class _QuietFileHandler(logging.FileHandler):
    """A log file that never complains: on a full, read-only or vanished disk its records are
    dropped rather than printed as logging tracebacks on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(OSError):  # opening the file (at the first record) can fail too
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: ARG002, N802
        pass


def quiet_orbax_logs(log_file: Path | None = None) -> None:
    """Send absl/Orbax log records, exceptions that end background threads (Orbax's writers
    failing on a bad disk) and unraisable exceptions, to ``log_file`` (opened at the first record; nothing is created
    before) instead of stderr, so a failed write shows the one-line error, not hundreds of lines
    of Orbax's own logging. For command lines: it changes the process's logging."""
    for name in ("absl", "orbax", "jax._src.distributed"):
        logger = logging.getLogger(name)
        logger.propagate = False
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(_QuietFileHandler(log_file, delay=True) if log_file is not None else logging.NullHandler())
    orbax_log = logging.getLogger("orbax")

    def thread_exception(args: threading.ExceptHookArgs) -> None:  # Orbax's writer threads, failing on a bad disk
        name = args.thread.name if args.thread is not None else "?"
        orbax_log.error("exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    def unraisable(info: sys.UnraisableHookArgs) -> None:  # e.g. Orbax's event loop closing under a failed save
        orbax_log.error("unraisable exception in %r", info.object,
                        exc_info=(info.exc_type, info.exc_value, info.exc_traceback))

    threading.excepthook = thread_exception
    sys.unraisablehook = unraisable
    try:
        from absl import logging as absl_logging

        absl_logging.set_stderrthreshold("fatal")
        absl_logging.use_python_logging(quiet=True)
    except ImportError:
        pass
