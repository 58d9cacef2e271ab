"""Load a finished (or interrupted) run from its workdir: the model, its variables, its config.

``load_run(workdir)`` is all a user needs to predict with what a run learned — no optimizer,
no train-state template, no Orbax call. The checkpoint is restored from the metadata Orbax
saved with it (shapes and dtypes, onto one local device), so it does not depend on how the
trainer builds its state; only ``params`` and ``model_state`` are kept. As when resuming, the
arrays read back are checked against the SHA-256 recorded at save time.

Workdir layout it reads (written by :func:`mlwork.train.train_and_evaluate`, for one model or
a population): ``config.json`` (every
:class:`~mlwork.train.TrainConfig` field plus ``input_shape``, ``num_classes``,
``class_names``, ``mean``, ``std`` and, for a population, ``members``), ``summary.json`` (absent
while a run is unfinished) and ``checkpoints/<step>/{state,record}``, where ``state`` holds the
train state (single run) or ``{"state": batched train state, "best_params",
"best_model_state"}`` (population).
"""

from __future__ import annotations

import ast
import contextlib
import gc
import inspect
import json
import logging
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import jax

from mlwork import nn
from mlwork.train import checkpoint as ckpt
from mlwork.train.checkpoint import CheckpointError
from mlwork.train.config import TrainConfig
from mlwork.train.errors import RunError
from mlwork.train.programs import build_model
from mlwork.train.report import params_sha256

#: Normalisation statistics for runs whose ``config.json`` predates the ``mean``/``std`` keys.
_LEGACY_MEAN_STD = {"mnist": (0.1307, 0.3081)}


class LoadedRun(NamedTuple):
    """A trained run, ready for :func:`mlwork.train.predict_run` or :func:`mlwork.train.export_run`.

    Attributes:
      model: the :class:`~mlwork.nn.Model` rebuilt from ``config.json``.
      variables: ``{"params": ..., "state": ...}`` on one local device; for a population every
        leaf has a leading member axis of size ``members``.
      config: ``config.json`` as a dict (the run's flags, data description, provenance).
      summary: ``summary.json`` as a dict, or ``None`` when the run has not finished.
      step: the optimizer step of the checkpoint the variables come from.
      which: what was asked for: ``"best"``, ``"latest"`` or the step number.
      members: the population size, or ``None`` for a single model.

    Usually from :func:`load_run`; it can be built by hand around any model and variables (the
    ``config`` needs ``mean`` and ``std``, the normalisation the model expects).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> from mlwork.train import LoadedRun
      >>> variables = {"params": [{"W": jnp.zeros((10, 784)), "b": jnp.zeros(10)}], "state": {}}
      >>> run = LoadedRun(nn.mlp([784, 10]), variables, {"mean": 0.1307, "std": 0.3081}, None, 0, "best")
      >>> run.input_shape, run.num_classes, run.class_names[:3], run.is_ensemble
      ((28, 28), 10, ('0', '1', '2'), False)
    """

    model: nn.Model
    variables: dict[str, Any]
    config: dict[str, Any]
    summary: dict[str, Any] | None
    step: int
    which: str | int
    members: int | None = None

    @property
    def is_ensemble(self) -> bool:
        """``True`` for a population: :func:`~mlwork.train.predict_run` averages the members' softmax."""
        return self.members is not None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input image, e.g. ``(28, 28)`` (``config["input_shape"]``, default ``(28, 28)``)."""
        return tuple(int(d) for d in self.config.get("input_shape", (28, 28)))

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names, index ``i`` naming class ``i`` (``config["class_names"]``; default
        ``"0"``, ``"1"``, ...)."""
        return tuple(self.config.get("class_names") or (str(i) for i in range(self.num_classes)))

    @property
    def num_classes(self) -> int:
        """The number of classes (``config["num_classes"]``, default 10)."""
        return int(self.config.get("num_classes", 10))

    @property
    def target(self) -> str:
        """The kind of targets the outputs stand for, ``"classes"`` (default), ``"multilabel"`` or ``"values"``
        (``config["target"]``)."""
        return str(self.config.get("target", "classes"))

    @property
    def target_shape(self) -> tuple[int, ...]:
        """One target's shape (``config["target_shape"]``; ``()`` for class labels)."""
        return tuple(int(d) for d in self.config.get("target_shape") or ())

    @property
    def target_scaling(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """For a regression, ``(target_mean, target_std)`` per output, the predictions being
        ``target_mean + target_std * outputs`` (``config["target_mean"]``, ``["target_std"]``);
        ``None`` otherwise."""
        if self.target != "values" or "target_mean" not in self.config:
            return None
        return tuple(map(float, self.config["target_mean"])), tuple(map(float, self.config["target_std"]))

    @property
    def input_kind(self) -> str:
        """``"images"`` (default), ``"features"`` or ``"tokens"`` (``config["input_kind"]``)."""
        return str(self.config.get("input_kind", "images"))

    @property
    def mean_std(self) -> tuple[Any, Any]:
        """The normalisation ``(x / 255 - mean) / std`` the run trained with, as ``(mean, std)``
        (for features, per-feature lists: ``(x - mean) / std``; for tokens, ``(None, None)``).

        Raises:
          RunError: ``config`` lacks them (and names no data set whose statistics are known).
        """
        if self.input_kind == "tokens":
            return None, None
        if "mean" in self.config and "std" in self.config:
            mean, std = self.config["mean"], self.config["std"]
            if isinstance(mean, list):
                return mean, std
            return float(mean), float(std)
        try:
            return _LEGACY_MEAN_STD[self.config.get("dataset")]
        except KeyError:
            raise RunError("config.json lacks the normalisation statistics (mean, std) of this run") from None

    def member(self, k: int) -> LoadedRun:
        """Member ``k`` of a population as a single-model run.

        Args:
          k: the member's index, in ``[0, members)``.

        Returns:
          A :class:`LoadedRun` with member ``k``'s variables (the member axis removed) and
          ``members=None``.

        Raises:
          ValueError: a single-model run, or ``k`` out of range.

        Example:
          >>> import jax.numpy as jnp
          >>> from mlwork import nn
          >>> from mlwork.train import LoadedRun
          >>> params = [{"W": jnp.zeros((3, 10, 784)), "b": jnp.arange(30.0).reshape(3, 10)}]  # 3 members
          >>> variables = {"params": params, "state": {}}
          >>> run = LoadedRun(nn.mlp([784, 10]), variables, {"mean": 0.0, "std": 1.0}, None, 0, "best", members=3)
          >>> one = run.member(2)
          >>> one.is_ensemble, one.variables["params"][0]["b"][0].item()
          (False, 20.0)
        """
        if not self.is_ensemble:
            raise ValueError("member(k) needs a population run; this run holds a single model")
        if not 0 <= k < self.members:
            raise ValueError(f"k must be in [0, {self.members}), got {k}")
        return self._replace(variables=jax.tree.map(lambda x: x[k], self.variables), members=None)


def _read_json(path: Path, required: bool) -> dict[str, Any] | None:
    if not path.exists():
        if required:
            raise RunError(f"{path.parent} holds no run: {path.name} is missing")
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"{path} cannot be read: {e}") from None


def _saved_leaf_order(step_dir: Path) -> list[tuple[str, ...]] | None:
    """The leaves' key paths in the order the trainer's pytree had when saved (Orbax's
    ``_METADATA`` lists them in that order); ``None`` if unavailable."""
    try:
        tree = json.loads((step_dir / "state" / "_METADATA").read_text())["tree_metadata"]
        return [tuple(str(k) for k in ast.literal_eval(key)) for key in tree]
    except (OSError, ValueError, KeyError, SyntaxError, TypeError):
        return None


def _at(tree: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[int(key)] if isinstance(tree, (list, tuple)) else tree[key]
    return tree


def _verify(restored: Any, record: dict[str, Any], step_dir: Path, step: int, directory: Path) -> None:
    """Check the arrays against the SHA-256 recorded at save time. The restored tree has dicts
    where the trainer had NamedTuples, so the leaves are taken in the saved order."""
    expected = record.get("state_sha256")
    if expected is None:
        return
    order = _saved_leaf_order(step_dir)
    candidates = []
    if order is not None:
        try:
            candidates.append([leaf for leaf in (_at(restored, p) for p in order)
                               if leaf is not None and not isinstance(leaf, (dict, list, tuple))])
        except (KeyError, IndexError, ValueError, TypeError):
            pass
    candidates.append(jax.tree.leaves(restored))
    if not any(params_sha256(c) == expected for c in candidates):
        raise CheckpointError(f"checkpoint {step} in {directory} is damaged: its arrays do not match the "
                              "SHA-256 recorded when it was saved")


def _restore(manager: Any, step: int) -> tuple[Any, dict[str, Any]]:
    """Checkpoint ``step`` without a template: shapes and dtypes from its metadata, onto the
    first local device."""
    import orbax.checkpoint as ocp

    directory = Path(str(manager.directory))
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    try:
        with _quiet_absl():
            meta = manager.item_metadata(step)
            tree = meta["state"] if meta is not None and "state" in meta else None
            if tree is None:  # the manager answers metadata once it knows the item's handler
                manager.restore(step, args=ocp.args.Composite(record=ocp.args.JsonRestore()))
                tree = manager.item_metadata(step)["state"]
            tree = getattr(tree, "tree", tree)
            abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(tuple(m.shape), m.dtype, sharding=device), tree)
            restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                                     record=ocp.args.JsonRestore()))
    except Exception as e:
        _close_abandoned_reads()
        raise CheckpointError(f"checkpoint {step} in {directory} cannot be read: {ckpt._reason(e)}") from e
    state, record = restored["state"], dict(restored["record"] or {})
    _verify(state, record, directory / str(step), step, directory)
    return state, record


def _close_abandoned_reads() -> None:
    """Close the array reads a failed Orbax restore left pending. Orbax runs a restore in a fresh
    event loop and closes the loop with the other reads still suspended when one fails; each
    such read catches the ``GeneratorExit`` of its eventual garbage collection and raises an
    ``Exception`` instead, which Python can only print ("Exception ignored in <coroutine
    _read_array_index_and_device_put>", with TensorStore's whole spec) at some later moment."""
    for obj in gc.get_objects():
        if (inspect.iscoroutine(obj) and obj.cr_frame is not None
                and obj.cr_code.co_name == "_read_array_index_and_device_put"):
            with contextlib.suppress(Exception):
                obj.close()


@contextlib.contextmanager
def _quiet_absl():
    """Orbax logs routine notes (a read-only directory, items left unread) as absl warnings."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _variables(params: Any, model_state: Any) -> dict[str, Any]:
    return {"params": params, "state": model_state if model_state is not None else {}}


def load_run(workdir: str | Path, which: str | int = "best", *, model: nn.Model | None = None) -> LoadedRun:
    """Load a run's model and trained variables from ``workdir``.

    Args:
      workdir: the folder a run wrote (``config.json``, ``checkpoints/``).
      which: ``"best"`` — the checkpoint with the best validation accuracy (for a population:
        every member's parameters at its own best epoch, kept in the newest checkpoint);
        ``"latest"`` — the newest intact checkpoint (damaged newer ones are skipped with a
        warning); or an ``int`` step number (``checkpoints/<step>``).
      model: the model, when the run trained one that ``config.json`` cannot name (e.g. a
        custom ``model=`` passed to ``train_and_evaluate``); default: rebuilt with
        :func:`mlwork.train.build_model`.

    Returns:
      A :class:`LoadedRun`; its ``variables`` are ``{"params", "state"}`` with a leading member
      axis for a population (``members`` = K, ``is_ensemble`` = True).

    Raises:
      RunError: ``workdir`` holds no run (no ``config.json``), or unreadable JSON.
      CheckpointError: no checkpoint, the requested one is missing, unreadable, or its arrays
        do not match the SHA-256 recorded when it was saved.
      ValueError: ``which`` is not ``"best"``, ``"latest"`` or a non-negative step.

    Example (needs a trained run's workdir, which takes seconds to make, so this is not run
    here):

    .. code-block:: python

        from mlwork.train import load_run, predict_run

        run = load_run("runs/mnist-mlp")            # the best checkpoint
        probs = predict_run(run, test_images)           # (N, 10), rows summing to 1
        latest = load_run("runs/mnist-mlp", "latest")
        run.step, latest.step                       # e.g. (7030, 8436)
    """
    if isinstance(which, str) and which.isdigit():
        which = int(which)
    if isinstance(which, bool) or not (which in ("best", "latest") or (isinstance(which, int) and which >= 0)):
        raise ValueError(f"which must be 'best', 'latest' or a step number >= 0, got {which!r}")
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise RunError(f"workdir {workdir} does not exist")
    config = _read_json(workdir / "config.json", required=True)
    summary = _read_json(workdir / "summary.json", required=False)
    population = "members" in config
    if not (workdir / "checkpoints").is_dir():
        raise CheckpointError(f"no checkpoint in {workdir / 'checkpoints'}")
    with _quiet_absl():
        manager = ckpt.checkpoint_manager(workdir, read_only=True, async_save=False)
    try:
        steps = sorted(manager.all_steps())
        if not steps:
            raise CheckpointError(f"no checkpoint in {manager.directory}")
        if which == "latest" or (which == "best" and population):
            restored = None
            for step in reversed(steps):
                try:
                    restored, _ = _restore(manager, step)
                    break
                except CheckpointError as e:
                    warnings.warn(f"{e}; falling back to an earlier checkpoint", stacklevel=2)
            if restored is None:
                raise CheckpointError(f"no intact checkpoint in {manager.directory} (tried steps {steps})")
        else:
            step = ckpt.best_step(manager) if which == "best" else which
            if step is None:
                raise CheckpointError(f"no end-of-epoch checkpoint with a validation accuracy in {manager.directory}")
            if step not in steps:
                raise CheckpointError(f"no checkpoint {step} in {manager.directory}; kept steps: {steps}")
            restored, _ = _restore(manager, step)
    finally:
        manager.close()
    if population:
        if which == "best":
            variables = _variables(restored["best_params"], restored.get("best_model_state"))
        else:
            variables = _variables(restored["state"]["params"], restored["state"].get("model_state"))
        members = int(jax.tree.leaves(variables["params"])[0].shape[0])
    else:
        variables = _variables(restored["params"], restored.get("model_state"))
        members = None
    named = model is None
    if named:
        try:
            model = build_model(TrainConfig.from_dict(config), tuple(config.get("input_shape", (28, 28))),
                                int(config.get("num_classes", 10)),
                                input_dtype="int32" if config.get("input_kind") == "tokens" else "float32")
        except (TypeError, RunError) as e:
            raise RunError(f"cannot rebuild the model from {workdir / 'config.json'}: {e}; pass model=") from None
    loaded = LoadedRun(model, variables, config, summary, int(step), which, members)
    _check_fits(loaded, workdir, named)
    return loaded


def _check_fits(loaded: LoadedRun, workdir: Path, named: bool) -> None:
    """The checkpoint's parameters must have the structure and shapes the model initialises."""
    expected = jax.eval_shape(lambda: loaded.model.init(jax.random.key(0), loaded.input_shape))["params"]
    params = loaded.variables["params"]
    if loaded.is_ensemble:
        params = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), params)
    shapes = lambda tree: jax.tree.map(lambda x: tuple(x.shape), tree)  # noqa: E731
    try:
        same = shapes(params) == shapes(expected)
    except (TypeError, ValueError):
        same = False
    if not same:
        whose = f"the {loaded.config.get('model')!r} model config.json names" if named else "the model passed"
        raise RunError(f"the parameters in {workdir} do not fit {whose}"
                       + ("; pass model= (the model the run trained)" if named else ""))


__all__ = ["LoadedRun", "load_run"]
