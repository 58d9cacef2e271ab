"""Orbax checkpoints that keep both the latest N and the best-by-validation.

A checkpoint is the whole :class:`~mlwork.train.state.TrainState` (params, model state,
optimizer state, step, epoch, RNG key data, early-stopping counters) plus a JSON record of the
run so far (the per-epoch metrics history and the config), saved under
``<workdir>/checkpoints/<epoch>``. Orbax writes each one to a temporary folder and renames it
when complete, so a checkpoint is either whole or absent.

Preservation: ``LatestN(keep)`` *or* ``BestN(1)`` by validation accuracy (ties: the earliest),
so saving the best never evicts the latest and breaks resume, and vice versa.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies


def _rank(metrics: dict[str, Any]) -> tuple[float, int]:
    # Highest validation accuracy wins; among equals, the earliest epoch (as the trainer's
    # strict-improvement rule picks it).
    return float(metrics["val_accuracy"]), -int(metrics["epoch"])


def checkpoint_manager(workdir: str | Path, keep: int = 3, *, read_only: bool = False,
                       async_save: bool = True) -> ocp.CheckpointManager:
    """A manager for ``<workdir>/checkpoints`` with the latest-``keep`` + best policy."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (checkpoints to keep), got {keep}")
    directory = Path(workdir).absolute() / "checkpoints"
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policies.AnyPreservationPolicy([
            policies.LatestN(n=keep),
            policies.BestN(get_metric_fn=_rank, reverse=False, n=1),
        ]),
        best_fn=_rank,  # also makes Orbax record the metrics and answer best_step()
        best_mode="max",
        enable_async_checkpointing=async_save,
        read_only=read_only,
        create=not read_only,
    )
    return ocp.CheckpointManager(directory, options=options, item_names=("state", "record"))


def save(manager: ocp.CheckpointManager, epoch: int, state: Any, record: dict[str, Any],
         val_accuracy: float) -> None:
    """Save ``state`` (any pytree of arrays) and the JSON ``record`` as the checkpoint of ``epoch``."""
    epoch = int(epoch)
    manager.save(epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                record=ocp.args.JsonSave(record)),
                 metrics={"val_accuracy": float(val_accuracy), "epoch": epoch}, force=True)


def restore(manager: ocp.CheckpointManager, template: Any, epoch: int | None = None) -> tuple[Any, dict]:
    """Restore the checkpoint of ``epoch`` (default: the latest) into the structure, shapes,
    dtypes and shardings of ``template`` (a freshly initialised state). Returns
    ``(state, record)``."""
    if epoch is None:
        epoch = manager.latest_step()
        if epoch is None:
            raise FileNotFoundError(f"no checkpoint in {manager.directory}")

    def abstract(x):
        x = np.asarray(x) if not isinstance(x, jax.Array) else x
        sharding = getattr(x, "sharding", None)
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    target = jax.tree.map(abstract, template)
    restored = manager.restore(epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(target),
                                                              record=ocp.args.JsonRestore()))
    return restored["state"], dict(restored["record"])


def best_epoch(manager: ocp.CheckpointManager) -> int | None:
    """The kept checkpoint with the best validation accuracy (earliest among ties)."""
    return manager.best_step()
