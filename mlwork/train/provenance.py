"""What produced a run: software versions, platform, devices, compiler settings, git commit.

:func:`reproducibility_record` goes into a run's ``config.json`` (and ``summary.json``) so a
result can be traced to the code and machine that produced it; ``run_metadata()`` holds what
:func:`mlwork.train.load_run` needs to rebuild the model and its input pipeline from
``config.json`` alone.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Distributions whose versions the record lists (their PyPI names).
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit(path: str | Path | None = None) -> dict[str, Any] | None:
    """The git commit of the checkout holding ``path`` (default: mlwork's own source), and
    whether its tracked files have uncommitted changes: ``{"commit": sha, "dirty": bool}``;
    ``None`` outside a checkout or without git (never an error)."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(status.strip())} if sha else None


def reproducibility_record(mesh_or_devices: Any = None) -> dict[str, Any]:
    """Versions, platform, devices, XLA flags, compiler options and git commit of this process.

    Args:
      mesh_or_devices: a :class:`jax.sharding.Mesh`, a sequence of :class:`jax.Device`, or
        ``None`` for ``jax.devices()`` (the devices the run uses).

    Returns:
      A JSON-serialisable dict: ``python``, ``packages`` (``{name: version}`` for
      ``PACKAGES``), ``platform`` (OS and machine), ``backend``, ``device_kind``,
      ``device_count`` (the run's), ``process_count``, ``xla_flags`` (``$XLA_FLAGS`` or ``None``),
      ``compiler_options`` (``mlwork.train.hardware.compiler_options()`` for the backend) and
      ``git`` (``git_commit()``, ``None`` outside a checkout) and ``argv`` (this process's
      command line; in a resumed run's ``config.json`` the command that started the run, each
      resume's in ``resumed_argv``).

    Example::

      >>> record = reproducibility_record()
      >>> sorted(record["packages"])[:2]
      ['flax', 'jax']
    """
    import jax

    from mlwork.train.hardware import compiler_options

    if mesh_or_devices is None:
        devices: Sequence[Any] = jax.devices()
    elif hasattr(mesh_or_devices, "devices") and not callable(mesh_or_devices.devices):
        devices = list(mesh_or_devices.devices.flat)  # a Mesh
    else:
        devices = list(mesh_or_devices)
    if not devices:
        raise ValueError("mesh_or_devices must hold at least one device")
    backend = devices[0].platform
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": {name: _version(name) for name in PACKAGES},
        "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
                     "platform": platform.platform()},
        "backend": backend,
        "device_kind": sorted({d.device_kind for d in devices}) if len({d.device_kind for d in devices}) > 1
        else devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "compiler_options": compiler_options(backend),
        "git": git_commit(),
        "argv": list(sys.argv),
    }


def run_metadata(dataset: Any, mean: Any, std: Any, task: Any = None) -> dict[str, Any]:
    """The ``config.json`` keys that describe the data a run's model expects:
    ``input_shape`` (one example, no batch axis), ``num_classes`` (the model's outputs per
    example), ``class_names``, the normalisation ``mean``/``std`` (scalars of pixels scaled to
    [0, 1] for images, per-feature lists for features, ``None`` for tokens), and what the task
    needs to read the outputs back: ``target``, ``target_shape``, ``input_kind``, ``input_dtype``,
    ``loss_name``, ``metric_names``, ``monitored``, ``monitored_mode``, ``data_name``.

    Args:
      dataset: an :class:`mlwork.data.ArrayDataset` (or a MNIST-family :class:`mlwork.data.Dataset`).
      mean, std: the normalisation the run used (``Run.mean``, ``Run.std``).
      task: the run's :class:`~mlwork.train.task.Task` (``None``: a classification by argmax).
    """
    import numpy as np

    from mlwork.data.arrays import as_arrays

    data = as_arrays(dataset)
    as_json = lambda v: None if v is None else (float(v) if np.ndim(v) == 0 else np.asarray(v).tolist())  # noqa: E731
    record = {"input_shape": [int(d) for d in data.input_shape], "num_classes": int(data.output_size),
              "class_names": list(data.class_names or []), "mean": as_json(mean), "std": as_json(std),
              "data_name": data.name, "target": data.target, "target_shape": list(data.target_shape),
              "input_kind": data.input_kind, "input_dtype": str(data.x_train.dtype)}
    if data.target == "values":  # predictions are target_mean + target_std * outputs
        record.update(target_mean=data.target_mean.tolist(), target_std=data.target_std.tolist())
    if task is not None:
        record.update(loss_name=task.loss_name, metric_names=list(task.metrics), monitored=task.monitor,
                      monitored_mode=task.mode)
    return record


#: The splits :func:`data_sha256` hashes, in order.
_SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def data_sha256(dataset: Any) -> str:
    """SHA-256 of a data set's arrays: every split's name, dtype, shape and bytes, in a fixed order.

    ``config.json`` records it (``data_sha256``) and a resume compares it, so a run is never
    continued on data that changed under the same file name (a regenerated ``.npz``, another
    split): its data order and statistics would no longer be the run's, and exact resume would
    silently not hold. The whole of every array is hashed (about 1 s per GB on one core).

    Args:
      dataset: an :class:`mlwork.data.ArrayDataset` (or a MNIST-family :class:`mlwork.data.Dataset`).

    Returns:
      64 hexadecimal digits.

    Example:
      >>> import numpy as np
      >>> from mlwork.data import from_arrays
      >>> from mlwork.train.provenance import data_sha256
      >>> x, y = np.arange(12.0).reshape(6, 2), np.array([0, 1, 2, 0, 1, 2])
      >>> a, b = data_sha256(from_arrays(x, y)), data_sha256(from_arrays(x, y[::-1].copy()))
      >>> len(a), a == data_sha256(from_arrays(x.copy(), y)), a == b
      (64, True, False)
    """
    import hashlib

    import numpy as np

    from mlwork.data.arrays import as_arrays

    data = as_arrays(dataset)
    digest = hashlib.sha256()
    for name in _SPLITS:
        array = getattr(data, name)
        if array is None:
            digest.update(f"{name}:none;".encode())
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        flat = array.reshape(-1).view(np.uint8)
        for start in range(0, flat.size, 1 << 26):  # 64 MiB at a time: no copy of the whole array
            digest.update(flat[start:start + (1 << 26)])
    return digest.hexdigest()

