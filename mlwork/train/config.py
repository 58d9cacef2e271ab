"""Every knob of a run in one validated record, its JSON form, and the command line made from it.

:class:`TrainConfig` is what ``config.json`` records and what a resumed run is checked against.
It imports neither JAX nor NumPy, so a command line can be parsed (and ``--help`` answered)
before the accelerator runtime loads.

Example::

    from mlwork.train.config import TrainConfig
    config = TrainConfig(model="cnn", epochs=12, batch_size=128, population=4)
    config.members()            # four seeds: 0, 1, 2, 3 at lr 1e-3
    TrainConfig.from_json("runs/a/config.json") == config   # after a run in runs/a
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, NamedTuple

from mlwork.train.errors import RunError
from mlwork.train.task_registry import TASK_LOSSES

#: The built-in models (``model=`` also takes an import string ``package.module:factory``).
MODELS = ("mlp", "cnn")
#: The built-in losses: the names in :data:`mlwork.train.task.TASK_LOSSES` (which loads without JAX).
LOSSES = tuple(TASK_LOSSES)
TASKS = ("classification", "regression")
MODES = ("min", "max")
DATASETS = ("mnist", "fashion_mnist")
#: Kept in step with :data:`mlwork.optim.OPTIMIZERS` (a test checks), so parsing needs no JAX.
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "lamb", "lion")
SCHEDULES = ("constant", "step", "exponential", "cosine", "warmup_cosine", "onecycle")
#: Schedules whose shape depends on the run's total length: a resumed run must keep ``epochs``.
RUN_LENGTH_SCHEDULES = ("exponential", "cosine", "warmup_cosine", "onecycle")
SOURCES = ("auto", "idx", "cache", "tfds", "download", "system", "sample")
COMPUTE_DTYPES = ("float32", "bfloat16")
#: Steps per compiled chunk when only ``checkpoint_every_minutes`` asks for chunks (and no ``steps_per_call``).
CLOCK_CHUNK_STEPS = 100
#: Hyperparameters a population may sweep (each member's value lives in its optimizer state).
SWEEPABLE = ("lr", "weight_decay")
#: Fields that must agree between a run and its resumption (``epochs`` too for RUN_LENGTH_SCHEDULES).
RESUME_KEYS = ("model", "model_kwargs", "hidden", "dataset", "data", "task", "loss", "metrics", "monitor_metric",
               "monitor_mode", "batch_size", "optimizer", "lr", "schedule", "weight_decay", "l1",
               "dropout", "augment", "seed", "val_fraction", "split_seed", "clip_norm", "compute_dtype",
               "population", "sweep")


#: What ``config.json`` records beside the config: what the run found (see
#: :func:`mlwork.train.lifecycle.run_record`).
RUN_RECORD_KEYS = ("data_source", "n_params", "steps_per_epoch", "input_shape", "num_classes", "class_names",
                   "mean", "std", "members", "reproducibility", "data_name", "target", "target_shape",
                   "output_size", "input_kind", "input_dtype", "loss_name", "metric_names", "monitored",
                   "monitored_mode", "test_split", "target_mean", "target_std", "data_sha256")


def _knob(default: Any, help: str, *, choices: tuple[str, ...] | None = None, flag: str | None = None) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "flag": flag})


class Member(NamedTuple):
    """One population member: its seed and hyperparameters (see :meth:`TrainConfig.members`).

    Attributes:
      seed: the member's seed (initialisation, data order, dropout, augmentation).
      lr: its peak learning rate.
      weight_decay: its decoupled L2 strength.

    Example:
      >>> from mlwork.train import Member
      >>> Member(seed=1, lr=1e-3, weight_decay=0.0).lr
      0.001
    """

    seed: int
    lr: float
    weight_decay: float


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every knob of a run; validated when constructed (a bad value raises :class:`RunError`).

    A population (``population > 1`` or a ``sweep``) is the same run with a leading member axis
    on its state: members are every combination of ``population`` seeds (``seed``, ``seed + 1``,
    ...) and the swept values (see :meth:`members`). Each field is also a command-line flag
    (``--batch-size``, ...), with the same help.

    Args:
      model: ``"mlp"`` (a ReLU MLP, ``D-256-128-C`` by default: the deck's 784-256-128-10 on
        MNIST), ``"cnn"`` (the BatchNorm CNN), both sized from the data; or an import string
        ``package.module:factory``, called as ``factory(input_shape, output_size, **model_kwargs)``
        and returning a :class:`~mlwork.nn.Model` or a ``flax.linen.Module``.
      model_kwargs: the factory's keyword arguments, a JSON object (e.g. ``'{"width": 32}'``).
      hidden: the MLP's hidden sizes, comma-separated (``None``: ``"256,128"``).
      dataset: ``"mnist"`` or ``"fashion_mnist"`` (28x28 grey images, 10 classes), when ``data`` is ``None``.
      data: an ``.npz`` file to train on instead (:func:`mlwork.data.load_npz`).
      task: ``"classification"`` or ``"regression"``; ``None``: inferred from the targets.
      loss: a loss name (:data:`mlwork.train.task.TASK_LOSSES`) or ``package.module:function``;
        ``None``: the targets' default.
      metrics: metric names (or import strings), comma-separated; ``None``: the targets' default.
      monitor_metric: the validation metric that chooses the best checkpoint and drives early
        stopping (``"loss"`` or one of the metrics); ``None``: the targets' default.
      monitor_mode: ``"min"`` or ``"max"``; ``None``: the monitored metric's own.
      data_dir: a folder with the four IDX files; ``None``: ``$MLWORK_DATA_DIR``, or the ``source``
        chain (:func:`mlwork.data.load_dataset`).
      test_dir: a folder whose ``t10k-*`` IDX files replace the test split.
      source: one of :data:`mlwork.data.SOURCES`; ``"auto"`` tries them in order.
      epochs: epochs to train, >= 1 (a resumed run trains up to this many in total).
      batch_size: examples per optimizer step, >= 1 (the global batch, split over ``devices``).
      optimizer: an Optax optimizer name (:data:`mlwork.optim.OPTIMIZERS`).
      lr: the peak learning rate, > 0.
      schedule: one of :data:`SCHEDULES`; ``"step"`` is the deck's StepLR (halve every 5 epochs).
      weight_decay: decoupled L2 strength, >= 0 (weights only, never biases or norm scales).
      l1: proximal L1 strength, >= 0 (weights only).
      clip_norm: clip gradients to this global L2 norm, > 0; ``None``: no clipping.
      dropout: the probability of dropping a unit, in ``[0, 1)``.
      augment: random shifts (±2 px) and rotations (±10°) on the device.
      compute_dtype: ``"float32"`` or ``"bfloat16"``, the dtype of the forward and backward pass
        (parameters and optimizer state stay float32).
      patience: early stopping after this many epochs without a better validation accuracy, >= 0
        (single models only); ``None``: off.
      seed: seed of initialisation, data order, dropout and augmentation.
      val_fraction: fraction of the training set held out for validation, in ``(0, 1)``.
      split_seed: seed of the validation split.
      keep_checkpoints: latest checkpoints kept, >= 1 (the best ``keep_best`` are kept as well).
      keep_best: checkpoints with the best monitored validation metric kept besides the latest,
        >= 1 (mid-epoch checkpoints carry no metric and never count among them).
      eval_batch_size: examples per evaluation batch, >= 1.
      devices: data-parallel over this many devices, >= 1; ``None``: all (populations: 1).
      steps_per_call: optimizer steps per compiled call, >= 1; ``None``: a whole epoch (smaller
        answers SIGTERM sooner).
      checkpoint_every_steps: also save a checkpoint mid-epoch every this many steps (counted from
        the epoch's start), >= 1; the epoch runs as compiled chunks that end at those steps, so a
        SIGKILL loses at most this many steps. ``None``: one checkpoint per epoch.
      checkpoint_every_minutes: also save mid-epoch once this many minutes have passed since the
        last checkpoint, > 0 (decided after each compiled chunk: ``steps_per_call`` steps, or
        ``CLOCK_CHUNK_STEPS`` (100)), so a SIGKILL loses at most this long plus one chunk.
        ``None``: off.
      stream: stream the training split from disk (:mod:`mlwork.data.stream`: memory-mapped
        ``.npy`` files, a seeded Grain pipeline, chunks prefetched by threads) instead of putting it
        on the device; the same batches in the same order, so the same result.
      device_memory_budget_mb: stream automatically (with a one-line notice) when the training
        inputs and targets exceed this many MiB, > 0; ``None``: only with ``stream``.
      population: train this many models (seeds ``seed`` to ``seed + population - 1``), >= 1, in
        one vmapped program.
      sweep: one member per value, times ``population`` seeds, e.g. ``"lr=1e-4,3e-4,1e-3"`` or
        ``"lr=1e-3,3e-3;weight_decay=0,1e-4"`` (see :func:`parse_sweep`).
      monitor: record the training monitor (per-layer gradient norms, update ratios, dead ReLUs).

    Raises:
      RunError: a field of the wrong type, outside its range, or not among its choices (naming the
        field and what was expected); ``devices`` other than 1 or ``patience`` for a population.

    Example:
      >>> from mlwork.train import RunError, TrainConfig
      >>> config = TrainConfig(model="cnn", epochs=12, population=2, sweep="lr=1e-3,3e-3")
      >>> config.is_population, [(m.seed, m.lr) for m in config.members()]
      (True, [(0, 0.001), (0, 0.003), (1, 0.001), (1, 0.003)])
      >>> try:
      ...     TrainConfig(dropout=1.0)
      ... except RunError as e:
      ...     print(e)
      dropout must be in [0, 1) (the probability of dropping a unit), got 1.0
    """

    model: str = _knob("mlp", "network: mlp (a ReLU MLP sized from the data, the deck's 784-256-128-10 on MNIST), "
                              "cnn (the BatchNorm CNN), or package.module:factory (a model of your own)")
    model_kwargs: str | None = _knob(None, "keyword arguments of a package.module:factory model, a JSON object")
    hidden: str | None = _knob(None, "hidden layer sizes of the mlp, comma-separated (none: 256,128)")
    dataset: str = _knob("mnist", "data set (the MNIST family, 28x28 grey images, 10 classes), unless --data",
                         choices=DATASETS)
    data: str | None = _knob(None, "an .npz file (x_train, y_train, optional x_val, y_val, x_test, y_test, "
                                   "class_names) to train on instead of --dataset")
    task: str | None = _knob(None, "classification or regression (none: inferred from the targets)", choices=TASKS)
    loss: str | None = _knob(None, f"loss: {', '.join(LOSSES)} or package.module:function (none: the targets' "
                                   "default)")
    metrics: str | None = _knob(None, "metrics, comma-separated: accuracy, topK_accuracy, mse, mae, rmse, r2 or "
                                      "package.module:function (none: the targets' default)")
    monitor_metric: str | None = _knob(None, "validation metric that picks the best checkpoint and drives early "
                                             "stopping: loss or one of the metrics (none: accuracy for classes, "
                                             "loss for values)")
    monitor_mode: str | None = _knob(None, "whether the monitored metric improves when it goes down (min) or up "
                                           "(max) (none: its own)", choices=MODES)
    data_dir: str | None = _knob(None, "folder with the four IDX files (.gz or raw); none: $MLWORK_DATA_DIR, or "
                                       "the chain of --source auto")
    test_dir: str | None = _knob(None, "evaluate on the t10k IDX files in this folder instead (e.g. the real "
                                       "MNIST test set)")
    source: str = _knob("auto", "data source (auto: --data-dir/$MLWORK_DATA_DIR, the download cache, TFDS when "
                                "TensorFlow is installed, a download, the system package, the embedded MNIST "
                                "sample; any other forces that one)", choices=SOURCES)
    epochs: int = _knob(10, "epochs to train (a resumed run trains up to this many in total)")
    batch_size: int = _knob(64, "examples per optimizer step (the global batch, split over --devices)")
    optimizer: str = _knob("adam", "Optax optimizer (the deck's section 14)", choices=OPTIMIZERS)
    lr: float = _knob(1e-3, "peak learning rate (swept members' rates replace it)", flag="--lr")
    schedule: str = _knob("step", "learning-rate schedule; step = the deck's StepLR (halve every 5 epochs); "
                                  "the cosine family, exponential and onecycle span --epochs; warmup_cosine warms "
                                  "up over the first epoch from exactly 0, as Optax's does (the first "
                                  "step moves nothing), onecycle from --lr/25",
                      choices=SCHEDULES)
    weight_decay: float = _knob(0.0, "decoupled L2 strength (weights only, never biases or norm scales)")
    l1: float = _knob(0.0, "proximal L1 strength (weights only)")
    clip_norm: float | None = _knob(None, "clip gradients to this global norm (none: no clipping)")
    dropout: float = _knob(0.2, "dropout probability, in [0, 1)")
    augment: bool = _knob(False, "random shifts (±2 px) and rotations (±10°) on the device")
    compute_dtype: str = _knob("float32", "dtype of the forward/backward pass; parameters and optimizer state "
                                          "stay float32 (bfloat16 is for accelerators)", choices=COMPUTE_DTYPES)
    patience: int | None = _knob(None, "early stopping: epochs without a better monitored validation metric "
                                       "(single models; none: off)")
    seed: int = _knob(0, "seed of initialisation, data order, dropout and augmentation")
    val_fraction: float = _knob(0.1, "fraction of the training set held out for validation, in (0, 1)")
    split_seed: int = _knob(0, "seed of the validation split (part of the data protocol, not the model)")
    keep_checkpoints: int = _knob(3, "latest checkpoints kept (the best --keep-best are kept as well)")
    keep_best: int = _knob(1, "checkpoints with the best monitored validation metric kept besides the latest")
    eval_batch_size: int = _knob(1000, "examples per evaluation batch")
    devices: int | None = _knob(None, "data-parallel over this many devices (none: all; populations: 1)")
    steps_per_call: int | None = _knob(None, "optimizer steps per compiled call (none: a whole epoch); "
                                             "smaller answers SIGTERM sooner")
    checkpoint_every_steps: int | None = _knob(None, "also checkpoint mid-epoch every N steps from the epoch's "
                                                     "start (a SIGKILL loses at most N steps; none: per epoch)")
    checkpoint_every_minutes: float | None = _knob(None, "also checkpoint mid-epoch once M minutes have passed "
                                                         "since the last checkpoint (decided after each chunk)")
    stream: bool = _knob(False, "stream the training split from memory-mapped .npy files through a Grain "
                                "pipeline instead of putting it on the device (same batches, same result)")
    device_memory_budget_mb: float | None = _knob(None, "stream automatically when the training arrays exceed "
                                                        "this many MiB (none: only with --stream)")
    population: int = _knob(1, "train K models (seeds seed..seed+K-1) in one vmapped program")
    sweep: str | None = _knob(None, "one member per value, times --population seeds: e.g. lr=1e-4,3e-4,1e-3 "
                                    "or 'lr=1e-3,3e-3;weight_decay=0,1e-4'")
    monitor: bool = _knob(True, "training monitor: per-layer gradient norms, update ratios, dead ReLUs")

    def __post_init__(self) -> None:
        _validate(self)

    # -- derived -----------------------------------------------------------------------------
    @property
    def is_population(self) -> bool:
        """Whether the run's state has a member axis (``population > 1`` or a sweep)."""
        return self.population > 1 or self.sweep is not None

    @property
    def on_a_clock(self) -> bool:
        """Whether checkpoints are also saved mid-epoch (``checkpoint_every_steps`` or ``_minutes``)."""
        return self.checkpoint_every_steps is not None or self.checkpoint_every_minutes is not None

    def call_steps(self, steps_per_epoch: int, streamed: bool = False) -> int:
        """Optimizer steps per compiled call for an epoch of ``steps_per_epoch`` steps.

        A whole epoch unless ``steps_per_call`` or a checkpoint clock asks for chunks. With
        ``checkpoint_every_steps`` ``N`` the chunk length divides ``N`` (``N``, or
        ``gcd(N, steps_per_call)``), so chunks end at every multiple of ``N`` in the epoch; with
        only ``checkpoint_every_minutes``, ``steps_per_call`` or ``CLOCK_CHUNK_STEPS`` (100). A
        streamed split is read in chunks too: ``steps_per_call``, else ``CLOCK_CHUNK_STEPS``.

        Args:
          steps_per_epoch: optimizer steps per epoch, >= 1.
          streamed: the training split is streamed from the host (:mod:`mlwork.data.stream`).

        Returns:
          The chunk length, in ``[1, steps_per_epoch]``.

        Example:
          >>> from mlwork.train import TrainConfig
          >>> TrainConfig().call_steps(937), TrainConfig(checkpoint_every_steps=50).call_steps(937)
          (937, 50)
          >>> TrainConfig(checkpoint_every_steps=50, steps_per_call=20).call_steps(937)  # gcd: ends at 50, 100, ...
          10
          >>> TrainConfig(checkpoint_every_minutes=5).call_steps(937), TrainConfig(steps_per_call=7).call_steps(5)
          (100, 5)
        """
        n, per_call = self.checkpoint_every_steps, self.steps_per_call
        if n is not None:
            length = n if per_call is None else math.gcd(n, per_call)
        elif per_call is not None:
            length = per_call
        elif self.checkpoint_every_minutes is not None or streamed:
            length = CLOCK_CHUNK_STEPS
        else:
            length = steps_per_epoch
        return max(1, min(length, steps_per_epoch))

    def sweep_values(self) -> dict[str, list[float]]:
        """The parsed ``sweep`` (:func:`parse_sweep`).

        Returns:
          ``{"lr": [...], "weight_decay": [...]}``, only the swept names; ``{}`` without a sweep.

        Example:
          >>> from mlwork.train import TrainConfig
          >>> TrainConfig(sweep="weight_decay=0,1e-4").sweep_values()
          {'weight_decay': [0.0, 0.0001]}
        """
        return parse_sweep(self.sweep) if self.sweep else {}

    def members(self) -> list[Member]:
        """Every combination of the ``population`` seeds and the swept values (default: the config's own).

        Returns:
          The :class:`Member` list, seeds outermost, then ``lr``, then ``weight_decay``; one member
          for a single model.

        Example:
          >>> from mlwork.train import TrainConfig
          >>> TrainConfig(seed=3).members()
          [Member(seed=3, lr=0.001, weight_decay=0.0)]
        """
        sweep = self.sweep_values()
        return [Member(s, float(lr), float(wd)) for s, lr, wd in itertools.product(
            range(self.seed, self.seed + self.population), sweep.get("lr", [self.lr]),
            sweep.get("weight_decay", [self.weight_decay]))]

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (validated again).

        Args:
          **changes: field names and their new values.

        Returns:
          The new :class:`TrainConfig`.

        Raises:
          RunError: a new value is invalid.
          TypeError: an unknown field name.

        Example:
          >>> from mlwork.train import TrainConfig
          >>> TrainConfig().replace(epochs=3).epochs
          3
        """
        return dataclasses.replace(self, **changes)

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict, one key per field (what ``config.json`` records).

        Example:
          >>> from mlwork.train import TrainConfig
          >>> record = TrainConfig(lr=0.01).to_dict()
          >>> record["lr"], TrainConfig.from_dict(record) == TrainConfig(lr=0.01)
          (0.01, True)
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> TrainConfig:
        """The config among ``record``'s keys.

        ``config.json`` also records what the run found, under ``RUN_RECORD_KEYS`` (data source,
        shapes, members, versions); those are ignored. Missing fields take their defaults.

        Args:
          record: a dict of field values, e.g. a parsed ``config.json``.

        Returns:
          The validated :class:`TrainConfig`.

        Raises:
          RunError: a key that is neither a field nor a run-record key, or an invalid value.

        Example:
          >>> from mlwork.train import RunError, TrainConfig
          >>> TrainConfig.from_dict({"epochs": 2, "n_params": 235146}).epochs
          2
          >>> try:
          ...     TrainConfig.from_dict({"epoch": 2})
          ... except RunError as e:
          ...     print(str(e).split(";")[0])
          config has unknown fields ['epoch']
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(record) - names - set(RUN_RECORD_KEYS)
        if unknown:
            raise RunError(f"config has unknown fields {sorted(unknown)}; known: {sorted(names)}")
        return cls(**{k: v for k, v in record.items() if k in names})

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        """Read a run's ``config.json`` back: ``TrainConfig.from_json(workdir / "config.json")``.

        Args:
          path: the JSON file.

        Returns:
          The validated :class:`TrainConfig` (see :meth:`from_dict`).

        Raises:
          RunError: the file cannot be read, is not JSON, does not hold an object, or holds an
            unknown field or an invalid value.

        Example:
          >>> import json, tempfile
          >>> from pathlib import Path
          >>> from mlwork.train import TrainConfig
          >>> tmp = tempfile.TemporaryDirectory()
          >>> path = Path(tmp.name) / "config.json"
          >>> _ = path.write_text(json.dumps(TrainConfig(model="cnn").to_dict()))
          >>> TrainConfig.from_json(path).model
          'cnn'
          >>> tmp.cleanup()
        """
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise RunError(f"cannot read config {path}: {e}") from None
        if not isinstance(record, dict):
            raise RunError(f"config {path} must hold a JSON object")
        return cls.from_dict(record)

    def resume_mismatch(self, recorded: dict[str, Any]) -> str | None:
        """What differs between this config (a ``--resume`` request) and a run's recorded config.

        The fields compared are ``RESUME_KEYS`` (those that shape the model, the data or the
        optimizer), and ``epochs`` too when the schedule spans the run's length; a recorded config
        missing a key counts as that key's default. A field the run left to inference (``task``,
        ``loss``, ``metrics``, ``monitor_metric``, ``monitor_mode`` recorded as ``None``) agrees with
        the value the run inferred (recorded as ``loss_name``, ``metric_names``, ...). ``epochs``
        may grow (under a schedule that does not span the run), never shrink.

        Args:
          recorded: the run's recorded config (a parsed ``config.json``).

        Returns:
          The first difference as one phrase (``"lr=0.001, not 0.01"``), or ``None`` when the run can
          continue under this config.

        Example:
          >>> from mlwork.train import TrainConfig
          >>> recorded = TrainConfig().to_dict()
          >>> TrainConfig(epochs=20).resume_mismatch(recorded) is None  # longer, under the step schedule
          True
          >>> TrainConfig(lr=0.01).resume_mismatch(recorded)
          'lr=0.001, not 0.01'
          >>> inferred = {**recorded, "loss_name": "mse"}  # the run inferred MSE from its targets
          >>> TrainConfig(loss="mse").resume_mismatch(inferred) is None
          True
          >>> TrainConfig(loss="mae").resume_mismatch(inferred)
          "loss=None (inferred: 'mse'), not 'mae'"
          >>> TrainConfig(epochs=3).resume_mismatch({**recorded, "epochs": 5})
          'epochs=5, not 3 (a resume may add epochs, not remove them; a shorter run needs a new workdir)'
        """
        keys = RESUME_KEYS + (("epochs",) if self.schedule in RUN_LENGTH_SCHEDULES else ())
        for key in keys:
            old, new = recorded.get(key, _DEFAULTS[key]), getattr(self, key)
            if old == new:
                continue
            inferred = _inferred(key, recorded)
            if old is None and inferred is not None:  # the run inferred it: naming what it inferred is no change
                if _as_inferred(key, new) == inferred:
                    continue
                return f"{key}=None (inferred: {_shown(key, inferred)!r}), not {new!r}"
            why = (f" (the {self.schedule} schedule spans the run's epochs; a longer run needs a new workdir)"
                   if key == "epochs" else "")
            return f"{key}={old!r}, not {new!r}{why}"
        old_epochs = recorded.get("epochs", _DEFAULTS["epochs"])
        if isinstance(old_epochs, int) and self.epochs < old_epochs:
            return (f"epochs={old_epochs!r}, not {self.epochs!r} (a resume may add epochs, not remove them; a "
                    "shorter run needs a new workdir)")
        return None


#: Config fields whose ``None`` means "inferred from the targets" -> the run-record key naming what was inferred.
_INFERRED_KEYS = {"task": "target", "loss": "loss_name", "metrics": "metric_names", "monitor_metric": "monitored",
                  "monitor_mode": "monitored_mode"}
_TASK_OF_TARGET = {"classes": "classification", "multilabel": "classification", "values": "regression"}


def _inferred(key: str, recorded: dict[str, Any]) -> Any:
    """What a run recorded as inferred for config field ``key`` (comparable with :func:`_as_inferred`), or ``None``."""
    value = recorded.get(_INFERRED_KEYS.get(key, ""))
    if value is None:
        return None
    if key == "task":
        return _TASK_OF_TARGET.get(value)
    return tuple(value) if key == "metrics" else value


def _as_inferred(key: str, value: Any) -> Any:
    """A config value in the form the run record keeps (metrics: the names the task reports, in order)."""
    if key == "metrics" and isinstance(value, str):
        names = (name.strip() for name in value.split(","))
        return tuple(name.rpartition(":")[2] for name in names if name and name != "loss")
    return value


def _shown(key: str, inferred: Any) -> Any:
    return ",".join(inferred) if key == "metrics" else inferred


def _validate(c: TrainConfig) -> None:
    for f in dataclasses.fields(c):
        value = getattr(c, f.name)
        kinds = _kinds(f.type)
        if value is None and type(None) in kinds:
            continue
        if isinstance(value, bool) and bool not in kinds:
            raise RunError(f"{f.name} must be {_describe(kinds)}, got {value!r}")
        if not isinstance(value, kinds) or (float in kinds and isinstance(value, float) and not math.isfinite(value)):
            if float in kinds and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(c, f.name, float(value))
                continue
            raise RunError(f"{f.name} must be {'a finite ' if float in kinds else ''}{_describe(kinds)}, "
                           f"got {value!r}")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise RunError(f"unknown {f.name} {value!r}; expected one of: {', '.join(choices)}")
    positive = ("epochs", "batch_size", "keep_checkpoints", "keep_best", "eval_batch_size", "population")
    for name in positive + ("steps_per_call", "devices", "checkpoint_every_steps"):
        value = getattr(c, name)
        if value is not None and value < 1:
            raise RunError(f"{name} must be >= 1, got {value}")
    if c.device_memory_budget_mb is not None and c.device_memory_budget_mb <= 0:
        raise RunError(f"device_memory_budget_mb must be > 0, got {c.device_memory_budget_mb}")
    if c.checkpoint_every_minutes is not None and c.checkpoint_every_minutes <= 0:
        raise RunError(f"checkpoint_every_minutes must be > 0, got {c.checkpoint_every_minutes}")
    if c.lr <= 0:
        raise RunError(f"lr must be > 0 (a learning rate), got {c.lr}")
    for name in ("weight_decay", "l1"):
        if getattr(c, name) < 0:
            raise RunError(f"{name} must be >= 0, got {getattr(c, name)}")
    if c.clip_norm is not None and c.clip_norm <= 0:
        raise RunError(f"clip_norm must be > 0, got {c.clip_norm}")
    if not 0.0 <= c.dropout < 1.0:
        raise RunError(f"dropout must be in [0, 1) (the probability of dropping a unit), got {c.dropout}")
    if c.patience is not None and c.patience < 0:
        raise RunError(f"patience must be >= 0, got {c.patience}")
    if not 0.0 < c.val_fraction < 1.0:
        raise RunError(f"val_fraction must be in (0, 1), got {c.val_fraction}")
    if c.sweep is not None:
        parse_sweep(c.sweep)
    if c.model not in MODELS and not _is_import_string(c.model):
        raise RunError(f"model must be one of {', '.join(MODELS)} or package.module:factory; got {c.model!r}")
    if c.model_kwargs is not None:
        try:
            kwargs = json.loads(c.model_kwargs)
        except ValueError:
            kwargs = None
        if not isinstance(kwargs, dict):
            raise RunError(f"model_kwargs must be a JSON object such as '{{\"width\": 32}}'; got {c.model_kwargs!r}")
        if c.model in MODELS:
            raise RunError(f"model_kwargs must be None for the built-in model {c.model!r} (use hidden, dropout); got "
                           f"{c.model_kwargs!r}")
    if c.hidden is not None:
        try:
            sizes = [int(v) for v in c.hidden.split(",")]
        except ValueError:
            sizes = []
        if not sizes or any(v < 1 for v in sizes):
            raise RunError(f"hidden must be comma-separated positive integers such as '256,128'; got {c.hidden!r}")
    if c.loss is not None and c.loss not in TASK_LOSSES and not _is_import_string(c.loss):  # registered ones too
        raise RunError(f"loss must be one of {', '.join(TASK_LOSSES)} or package.module:function; got {c.loss!r}")
    if c.metrics is not None and not [m for m in c.metrics.split(",") if m.strip()]:
        raise RunError(f"metrics must be comma-separated metric names; got {c.metrics!r}")
    monitor = c.monitor_metric or {"classification": "accuracy", "regression": "loss"}.get(c.task or "")
    natural = natural_mode(monitor) if monitor else None
    if c.monitor_mode is not None and natural is not None and c.monitor_mode != natural:
        raise RunError(f"monitor_mode must be {natural!r} for {monitor!r} (it improves that way); "
                       f"got {c.monitor_mode!r}")
    if c.is_population:
        if c.devices not in (None, 1):
            raise RunError(f"a population runs on one device (devices 1); got devices={c.devices} — data "
                           "parallelism is for single models")
        if c.patience is not None:
            raise RunError("patience (early stopping) is for single models: every population member trains for "
                           "epochs, and each member's best epoch is kept")


def natural_mode(metric: str) -> str | None:
    """Whether the built-in metric ``metric`` improves going down (``"min"``: the loss, errors)
    or up (``"max"``: accuracies, R²); ``None`` for a name this table does not know (a user's
    metric), which :func:`mlwork.train.task.make_task` settles once the data are known. Known
    here, without JAX or the data, so a contradicting ``monitor_mode`` is refused before either
    loads (tests/train/test_any_data.py checks it against every metric's own mode)."""
    if metric in ("loss", "mse", "mae", "rmse"):
        return "min"
    if metric in ("accuracy", "r2") or re.fullmatch(r"top\d+_accuracy", metric):
        return "max"
    return None


def _is_import_string(text: str) -> bool:
    module, sep, attribute = text.partition(":")
    return bool(sep) and all(p.isidentifier() for p in module.split(".") + attribute.split("."))


def hidden_sizes(config: TrainConfig) -> tuple[int, ...]:
    """The MLP's hidden sizes: ``config.hidden`` parsed, or the deck's ``(256, 128)``.

    Example:
      >>> from mlwork.train.config import TrainConfig, hidden_sizes
      >>> hidden_sizes(TrainConfig()), hidden_sizes(TrainConfig(hidden="32"))
      ((256, 128), (32,))
    """
    return (256, 128) if config.hidden is None else tuple(int(v) for v in config.hidden.split(","))


def _kinds(annotation: Any) -> tuple[type, ...]:
    hint = eval(annotation, {}) if isinstance(annotation, str) else annotation  # noqa: S307 (our own annotations)
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return tuple(args)


def _describe(kinds: tuple[type, ...]) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "None"}
    return " or ".join(names[k] for k in kinds)


def parse_sweep(text: str) -> dict[str, list[float]]:
    """Parse a sweep: ``"lr=1e-4,3e-4;weight_decay=0,1e-4"`` -> ``{"lr": [1e-4, 3e-4], "weight_decay": [0.0, 1e-4]}``.

    Names are separated by ``;``, values by ``,``; ``-`` in a name reads as ``_``.

    Args:
      text: the sweep, ``NAME=V1,V2,...`` with ``NAME`` in ``SWEEPABLE`` (``lr``,
        ``weight_decay``).

    Returns:
      The values of each name given, as floats, in order.

    Raises:
      RunError: an empty text, an unknown name, a non-number, a negative or non-finite value, a
        learning rate <= 0.

    Example:
      >>> from mlwork.train import parse_sweep
      >>> parse_sweep("lr=1e-4,3e-4; weight-decay=0")
      {'lr': [0.0001, 0.0003], 'weight_decay': [0.0]}
    """
    sweep: dict[str, list[float]] = {}
    if not isinstance(text, str) or not text.strip():
        raise RunError(f"sweep takes NAME=V1,V2,... with NAME in {SWEEPABLE}; got {text!r}")
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, values = part.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in SWEEPABLE:
            raise RunError(f"sweep takes NAME=V1,V2,... with NAME in {SWEEPABLE}; got {part!r}")
        try:
            sweep[name] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise RunError(f"sweep {name} values must be numbers, got {values!r}") from None
        positive = name == "lr"  # a learning rate of 0 trains nothing; a weight decay of 0 is none
        if not sweep[name] or any(not math.isfinite(v) or v < 0 or (positive and v == 0) for v in sweep[name]):
            wanted = "positive finite values (learning rates)" if positive else "non-negative finite values"
            raise RunError(f"sweep {name} needs {wanted}, got {values!r}")
    return sweep


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


# -- the command line ------------------------------------------------------------------------------
def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`TrainConfig` field (``--batch-size`` for ``batch_size``, ``--lr``),
    with its type, choices, default and help; booleans get ``--x/--no-x``."""
    group = parser.add_argument_group("run configuration (recorded in config.json)")
    for f in dataclasses.fields(TrainConfig):
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        kinds = [k for k in _kinds(f.type) if k is not type(None)]
        kw: dict[str, Any] = {"dest": f.name, "default": f.default, "help": f.metadata["help"]}
        if kinds == [bool]:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = kinds[0]
            kw["metavar"] = f.name.upper() if not f.metadata.get("choices") else None
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
        group.add_argument(flag, **{k: v for k, v in kw.items() if v is not None or k == "default"})


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed flags (raises :class:`RunError` on a bad value)."""
    return TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})


def given_config_flags(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The :class:`TrainConfig` fields whose flags ``argv`` sets (the ``parser`` of
    :func:`add_config_arguments`, which is left as it was)."""
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    saved, unset = {name: parser.get_default(name) for name in names}, object()
    parser.set_defaults(**dict.fromkeys(names, unset))
    try:
        given = vars(parser.parse_args(argv))
    finally:
        parser.set_defaults(**saved)
    return {name for name in names if given.get(name, unset) is not unset}


def resume_config(recorded: str | Path | dict[str, Any], given: dict[str, Any]) -> TrainConfig:
    """The config a resumed run asks for: the run's recorded one (its ``config.json``, or that
    file's record) with the values ``given`` on the command line on top. Whether the run may
    continue under it (only ``RESUME_KEYS`` must agree) is :meth:`TrainConfig.resume_mismatch`'s
    to say."""
    config = TrainConfig.from_json(recorded) if isinstance(recorded, (str, Path)) else TrainConfig.from_dict(recorded)
    return config.replace(**given)
