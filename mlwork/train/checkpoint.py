"""Orbax checkpoints that keep both the latest N and the best-by-validation, and refuse garbage.

A checkpoint is a pytree of arrays (for a run, the whole :class:`~mlwork.train.state.TrainState`:
params, model state, optimizer state, step, epoch, RNG key data, early-stopping counters) plus a
JSON record (the per-epoch history, the config, and the SHA-256 of every array saved), stored
under ``<workdir>/checkpoints/<step>`` — numbered by optimizer step, so a checkpoint written
mid-epoch (on preemption) has its own number. Orbax writes each one to a temporary folder and
renames it when complete, so a killed save leaves no half checkpoint among the finished ones
(the leftovers are cleaned up when the next run opens the folder). Deleting an old checkpoint
is atomic too: Orbax renames it into ``checkpoints/_deleted/`` and mlwork empties that folder
before the next save, so a run killed mid-deletion leaves no half-deleted checkpoint behind.

Preservation: ``LatestN(keep)`` *or* ``BestN(1)`` by validation accuracy (ties: the earliest),
so saving the best never evicts the latest and breaks resume, and vice versa. Mid-epoch
checkpoints carry no validation metric and are kept only while they are among the latest.

Restoring checks the record's SHA-256 against the arrays read back; ``restore_latest_intact()``
walks back from the newest checkpoint past damaged ones (missing or truncated files, wrong
bytes), warning about each, so a run never continues from garbage.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from mlwork.train.errors import CheckpointError
from mlwork.train.report import params_sha256


def _rank(metrics: dict[str, Any]) -> tuple[float, int]:
    # The highest score (the monitored validation metric, negated when lower is better) wins; among
    # equals, the earliest epoch (as the trainer's strict-improvement rule picks it). Runs saved
    # before the score existed ranked by validation accuracy.
    return float(metrics["score"] if "score" in metrics else metrics["val_accuracy"]), -int(metrics["epoch"])


@dataclasses.dataclass(frozen=True)
class EveryNStepsOfEpoch:
    r"""An Orbax save-decision policy: save when the step's position in its epoch is a multiple of ``n``.

    Orbax's own ``FixedIntervalPolicy`` counts global steps (``step % n == 0``); epochs here need
    not be a multiple of ``n`` steps, and the compiled chunks start at each epoch's start, so the
    position counts from there: step :math:`t` saves when :math:`(t \bmod S) \bmod n = 0`, with
    :math:`S` = ``steps_per_epoch`` (an epoch's last step is saved by the epoch's own checkpoint).

    Args:
      n: steps between checkpoints, >= 1.
      steps_per_epoch: :math:`S`, >= 1.

    Example:
      >>> from types import SimpleNamespace
      >>> from mlwork.train.checkpoint import EveryNStepsOfEpoch
      >>> policy = EveryNStepsOfEpoch(n=4, steps_per_epoch=10)
      >>> [t for t in range(1, 21) if policy.should_save(SimpleNamespace(step=t), [], context=None)]
      [4, 8, 10, 14, 18, 20]
    """

    n: int
    steps_per_epoch: int

    def __post_init__(self) -> None:
        if self.n < 1 or self.steps_per_epoch < 1:
            raise ValueError(f"n and steps_per_epoch must be >= 1, got n={self.n}, "
                             f"steps_per_epoch={self.steps_per_epoch}")

    def should_save(self, step: Any, previous_steps: Sequence[Any], *, context: Any) -> bool:  # noqa: ARG002
        return (int(step.step) % self.steps_per_epoch) % self.n == 0


def clock_policy(every_steps: int | None, every_minutes: float | None, steps_per_epoch: int) -> Any:
    """The save-decision policy of checkpoints on a clock, or ``None`` when neither is set.

    ``every_steps``: :class:`EveryNStepsOfEpoch`; ``every_minutes``: Orbax's
    ``ContinuousCheckpointingPolicy`` with a minimum interval of that many minutes since the last
    checkpoint (rounded to whole seconds, at least one; it also skips a step while an
    asynchronous save is still being written, and in a multi-process job the primary decides for
    all); both: either one (Orbax's ``AnySavePolicy``).

    Args:
      every_steps: steps between mid-epoch checkpoints, or ``None``.
      every_minutes: minutes between checkpoints, or ``None``.
      steps_per_epoch: optimizer steps per epoch.

    Returns:
      An Orbax ``SaveDecisionPolicy`` for :func:`checkpoint_manager`'s ``save_policy``, or ``None``.
    """
    chosen = []
    if every_steps is not None:
        chosen.append(EveryNStepsOfEpoch(int(every_steps), int(steps_per_epoch)))
    if every_minutes is not None:
        chosen.append(policies.ContinuousCheckpointingPolicy(minimum_interval_secs=max(1, round(every_minutes * 60))))
    if not chosen:
        return None
    return chosen[0] if len(chosen) == 1 else policies.AnySavePolicy(chosen)


def checkpoint_manager(workdir: str | Path, keep: int = 3, *, keep_best: int = 1, read_only: bool = False,
                       async_save: bool = True, save_policy: Any = None) -> ocp.CheckpointManager:
    """An Orbax manager for ``<workdir>/checkpoints`` that keeps the latest ``keep`` and the best.

    A checkpoint is kept while it is among the latest ``keep`` *or* among the ``keep_best`` with
    the best validation score (ties: the earliest epoch); mid-epoch checkpoints carry no metric
    and are kept only while among the latest. Opening it (not ``read_only``) empties ``checkpoints/_deleted/`` and
    removes the temporary folders of killed saves.

    Args:
      workdir: the run's folder; checkpoints go in its ``checkpoints`` subfolder (created unless
        ``read_only``).
      keep: how many of the latest checkpoints to keep, at least 1.
      keep_best: how many of the best-scoring checkpoints to keep besides them, at least 1
        (Orbax's ``BestN``; the best of them is the one :func:`best_step` answers).
      read_only: open for reading only: nothing is created, cleaned or deleted.
      async_save: write checkpoints in a background thread (the run waits for the previous save
        before the next one, and at the end).
      save_policy: an Orbax save-decision policy that ``manager.should_save(step)`` asks (see
        ``clock_policy``); the trainer's own saves (each epoch's end, preemption) are forced.

    Returns:
      An ``orbax.checkpoint.CheckpointManager``; close it when done (``manager.close()``).

    Raises:
      ValueError: ``keep < 1`` or ``keep_best < 1``.

    Example:
      >>> import tempfile
      >>> import numpy as np
      >>> from mlwork.train import best_step, checkpoint_manager
      >>> from mlwork.train.checkpoint import save
      >>> tmp = tempfile.TemporaryDirectory()
      >>> manager = checkpoint_manager(tmp.name, keep=1, async_save=False)
      >>> for step, accuracy in [(10, 0.90), (20, 0.95), (30, 0.93)]:
      ...     save(manager, step, {"w": np.zeros(3, np.float32)}, {}, val_accuracy=accuracy, epoch=step // 10)
      >>> manager.all_steps(), best_step(manager)  # the latest (30) and the best (20)
      ([20, 30], 20)
      >>> manager.close()
      >>> tmp.cleanup()
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (checkpoints to keep), got {keep}")
    if keep_best < 1:
        raise ValueError(f"keep_best must be >= 1 (best checkpoints to keep), got {keep_best}")
    directory = Path(workdir).absolute() / "checkpoints"
    if not read_only:
        _purge_deleted(directory)
    options = ocp.CheckpointManagerOptions(
        todelete_subdir=None if read_only else TODELETE,
        preservation_policy=policies.AnyPreservationPolicy([
            policies.LatestN(n=keep),
            policies.BestN(get_metric_fn=_rank, reverse=False, n=keep_best,
                           keep_checkpoints_without_metrics=False),
        ]),
        best_fn=_rank,  # also makes Orbax record the metrics and answer best_step()
        best_mode="max",
        save_decision_policy=save_policy,
        enable_async_checkpointing=async_save,
        read_only=read_only,
        create=not read_only,
        cleanup_tmp_directories=not read_only,
    )
    return ocp.CheckpointManager(directory, options=options,
                                 item_handlers={"state": ocp.StandardCheckpointHandler(),
                                                "record": ocp.JsonCheckpointHandler()})


#: Where Orbax moves checkpoints it evicts (an atomic rename), emptied by mlwork before each save.
TODELETE = "_deleted"


def _purge_deleted(directory: Path) -> None:
    """Remove the evicted checkpoints Orbax renamed into ``directory/_deleted`` (an interrupted
    removal here leaves only more of them, never a half checkpoint among the steps)."""
    import shutil

    folder = Path(directory) / TODELETE
    if folder.is_dir() and jax.process_index() == 0:  # the primary manages the folder (multi-process)
        for entry in folder.iterdir():
            shutil.rmtree(entry, ignore_errors=True)


def save(manager: ocp.CheckpointManager, step: int, state: Any, record: dict[str, Any],
         val_accuracy: float | None = None, epoch: int | None = None, *, score: float | None = None) -> None:
    """Save ``state`` (any pytree of arrays) and the JSON ``record`` as checkpoint ``step``, with
    the validation accuracy of ``epoch`` when there is one (a mid-epoch checkpoint has none) — or,
    generally, its ``score``: the monitored validation metric, negated when lower is better (the
    highest score is the best checkpoint).

    Raises :class:`CheckpointError` naming the folder when the write fails (a full or read-only
    disk), including the failure of an earlier asynchronous save that surfaces now, and
    ``ValueError``, before anything is written, when ``state`` holds a typed PRNG key
    (``jax.random.key``): store ``jax.random.key_data(key)`` and rebuild the key with
    ``jax.random.wrap_key_data`` after restoring (as :class:`~mlwork.train.state.TrainState` does).
    """
    typed = [jax.tree_util.keystr(path) for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]
             if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key)]
    if typed:
        raise ValueError(f"state holds typed PRNG keys at {', '.join(typed)}; checkpoints store arrays: save "
                         "jax.random.key_data(key) and restore it with jax.random.wrap_key_data")
    _purge_deleted(Path(str(manager.directory)))
    record = {**record, "state_sha256": params_sha256(state)}
    if score is None:
        score = val_accuracy
    metrics = None if score is None else {"score": float(score), "epoch": int(epoch)}
    try:
        manager.save(int(step), args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                        record=ocp.args.JsonSave(record)),
                     metrics=metrics, force=True)
    except Exception as e:  # Orbax raises whatever the filesystem raised, possibly from a thread
        raise CheckpointError(f"could not write checkpoint {step} to {manager.directory}: {_reason(e)}") from e


def wait(manager: ocp.CheckpointManager) -> None:
    """Wait for asynchronous saves; a failed one raises :class:`CheckpointError`."""
    try:
        manager.wait_until_finished()
    except Exception as e:
        raise CheckpointError(f"could not write checkpoint to {manager.directory}: {_reason(e)}") from e


def finish(manager: ocp.CheckpointManager) -> None:
    """Wait for asynchronous saves (a failed one raises :class:`CheckpointError`), then remove the
    checkpoints Orbax evicted into ``checkpoints/_deleted/`` and that folder: a run that ends,
    finished or stopped, leaves only the checkpoints it keeps."""
    wait(manager)
    directory = Path(str(manager.directory))
    _purge_deleted(directory)
    with contextlib.suppress(OSError):  # not empty (another process's?) or gone: left as it is
        if jax.process_index() == 0:
            (directory / TODELETE).rmdir()


def _reason(e: BaseException) -> str:
    while e.__cause__ is not None and not isinstance(e, OSError):
        e = e.__cause__
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:300]


def _abstract(template: Any) -> Any:
    def abstract(x):
        x = np.asarray(x) if not isinstance(x, jax.Array) else x
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None))

    return jax.tree.map(abstract, template)


def restore(manager: ocp.CheckpointManager, template: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restore checkpoint ``step`` (default: the latest) into the structure, shapes, dtypes and
    shardings of ``template`` (a freshly initialised state), and verify its SHA-256. Returns
    ``(state, record)``; raises :class:`CheckpointError` if it is missing, unreadable or damaged."""
    if step is None:
        step = manager.latest_step()
        if step is None:
            raise CheckpointError(f"no checkpoint in {manager.directory}")
    try:
        restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(_abstract(template)),
                                                                 record=ocp.args.JsonRestore()))
    except Exception as e:
        raise CheckpointError(f"checkpoint {step} in {manager.directory} cannot be read: {_reason(e)}") from e
    state, record = restored["state"], dict(restored["record"] or {})
    expected = record.get("state_sha256")
    if expected is not None and params_sha256(state) != expected:
        raise CheckpointError(f"checkpoint {step} in {manager.directory} is damaged: its arrays do not match the "
                              "SHA-256 recorded when it was saved")
    return state, record


def structure_mismatch(manager: ocp.CheckpointManager, step: int, template: Any) -> str | None:
    """How checkpoint ``step``'s saved arrays differ from ``template``'s (names, shapes, dtypes),
    as one phrase, or ``None`` when they fit — or when the metadata cannot be read (that is damage,
    for ``restore_latest_intact()`` to judge). A checkpoint of another kind of run (a population
    against a single model, another member count or model) does not fit; it is not damaged."""
    try:
        saved = manager.item_metadata(step)["state"]
        saved = {leaf.name: (tuple(leaf.shape), np.dtype(leaf.dtype)) for leaf in jax.tree.leaves(
            getattr(saved, "tree", saved))}
    except Exception:  # unreadable metadata: damage, not a mismatch
        return None
    if not saved:
        return None
    wanted = {jax.tree_util.keystr(path, simple=True, separator="."): (tuple(np.shape(x)), np.dtype(x.dtype))
              for path, x in jax.tree_util.tree_flatten_with_path(template)[0]}
    if saved == wanted:
        return None
    missing, extra = sorted(set(wanted) - set(saved)), sorted(set(saved) - set(wanted))
    if missing or extra:
        return (f"it holds {len(saved)} arrays, this run needs {len(wanted)}"
                + (f"; e.g. it lacks {missing[0]}" if missing else f"; e.g. it has {extra[0]}"))
    name = next(n for n in sorted(wanted) if wanted[n] != saved[n])
    return f"{name} is {saved[name][0]} {saved[name][1]} there, {wanted[name][0]} {wanted[name][1]} here"


def restore_latest_intact(manager: ocp.CheckpointManager, template: Any, warn: Callable[[str], None] = print,
                          quarantine: bool = False) -> tuple[Any, dict, int]:
    """The newest checkpoint that restores and verifies; each damaged one on the way is named in
    a warning. With ``quarantine`` (a run about to continue), damaged checkpoints are moved to
    ``<workdir>/damaged_checkpoints/`` for inspection, out of the way of the steps that will be
    saved again. Raises :class:`CheckpointError` if none is intact."""
    steps = sorted(manager.all_steps(), reverse=True)
    if not steps:
        raise CheckpointError(f"no checkpoint in {manager.directory}")
    damaged = []
    try:
        for step in steps:
            try:
                state, record = restore(manager, template, step)
                return state, record, step
            except CheckpointError as e:
                warn(f"warning: {e}; falling back to an earlier checkpoint")
                damaged.append(step)
        raise CheckpointError(f"no intact checkpoint in {manager.directory} (tried steps {steps})")
    finally:
        if quarantine and damaged:
            _quarantine(manager, damaged, warn)


def _quarantine(manager: ocp.CheckpointManager, steps: list[int], warn: Callable[[str], None]) -> None:
    import time

    directory = Path(str(manager.directory))
    aside = directory.parent / "damaged_checkpoints"
    if jax.process_index() == 0:  # the primary moves them; the others wait for it
        aside.mkdir(exist_ok=True)
        for step in steps:
            target = aside / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
            (directory / str(step)).rename(target)
            warn(f"warning: moved damaged checkpoint {step} to {target}")
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("mlwork:quarantine")
    manager.reload()


def best_step(manager: ocp.CheckpointManager) -> int | None:
    """The kept checkpoint with the best validation accuracy (the earliest among ties).

    Args:
      manager: a manager from :func:`checkpoint_manager`.

    Returns:
      Its step (the optimizer step it was saved at), or ``None`` when no kept checkpoint has a
      validation accuracy (none saved yet, or only mid-epoch ones).

    Example:
      >>> import tempfile
      >>> import numpy as np
      >>> from mlwork.train import best_step, checkpoint_manager
      >>> from mlwork.train.checkpoint import save
      >>> tmp = tempfile.TemporaryDirectory()
      >>> manager = checkpoint_manager(tmp.name, async_save=False)
      >>> best_step(manager) is None
      True
      >>> for step, accuracy in [(5, 0.8), (10, 0.9), (15, 0.9)]:
      ...     save(manager, step, {"w": np.zeros(2, np.float32)}, {}, val_accuracy=accuracy, epoch=step // 5)
      >>> best_step(manager)  # 0.9 at step 10 and 15: the earliest
      10
      >>> manager.close()
      >>> tmp.cleanup()
    """
    return manager.best_step()


def epoch_of(manager: ocp.CheckpointManager, step: int) -> int | None:
    """The epoch an end-of-epoch checkpoint was saved at."""
    metrics = manager.metrics(step)
    return None if not metrics else int(metrics["epoch"])
