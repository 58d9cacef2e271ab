"""Data parallelism with ``jax.sharding``: one mesh over the devices with a ``data`` axis.

The same compiled epoch runs on one device or many: the parameters, optimizer state and the
uint8 data set are replicated; each step's global batch is sharded along ``data`` (a sharding
constraint inside the step), so every device computes its slice of the batch and XLA's
partitioner inserts the gradient all-reduce. Results match one device to float32 tolerance
(only the order of the sums changes).

Multi-host (a TPU pod, several GPU hosts, or several CPU processes): call
:func:`maybe_initialize_distributed` first — ``experiments.mnist`` does — which runs
``jax.distributed.initialize`` when the environment describes a cluster: ``JAX_COORDINATOR_ADDRESS``
with ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` (passed explicitly), or JAX's own cluster
detection (SLURM, Cloud TPU, Kubernetes, Open MPI; force it with ``MLWORK_DISTRIBUTED=1``). On
CPU the processes use JAX's gloo collectives. The mesh then spans every process's devices. Every
process loads the same data; the uint8 splits are replicated (each process fills only its own
devices, :func:`put_replicated`), and each step's global batch is gathered on the devices from
the same seeded permutation with a sharding constraint over the global mesh, so each process's
devices compute only their share of the global batch — the same batch as one process. Decisions
that change control flow (stop on a signal, the workdir lock) are agreed with
:func:`any_process` / :func:`all_processes`; files are written by the primary process
(:func:`is_primary`) only.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mlwork.train.errors import RunError

DATA_AXIS = "data"
_CLUSTER_ENV = ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS")


#: Seconds without a heartbeat after which JAX's coordination service declares a process dead
#: and terminates the others (JAX's default is 100).
HEARTBEAT_TIMEOUT_S = 30
#: Seconds every process waits for the others to connect at start-up (JAX's default is 300).
INITIALIZATION_TIMEOUT_S = 120


def maybe_initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                                 process_id: int | None = None, *,
                                 heartbeat_timeout_s: int = HEARTBEAT_TIMEOUT_S,
                                 initialization_timeout_s: int = INITIALIZATION_TIMEOUT_S) -> bool:
    """Start ``jax.distributed`` when the arguments or the environment describe a multi-process
    job; returns whether it did. Safe to call on a laptop (it does nothing).

    Args:
      coordinator_address: ``host:port`` of process 0's coordination service (default
        ``JAX_COORDINATOR_ADDRESS``).
      num_processes: processes in the job (default ``JAX_NUM_PROCESSES``).
      process_id: this process's index in ``[0, num_processes)`` (default ``JAX_PROCESS_ID``).
        Left unset, JAX's cluster detection (SLURM, Cloud TPU, Kubernetes, Open MPI) fills them in.
      heartbeat_timeout_s: a process silent this long is declared dead and JAX's coordination
        service terminates every other process (``F... Terminating process because the JAX
        distributed service detected fatal errors``, exit status 134): a dead peer never leaves
        the others hanging longer than about this.
      initialization_timeout_s: how long to wait for every process to connect.

    Raises:
      ValueError: a process count or id that is not an integer, or an id outside ``[0, n)``.
    """
    env = os.environ
    address = coordinator_address or env.get("JAX_COORDINATOR_ADDRESS") or None
    n = _int_arg(num_processes if num_processes is not None else env.get("JAX_NUM_PROCESSES"), "num_processes")
    pid = _int_arg(process_id if process_id is not None else env.get("JAX_PROCESS_ID"), "process_id")
    forced = env.get("MLWORK_DISTRIBUTED", "") not in ("", "0")
    if address is None and n is None and not forced and not any(env.get(k) for k in _CLUSTER_ENV):
        return False
    if n is not None and n < 1:
        raise ValueError(f"num_processes must be >= 1, got {n}")
    if n is not None and pid is not None and not 0 <= pid < n:
        raise ValueError(f"process_id must be in [0, {n}) (num_processes {n}), got {pid}")
    if jax.distributed.is_initialized():
        return True
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes reduce over TCP
    jax.distributed.initialize(address, n, pid, initialization_timeout=int(initialization_timeout_s),
                               heartbeat_timeout_seconds=int(heartbeat_timeout_s))
    return True


def leave_distributed() -> None:
    """Leave a ``jax.distributed`` job through JAX's shutdown barrier, so that processes which
    stop together (an agreed preemption) each exit with their own code instead of being
    terminated when the coordinator's process goes first. Call it only when every process is
    stopping: the barrier waits for all of them (JAX's ``shutdown_timeout_seconds``, 300 s).
    Does nothing outside a job."""
    if jax.distributed.is_initialized():
        try:
            jax.distributed.shutdown()
        except Exception:  # noqa: BLE001 -- a peer already gone; we are exiting anyway
            pass


def _int_arg(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def is_primary() -> bool:
    """Whether this is the process that writes the run's files (process 0)."""
    return jax.process_index() == 0


def any_process(flag: bool) -> bool:
    """Whether ``flag`` is true on any process (a collective: every process must call it at the
    same point). One process: ``flag`` itself."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.int32(bool(flag)))))


def all_processes(flag: bool) -> bool:
    """Whether ``flag`` is true on every process (a collective, like :func:`any_process`)."""
    return not any_process(not flag)


def process_prefix() -> str:
    """``"[process i/n] "`` in a multi-process job, ``""`` otherwise: how non-primary processes
    mark their log lines."""
    return f"[process {jax.process_index()}/{jax.process_count()}] " if jax.process_count() > 1 else ""


def make_mesh(n_devices: int | None = None) -> Mesh:
    """A 1-D mesh named ``data`` over the first ``n_devices`` devices (default: all of them,
    across every process)."""
    devices = jax.devices()
    n = len(devices) if n_devices is None else n_devices
    if isinstance(n, bool) or int(n) != n or not 1 <= n <= len(devices):
        raise ValueError(f"devices must be an integer in [1, {len(devices)}] (the {jax.default_backend()} "
                         f"devices available), got {n_devices!r}")
    if jax.process_count() > 1 and int(n) != len(devices):
        raise ValueError(f"devices must be all {len(devices)} devices of the {jax.process_count()} processes in a "
                         f"multi-process job (every process computes its share), got {n_devices!r}")
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


def streamed_batch_sharding(mesh: Mesh) -> NamedSharding:
    """A streamed chunk's batches ``(L, B, ...)``: split over the mesh's ``data`` axis along ``B``."""
    return NamedSharding(mesh, PartitionSpec(None, DATA_AXIS))


def process_columns(mesh: Mesh, batch_size: int) -> tuple[int, int]:
    """The slice ``[lo, hi)`` of every global batch this process's devices hold (all of it in one process).

    Raises:
      RunError: this process's devices hold a non-contiguous part of the batch.
    """
    spans = sorted({index[1].indices(batch_size)[:2] for index in
                    streamed_batch_sharding(mesh).addressable_devices_indices_map((1, batch_size)).values()})
    lo, hi = spans[0][0], spans[-1][1]
    if sum(b - a for a, b in spans) != hi - lo:
        raise RunError(f"this process's devices hold a non-contiguous part of the batch ({spans}); the streamed "
                       "input path needs each process's devices adjacent on the mesh")
    return lo, hi
