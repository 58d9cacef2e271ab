"""Data parallelism with ``jax.sharding``: one mesh over the devices with a ``data`` axis.

The same compiled epoch runs on one device or many: the parameters, optimizer state and the
uint8 data set are replicated; each step's global batch is sharded along ``data`` (a sharding
constraint inside the step), so every device computes its slice of the batch and XLA's
partitioner inserts the gradient all-reduce. Results match one device to float32 tolerance
(only the order of the sums changes).

Multi-host (a TPU pod, several GPU hosts): call :func:`maybe_initialize_distributed` first —
``experiments.mnist`` does — which runs ``jax.distributed.initialize()`` when the environment
describes a cluster (``JAX_COORDINATOR_ADDRESS``, SLURM, or a Cloud TPU pod; or force it with
``MLWORK_DISTRIBUTED=1``). Every process then loads the same data; arrays are assembled with
``jax.make_array_from_callback`` so each process supplies only its own devices' shards.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
_CLUSTER_ENV = ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS")


def maybe_initialize_distributed() -> bool:
    """Start ``jax.distributed`` when the environment describes a multi-process job; returns
    whether it did. Safe to call on a laptop (it does nothing)."""
    forced = os.environ.get("MLWORK_DISTRIBUTED", "") not in ("", "0")
    if not forced and not any(os.environ.get(k) for k in _CLUSTER_ENV):
        return False
    if jax.process_count() > 1:  # already initialised
        return True
    jax.distributed.initialize()
    return True


def make_mesh(n_devices: int | None = None) -> Mesh:
    """A 1-D mesh named ``data`` over the first ``n_devices`` devices (default: all of them,
    across every process)."""
    devices = jax.devices()
    n = len(devices) if n_devices is None else n_devices
    if isinstance(n, bool) or int(n) != n or not 1 <= n <= len(devices):
        raise ValueError(f"devices must be an integer in [1, {len(devices)}] (the {jax.default_backend()} "
                         f"devices available), got {n_devices!r}")
    return Mesh(np.asarray(devices[: int(n)]), (DATA_AXIS,))


def check_batch(batch_size: int, mesh: Mesh, name: str = "batch_size") -> None:
    """The global batch must split evenly over the ``data`` axis."""
    n = mesh.shape[DATA_AXIS]
    if batch_size % n:
        raise ValueError(f"{name} {batch_size} is not divisible by the {n} devices: the global batch is split "
                         f"evenly across them (use a multiple of {n}, or --devices)")


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """The leading (batch) axis split over ``data``."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def put_replicated(tree: Any, mesh: Mesh) -> Any:
    """Place a pytree of host or device arrays on every device of ``mesh`` (multi-host safe)."""
    sharding = replicated(mesh)

    def put(x):
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
        host = np.asarray(jax.device_get(x))
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, tree)


def constrain_batch(x: Any, mesh: Mesh | None) -> Any:
    """Inside a jitted step: ask for ``x`` (a batch, or a pytree of them) sharded along ``data``.
    A no-op without a mesh or on one device."""
    if mesh is None or mesh.size == 1:
        return x
    return jax.lax.with_sharding_constraint(x, batch_sharded(mesh))
