"""Run a model exported by :func:`mlwork.train.export_run` with JAX and NumPy alone.

This file imports nothing from mlwork: :func:`mlwork.train.export_run` copies it into every
export folder as ``load_exported.py``, so a machine without mlwork can do::

    import sys; sys.path.insert(0, "exported/")
    from load_exported import load_exported
    model = load_exported("exported/")
    probs = model(images)            # uint8 (N, 28, 28) pixel levels, or floats in [0, 1]

An export folder holds ``function.jax`` (the serialized :mod:`jax.export` StableHLO module,
symbolic batch dimension ``b``), ``variables.npz`` (its weights, in argument order) and
``meta.json`` (input shape, class names, the input convention, SHA-256 of the other two files).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

FORMAT = "mlwork-export-1"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ExportedRun:
    """A loaded export: call it on images to get class probabilities ``(*batch, classes)``.

    Attributes:
      exported: the :class:`jax.export.Exported` function ``f(variables, x) -> probs`` (``x``
        float32 ``(b, *input_shape)`` in ``[0, 1]``).
      variables: its weights (a pytree of numpy arrays).
      meta: ``meta.json``: ``input_shape``, ``class_names``, ``members``, ``mean``, ``std``...
    """

    def __init__(self, exported: Any, variables: Any, meta: dict[str, Any]):
        self.exported, self.variables, self.meta = exported, variables, meta
        self.input_shape = tuple(meta["input_shape"])
        self.class_names = tuple(meta["class_names"])

    def __call__(self, images: Any) -> np.ndarray:
        """Probabilities for ``images`` ``(*batch, *input_shape)`` (a trailing channel axis of 1
        is accepted): integer pixel levels in ``[0, 255]`` or floats in ``[0, 1]``."""
        x = np.asarray(images)
        kind = self.meta.get("input_kind", "images")
        if kind == "features":  # raw features: the exported function standardises them
            if not (np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_) or not np.isfinite(x).all():
                raise ValueError(f"features must be finite numbers, got dtype {x.dtype}")
            x = x.astype(np.float32)
        elif kind == "tokens":
            if not np.issubdtype(x.dtype, np.integer):
                raise ValueError(f"tokens must be integers, got dtype {x.dtype}")
            x = x.astype(np.int32)
        elif np.issubdtype(x.dtype, np.integer) and x.dtype != np.bool_:
            if x.size and (x.min() < 0 or x.max() > 255):
                raise ValueError("images: integer pixel levels must be in [0, 255]")
            x = x.astype(np.float32) * np.float32(1.0 / 255.0)
        elif np.issubdtype(x.dtype, np.floating):
            if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
                raise ValueError("images: float images must be finite intensities in [0, 1]")
            x = x.astype(np.float32)
        else:
            raise ValueError(f"images must be integer pixel levels or floats in [0, 1], got dtype {x.dtype}")
        n = len(self.input_shape)
        if x.shape[len(x.shape) - n:] == self.input_shape:
            batch = x.shape[:len(x.shape) - n]
        elif x.ndim > n and x.shape[-1] == 1 and x.shape[len(x.shape) - n - 1:-1] == self.input_shape:
            batch = x.shape[:len(x.shape) - n - 1]
        else:
            raise ValueError(f"images has shape {x.shape}; expected (..., {', '.join(map(str, self.input_shape))})")
        flat = x.reshape((-1, *self.input_shape))
        probs = np.asarray(self.exported.call(self.variables, flat))
        out_shape = tuple(self.meta.get("target_shape") or ()) if self.meta.get("target") == "values" else None
        return probs.reshape(*batch, *(out_shape if out_shape is not None else (probs.shape[-1],)))


def load_exported(path: str | Path) -> ExportedRun:
    """Load an export folder written by :func:`mlwork.train.export_run`; it needs only JAX and NumPy.

    Args:
      path: the export folder (``function.jax``, ``variables.npz``, ``meta.json``).

    Returns:
      An ``ExportedRun``: call it on images ``(*batch, *input_shape)`` (a trailing channel axis of 1
      is accepted), integer pixel levels in ``[0, 255]`` or floats in ``[0, 1]``, to get float32
      class probabilities ``(*batch, classes)``; its ``meta`` is ``meta.json``, and
      ``input_shape`` and ``class_names`` are read from it.

    Raises:
      ValueError: ``path`` is not an export folder (no readable ``meta.json``, another format), or
        its files do not match the SHA-256 recorded in ``meta.json`` (damaged or edited); (when
        called) images of another shape, or outside their dtype's range.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> import jax.numpy as jnp, numpy as np
      >>> from mlwork import nn
      >>> from mlwork.train import LoadedRun, export_run, load_exported
      >>> variables = {"params": [{"W": jnp.zeros((10, 784)), "b": jnp.zeros(10)}], "state": {}}
      >>> run = LoadedRun(nn.mlp([784, 10]), variables, {"mean": 0.1307, "std": 0.3081}, None, 0, "best")
      >>> tmp = tempfile.TemporaryDirectory()
      >>> model = load_exported(export_run(run, Path(tmp.name) / "exported"))
      >>> probs = model(np.zeros((28, 28, 1), np.float32))  # one image with a channel axis
      >>> model.input_shape, probs.shape, [round(float(p), 3) for p in probs[:3]]  # uniform
      ((28, 28), (10,), [0.1, 0.1, 0.1])
      >>> _ = (Path(tmp.name) / "exported" / "variables.npz").write_bytes(b"edited")
      >>> try:
      ...     load_exported(Path(tmp.name) / "exported")
      ... except ValueError as e:
      ...     print(str(e).split("variables.npz ")[1])
      is missing or damaged (SHA-256 differs from meta.json)
      >>> tmp.cleanup()
    """
    path = Path(path)
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not an exported run (meta.json: {e})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown export format {meta.get('format')!r}, expected {FORMAT!r}")
    for name, digest in meta["sha256"].items():
        if not (path / name).exists() or _sha256(path / name) != digest:
            raise ValueError(f"{path / name} is missing or damaged (SHA-256 differs from meta.json)")
    exported = jax.export.deserialize(bytearray((path / "function.jax").read_bytes()))
    with np.load(path / "variables.npz") as data:
        leaves = [data[f"arr_{i}"] for i in range(len(data.files))]
    # The exported function's arguments are (variables, x): its in_tree gives the variables' structure.
    args_tree = exported.in_tree.children()[0]  # (args, kwargs) -> args
    variables_tree = args_tree.children()[0]
    variables = jax.tree.unflatten(variables_tree, leaves)
    return ExportedRun(exported, variables, meta)
