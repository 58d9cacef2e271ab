"""Export a trained run's inference function to run without mlwork (:mod:`jax.export`).

``export_run(workdir, path)`` serializes normalisation + model + softmax as a StableHLO module
with a symbolic batch dimension, writes its weights next to it, and copies the dependency-free
loader (:mod:`mlwork.train.exported`) into the folder. Anyone with JAX and NumPy then runs it::

    from load_exported import load_exported   # the file in the export folder
    probs = load_exported("exported/")(images)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlwork.train import exported as _exported
from mlwork.train.inference import probabilities_fn
from mlwork.train.load import LoadedRun, load_run


def export_run(workdir: str | Path | LoadedRun, path: str | Path, which: str | int = "best", *,
               platforms: Sequence[str] | None = None) -> Path:
    """Serialize a run's inference function and weights into the folder ``path``.

    The function is ``f(variables, x) -> probs`` with ``x`` float32 ``(b, *input_shape)`` in
    ``[0, 1]`` for any batch size ``b`` (symbolic); a population exports the ensemble (mean
    softmax over its members). The folder gets ``function.jax`` (``jax.export`` serialization),
    ``variables.npz``, ``meta.json`` and ``load_exported.py`` (load with
    :func:`mlwork.train.exported.load_exported`, which needs only JAX and NumPy).

    Args:
      workdir: a run's workdir (loaded with :func:`~mlwork.train.load_run` and ``which``), or an
        already loaded run.
      path: the export folder to create; it must not exist or be empty. Written to a temporary
        folder and renamed into place, so a failure leaves nothing half-written.
      which: ``"best"``, ``"latest"`` or a step (see :func:`~mlwork.train.load_run`).
      platforms: platforms to lower for (``"cpu"``, ``"cuda"``, ``"rocm"``, ``"tpu"``); default:
        the current backend only.

    Returns:
      ``path``.

    Raises:
      ValueError: ``path`` exists and is not an empty folder.
      RunError, CheckpointError: as :func:`~mlwork.train.load_run`.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> import jax.numpy as jnp, numpy as np
      >>> from mlwork import nn
      >>> from mlwork.train import LoadedRun, export_run, load_exported
      >>> variables = {"params": [{"W": jnp.zeros((10, 784)), "b": jnp.arange(10.0)}], "state": {}}
      >>> run = LoadedRun(nn.mlp([784, 10]), variables, {"mean": 0.1307, "std": 0.3081}, None, 0, "best")
      >>> tmp = tempfile.TemporaryDirectory()
      >>> folder = export_run(run, Path(tmp.name) / "exported")
      >>> sorted(f.name for f in folder.iterdir())
      ['function.jax', 'load_exported.py', 'meta.json', 'variables.npz']
      >>> load_exported(folder)(np.zeros((4, 28, 28), np.uint8)).argmax(-1).tolist()  # any batch size
      [9, 9, 9, 9]
      >>> tmp.cleanup()
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"path {path} already exists and is not an empty folder; choose another export path")
    loaded = workdir if isinstance(workdir, LoadedRun) else load_run(workdir, which)
    mean, std = loaded.mean_std
    members = probabilities_fn(loaded.model, mean, std, loaded.is_ensemble, target=loaded.target,
                               input_kind=loaded.input_kind, target_scaling=loaded.target_scaling)

    def infer(variables, x):
        probs = members(variables, x)
        return jnp.mean(probs, axis=0) if loaded.is_ensemble else probs

    variables = jax.tree.map(np.asarray, loaded.variables)
    (b,) = jax.export.symbolic_shape("b")
    x_spec = jax.ShapeDtypeStruct((b, *loaded.input_shape), jnp.int32 if loaded.input_kind == "tokens" else jnp.float32)
    v_spec = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
    exp = jax.export.export(jax.jit(infer), platforms=None if platforms is None else tuple(platforms))(v_spec, x_spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; an export is meant to be shared
    try:
        (tmp / "function.jax").write_bytes(exp.serialize())
        np.savez(tmp / "variables.npz", *jax.tree.leaves(variables))
        shutil.copyfile(_exported.__file__, tmp / "load_exported.py")
        sha = {name: hashlib.sha256((tmp / name).read_bytes()).hexdigest()
               for name in ("function.jax", "variables.npz", "load_exported.py")}
        meta: dict[str, Any] = {
            "format": _exported.FORMAT, "input_shape": list(loaded.input_shape),
            "class_names": list(loaded.class_names), "num_classes": loaded.num_classes,
            "members": loaded.members, "mean": mean, "std": std, "step": loaded.step, "which": loaded.which,
            "target": loaded.target, "target_shape": list(loaded.target_shape), "input_kind": loaded.input_kind,
            "input": {"images": "float32 (b, *input_shape) intensities in [0, 1]; the loader also takes uint8 0-255",
                      "features": "float32 (b, *input_shape) raw features (standardised inside)",
                      "tokens": "int32 (b, *input_shape) tokens"}[loaded.input_kind],
            "platforms": list(exp.platforms), "jax": jax.__version__, "sha256": sha,
            "workdir": None if isinstance(workdir, LoadedRun) else str(Path(workdir).resolve()),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        if path.exists():
            path.rmdir()
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


load_exported = _exported.load_exported

__all__ = ["export_run", "load_exported"]
