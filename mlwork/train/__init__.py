"""Training: config, the compiled programs, the epoch iterator, the run lifecycle, checkpoints.

The layout follows a run's data flow:

* :mod:`~mlwork.train.config` — :class:`TrainConfig`, every knob, validated once; its JSON and CLI.
* :mod:`~mlwork.train.errors` — the exceptions a run ends with and the one exit-code table.
* :mod:`~mlwork.train.task` — :class:`Task`: the loss, the metrics and the monitored metric, by name
  (registries :data:`TASK_LOSSES`, :data:`TASK_METRICS`, in :mod:`~mlwork.train.task_registry`) or as
  functions.
* :mod:`~mlwork.train.run` — :func:`prepare` (config + data -> :class:`Run`), :func:`init_state`;
  :mod:`~mlwork.train.builders` — the model and the schedule a config names.
* :mod:`~mlwork.train.members` — :class:`Members`: one model or a population (a leading member
  axis), and every way the two differ, so the rest runs the same code.
* :mod:`~mlwork.train.programs` — :func:`compile_run`, :func:`make_evaluator`: the compiled
  programs; :mod:`~mlwork.train.ensemble` — a population's ensemble.
* :mod:`~mlwork.train.loop` — :func:`train_epochs`, the loop as an iterator; :func:`fit` collects it.
* :mod:`~mlwork.train.lifecycle` — :func:`train_and_evaluate`: workdir, lock, resume, checkpoints,
  preemption, summary.
* :mod:`~mlwork.train.cli` — the process shell of a training command (flags, a multi-process
  job, refusals before the data, exit codes), so each experiment is a thin module.
* :mod:`~mlwork.train.load`, :mod:`~mlwork.train.inference`, :mod:`~mlwork.train.export` — after
  training: :func:`load_run`, :func:`predict_run`, :func:`export_run` / :func:`load_exported`.
* :mod:`~mlwork.train.step`, :mod:`~mlwork.train.state`, :mod:`~mlwork.train.checkpoint`,
  :mod:`~mlwork.train.guard`, :mod:`~mlwork.train.parallel`, :mod:`~mlwork.train.report` — the pieces.

Names load on first use (PEP 562), so ``from mlwork.train.config import TrainConfig`` parses a
command line without importing JAX.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "config": ("TrainConfig", "Member", "MODELS", "SCHEDULES", "parse_sweep"),
    "errors": ("RunError", "NonFiniteLossError", "CheckpointError", "WorkdirInUse", "Preempted", "EXIT_CODES",
               "EXIT_BAD_INPUT", "EXIT_NONFINITE", "EXIT_CHECKPOINT", "EXIT_PREEMPTED", "EXIT_INTERRUPTED",
               "exit_code"),
    "task": ("Task", "make_task"),
    "task_registry": ("Metric", "TASK_LOSSES", "TASK_METRICS", "register_loss", "register_metric"),
    "members": ("Members",),
    "builders": ("MODEL_BUILDERS", "build_model", "build_schedule", "check_outputs"),
    "run": ("Run", "Stream", "prepare", "init_state"),
    "programs": ("Compiled", "compile_run", "make_evaluator"),
    "ensemble": ("ensemble_predict", "ensemble_outputs", "ensemble_metrics"),
    "loop": ("EpochEnd", "Interrupted", "MidEpoch", "FitResult", "train_epochs", "fit"),
    "lifecycle": ("train_and_evaluate",),
    "checkpoint": ("best_step", "checkpoint_manager"),
    "compile_cache": ("enable_compilation_cache",),
    "guard": ("PreemptionGuard", "WorkdirLock"),
    "report": ("params_sha256",),
    "state": ("TrainState", "create_train_state"),
    "step": ("make_evaluate", "make_train_chunk", "make_train_epoch", "make_train_step", "make_streamed_chunk",
             "epoch_order"),
    "load": ("LoadedRun", "load_run"),
    "inference": ("predict_run",),
    "export": ("export_run", "load_exported"),
    "logs": ("epoch_line", "use_progress_bar"),
    "provenance": ("reproducibility_record",),
    "tensorboard": ("TensorBoardWriter",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBMODULES = ("builders", "checkpoint", "cli", "compile_cache", "config", "diagnostics", "ensemble", "errors",
               "export", "guard", "hardware", "inference", "lifecycle", "load", "logs", "loop", "members", "parallel",
               "programs", "provenance", "report", "run", "state", "step", "task", "task_registry", "tensorboard")

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name == "predict":  # deprecated alias (one version): it collided with mlwork.trees.predict
        import warnings

        warnings.warn("mlwork.train.predict is deprecated and will be removed in 0.3; use mlwork.train.predict_run",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module("mlwork.train.inference").predict_run
    if name in _WHERE:
        value = getattr(importlib.import_module(f"mlwork.train.{_WHERE[name]}"), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"mlwork.train.{name}")
    else:
        raise AttributeError(f"module 'mlwork.train' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE) | set(_SUBMODULES))
