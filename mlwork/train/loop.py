"""``train_and_evaluate(config, workdir)``: the deck's training pipeline (section 21), compiled.

Per epoch: one compiled ``train_epoch`` (a ``lax.scan`` over the shuffled batches), one
compiled evaluation on the validation split, one fetch of the metrics to the host, a checkpoint
(latest N + best by validation accuracy), a line of ``metrics.jsonl``. At the end the *best*
checkpoint is evaluated on the test split, as the deck's pipeline does.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from tqdm.auto import tqdm

from mlwork import nn, optim
from mlwork.data.sources import Dataset, split_validation
from mlwork.train import checkpoint as ckpt
from mlwork.train import parallel, report
from mlwork.train.diagnostics import MONITOR_EVERY, accumulate_monitor, make_epoch_monitor, monitor_row
from mlwork.train.guard import Preempted, PreemptionGuard, WorkdirLock
from mlwork.train.hardware import compiler_options
from mlwork.train.provenance import reproducibility_record, run_metadata
from mlwork.train.state import TrainState, create_train_state
from mlwork.train.step import make_evaluate, make_train_chunk, make_train_step

MODELS = ("mlp", "cnn")
SCHEDULES = ("constant", "step", "exponential", "cosine", "warmup_cosine", "onecycle")
#: Config fields that must agree between a run and its resumption.
RESUME_KEYS = ("model", "dataset", "batch_size", "optimizer", "lr", "schedule", "weight_decay", "l1",
               "dropout", "augment", "seed", "val_fraction", "split_seed", "clip_norm")


class RunError(ValueError):
    """A problem with the run's inputs (workdir, resume, config): one line, nothing touched."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the last good checkpoint is intact."""

    def __init__(self, epoch: int, step: int, workdir: Path | None = None):
        self.epoch, self.step = epoch, step
        where = (f"no checkpoint was written for it — the last good one in {workdir / 'checkpoints'} is "
                 "intact (lower the learning rate, or --resume to continue from it)") if workdir else \
            "lower the learning rate"
        super().__init__(f"non-finite training loss at epoch {epoch}, step {step}; {where}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every knob of a run (the experiment's flags)."""

    model: str = "mlp"
    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "step"
    weight_decay: float = 0.0
    l1: float = 0.0
    dropout: float = 0.2
    augment: bool = False
    patience: int | None = None
    seed: int = 0  # initialisation, data order, dropout and augmentation
    val_fraction: float = 0.1
    split_seed: int = 0  # the validation split: part of the data protocol, not of the model's seed
    keep_checkpoints: int = 3
    clip_norm: float | None = None
    eval_batch_size: int = 1000
    devices: int | None = None  # data-parallel over this many devices (None: all local devices)
    steps_per_call: int | None = None  # optimizer steps per compiled call (None: a whole epoch)

    def validate(self) -> TrainConfig:
        if self.model not in MODELS:
            raise RunError(f"unknown model {self.model!r}; expected one of: {', '.join(MODELS)}")
        if self.schedule not in SCHEDULES:
            raise RunError(f"unknown schedule {self.schedule!r}; expected one of: {', '.join(SCHEDULES)}")
        if self.optimizer not in optim.OPTIMIZERS:
            raise RunError(f"unknown optimizer {self.optimizer!r}; expected one of: {', '.join(optim.OPTIMIZERS)}")
        for name in ("epochs", "batch_size", "keep_checkpoints", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise RunError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.steps_per_call is not None and self.steps_per_call < 1:
            raise RunError(f"steps_per_call must be >= 1, got {self.steps_per_call}")
        if self.devices is not None and self.devices < 1:
            raise RunError(f"devices must be >= 1, got {self.devices}")
        if self.patience is not None and self.patience < 0:
            raise RunError(f"patience must be >= 0, got {self.patience}")
        if not 0.0 < self.val_fraction < 1.0:
            raise RunError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        return self


def build_model(config: TrainConfig) -> nn.Model:
    """The deck's 784-256-128-10 ReLU MLP with dropout, or the BatchNorm CNN."""
    if config.model == "mlp":
        return nn.mlp([784, 256, 128, 10], activation="relu", dropout=config.dropout)
    return nn.cnn(dropout=config.dropout)


def build_schedule(config: TrainConfig, steps_per_epoch: int):
    """The learning-rate schedule in optimizer steps, from epoch-level choices:
    ``step`` halves the rate every 5 epochs (the deck's ``StepLR(5, 0.5)``); ``exponential``
    decays it tenfold over the run; the cosine family spans the whole run (warm-up: 1 epoch)."""
    total = max(1, config.epochs * steps_per_epoch)
    lr = config.lr
    return {
        "constant": lambda: optim.schedule("constant", value=lr),
        "step": lambda: optim.schedule("step", init_value=lr, step_size=5 * steps_per_epoch, gamma=0.5),
        "exponential": lambda: optim.schedule("exponential", init_value=lr, rate=float(np.log(10.0)) / total),
        "cosine": lambda: optim.schedule("cosine", init_value=lr, total_steps=total),
        "warmup_cosine": lambda: optim.schedule("warmup_cosine", peak_value=lr,
                                                warmup_steps=min(steps_per_epoch, total - 1), total_steps=total),
        "onecycle": lambda: optim.schedule("onecycle", peak_value=lr, total_steps=total),
    }[config.schedule]()


def _learning_rate(opt_state: Any) -> float | None:
    lr = optim.current_learning_rate(opt_state)
    return None if lr is None else float(lr)


def _has_checkpoints(workdir: Path) -> bool:
    folder = workdir / "checkpoints"
    return folder.is_dir() and any(p.name.isdigit() for p in folder.iterdir())


def _check_workdir(workdir: Path, config: TrainConfig, data_source: str, resume: bool) -> bool:
    """Refuse a workdir that holds another run (or nothing to resume). Returns ``True`` when a
    ``resume`` must start from scratch: the run was stopped before its first checkpoint."""
    existing = workdir / "config.json"
    has_checkpoints = _has_checkpoints(workdir)
    if not resume:
        if existing.exists() or has_checkpoints:
            raise RunError(f"workdir {workdir} already holds a run; pass --resume to continue it or "
                           "choose another --workdir")
        return False
    if not has_checkpoints and not existing.exists():
        raise RunError(f"--resume: no checkpoint in {workdir / 'checkpoints'}")
    if existing.exists():
        old = json.loads(existing.read_text())
        for key in RESUME_KEYS:
            if key in old and old[key] != getattr(config, key):
                raise RunError(f"workdir {workdir} holds a run with {key}={old[key]!r}, not "
                               f"{getattr(config, key)!r}; use another --workdir")
        if old.get("data_source") not in (None, data_source):
            raise RunError(f"workdir {workdir} was trained on {old['data_source']}, not {data_source}")
    return not has_checkpoints


class Run(NamedTuple):
    """A config made concrete: the model, the optimizer, and the splits on the device."""

    config: TrainConfig
    model: nn.Model
    tx: optax.GradientTransformation
    schedule: Callable[[Any], Any]
    custom_tx: bool
    stopper: optim.EarlyStopping
    mean: float
    std: float
    steps_per_epoch: int
    train: tuple[jax.Array, jax.Array]
    val: tuple[jax.Array, jax.Array]
    test: tuple[jax.Array, jax.Array]
    mesh: Mesh


def prepare(config: TrainConfig, dataset: Dataset, *, model: nn.Model | None = None,
            tx: optax.GradientTransformation | None = None) -> Run:
    """Validate ``config``, carve the seeded validation split, put the uint8 images and int32
    labels on the devices (replicated over the mesh), and build the model, schedule, optimizer
    and early stopping. A batch size the devices cannot split evenly is an error here, before
    anything compiles."""
    config.validate()
    try:
        mesh = parallel.make_mesh(config.devices)
        parallel.check_batch(config.batch_size, mesh)
    except ValueError as e:
        raise RunError(str(e)) from None
    mean, std = dataset.mean_std
    tr_x, tr_y, va_x, va_y = split_validation(dataset.train_images, dataset.train_labels,
                                              config.val_fraction, seed=config.split_seed)
    steps_per_epoch = len(tr_y) // config.batch_size
    if steps_per_epoch == 0:
        raise RunError(f"batch_size {config.batch_size} exceeds the {len(tr_y)} training examples")
    put = lambda x, dtype: parallel.put_replicated(np.asarray(x, dtype), mesh)  # noqa: E731
    schedule = build_schedule(config, steps_per_epoch)
    custom_tx = tx is not None
    tx = tx or optim.optimizer(config.optimizer, schedule, weight_decay=config.weight_decay, l1=config.l1,
                               clip_norm=config.clip_norm)
    stopper = optim.early_stopping(patience=config.patience if config.patience is not None else 2**30,
                                   mode="max")
    return Run(config, model or build_model(config), tx, schedule, custom_tx, stopper, mean, std,
               steps_per_epoch, (put(tr_x, np.uint8), put(tr_y, np.int32)),
               (put(va_x, np.uint8), put(va_y, np.int32)),
               (put(dataset.test_images, np.uint8), put(dataset.test_labels, np.int32)), mesh)


def init_state(run: Run) -> TrainState:
    """A fresh :class:`TrainState` seeded by ``config.seed``, replicated over the mesh."""
    state = create_train_state(run.model, run.tx, jax.random.key(run.config.seed), (28, 28), run.stopper)
    return parallel.put_replicated(state, run.mesh)


def make_evaluator(run: Run):
    """``evaluate(params, model_state, images, labels)``, jitted (see :func:`make_evaluate`)."""
    repl = parallel.replicated(run.mesh)
    return jax.jit(make_evaluate(run.model, mean=run.mean, std=run.std, batch_size=run.config.eval_batch_size,
                                 mesh=run.mesh), in_shardings=repl, out_shardings=repl)


class Compiled(NamedTuple):
    """The ahead-of-time compiled programs of a run."""

    chunks: dict[int, Any]      # steps per call -> compiled train_chunk
    steps_per_call: int
    evaluate_val: Any
    compile_time_s: float


def compile_run(run: Run, state: TrainState, *, monitor: bool = True) -> Compiled:
    """Compile the training call(s) and the validation evaluation ahead of time: one program per
    epoch by default; with ``config.steps_per_call`` a chunk program, plus one for the epoch's
    shorter last chunk when the chunk length does not divide the epoch.

    With ``monitor`` the calls also return the training monitor (:mod:`mlwork.train.diagnostics`):
    gradient norms sampled every ``MONITOR_EVERY`` steps and, at the epoch's end, parameter
    norms, the update/parameter ratio and the dead-ReLU fraction on a probe batch;
    :func:`run_epochs` writes them into each row."""
    every = min(MONITOR_EVERY, run.steps_per_epoch) if monitor else 0  # >= 1 sampled step per epoch
    train_step = make_train_step(run.model, run.tx, mean=run.mean, std=run.std, augment=run.config.augment,
                                 mesh=run.mesh, monitor_every=every)
    hook = make_epoch_monitor(run.model, mean=run.mean, std=run.std, tx=run.tx) if monitor else None
    repl = parallel.replicated(run.mesh)
    spe = run.steps_per_epoch
    per_call = min(run.config.steps_per_call or spe, spe)
    lengths = sorted({per_call, spe % per_call} - {0})
    options = compiler_options(run.mesh.devices.flat[0].platform)
    t0 = time.perf_counter()
    chunks = {}
    for length in lengths:
        fn = jax.jit(make_train_chunk(train_step, run.config.batch_size, None if length == spe else length,
                                      monitor=hook), donate_argnums=0, in_shardings=repl, out_shardings=repl)
        chunks[length] = fn.lower(state, *run.train).compile(compiler_options=options)
    evaluate_val = make_evaluator(run).lower(state.params, state.model_state, *run.val).compile(
        compiler_options=options)
    return Compiled(chunks, per_call, evaluate_val, time.perf_counter() - t0)


def run_epochs(run: Run, state: TrainState, compiled: Compiled, history: list[dict[str, Any]], *,
               on_epoch: Callable[[TrainState, dict[str, Any]], None] | None = None,
               on_preempt: Callable[[TrainState, dict[str, Any]], None] | None = None,
               guard: PreemptionGuard | None = None, partial: dict[str, Any] | None = None,
               stop_after: int | None = None, progress: bool = False, workdir: Path | None = None,
               log: Callable[[str], None] = print) -> tuple[TrainState, bool]:
    """Train from where ``state`` stands to ``config.epochs`` (or ``stop_after`` more epochs, or
    early stopping). Each epoch: the compiled call(s), the validation evaluation, one fetch of the
    metrics per call, a row appended to ``history``, then ``on_epoch(state, row)``
    (checkpointing). Returns ``(state, stopped_early)``.

    Raises :class:`NonFiniteLossError` (before ``on_epoch``) when the loss stops being finite,
    and :class:`~mlwork.train.guard.Preempted` after saving when ``guard`` saw SIGTERM: mid-epoch
    through ``on_preempt(state, partial_sums)``, or at the epoch's end after ``on_epoch``.
    ``partial`` carries the sums of an epoch resumed mid-way.
    """
    config, spe = run.config, run.steps_per_epoch
    start = int(state.epoch)
    bar = tqdm(total=config.epochs, initial=start, unit="epoch", disable=None if progress else True,
               desc=f"{config.dataset}-{config.model}")
    # A run resumed after early stopping stays stopped.
    bad_epochs = int(state.early_stopping.bad_epochs)
    stopped_early = config.patience is not None and bad_epochs > 0 and bad_epochs >= max(config.patience, 1)
    try:
        for epoch in range(start + 1, config.epochs + 1):
            if stopped_early:
                break
            position = int(state.step) - (epoch - 1) * spe
            sums = dict(partial) if partial and position > 0 else {"loss_sum": 0.0, "correct": 0, "time_s": 0.0}
            partial = None
            while position < spe:
                length = min(compiled.steps_per_call, spe - position)
                t = time.perf_counter()
                state, m = compiled.chunks[length](state, *run.train)
                m = jax.device_get({k: m[k] for k in ("loss_sum", "correct", "nonfinite_step", "monitor") if k in m})
                sums["time_s"] += time.perf_counter() - t
                if m["nonfinite_step"] >= 0:
                    raise NonFiniteLossError(epoch, int(m["nonfinite_step"]), workdir)
                sums["loss_sum"] += float(m["loss_sum"])
                sums["correct"] += int(m["correct"])
                sums["monitor"] = accumulate_monitor(sums.get("monitor"), m.get("monitor"))
                position += length
                if guard is not None and guard.requested and position < spe:
                    if on_preempt is not None:
                        on_preempt(state, sums)
                    raise Preempted(int(state.step), epoch - 1, workdir)
            val = jax.device_get(compiled.evaluate_val(state.params, state.model_state, *run.val))
            es_state, _, stop = run.stopper.update(state.early_stopping, val["accuracy"])
            state = state._replace(early_stopping=es_state)
            row = {"epoch": epoch, "train_loss": sums["loss_sum"] / spe,
                   "train_accuracy": sums["correct"] / (spe * config.batch_size),
                   "val_loss": float(val["loss"]), "val_accuracy": float(val["accuracy"]),
                   "learning_rate": _learning_rate(state.opt_state), "epoch_time_s": sums["time_s"],
                   **monitor_row(sums.get("monitor"))}
            history.append(row)
            if on_epoch is not None:
                on_epoch(state, row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_acc=f"{row['val_accuracy']:.4f}")
            if guard is not None and guard.requested and epoch < config.epochs:
                raise Preempted(int(state.step), epoch, workdir)
            if bool(stop):
                stopped_early = True
                log(f"early stopping after epoch {epoch}: no improvement in validation accuracy for "
                    f"{config.patience} epochs")
                break
            if stop_after is not None and epoch - start >= stop_after:
                break
    finally:
        bar.close()
    return state, stopped_early


class FitResult(NamedTuple):
    """What :func:`fit` returns: the final state, the per-epoch history, and the run."""

    state: TrainState
    history: list[dict[str, Any]]
    run: Run
    compile_time_s: float


def fit(config: TrainConfig, dataset: Dataset, *, model: nn.Model | None = None,
        tx: optax.GradientTransformation | None = None, progress: bool = False,
        log: Callable[[str], None] = print) -> FitResult:
    """Train in memory — the same compiled epochs as :func:`train_and_evaluate`, without a
    workdir, checkpoints or plots. Evaluate the result with ``make_evaluator(result.run)``."""
    run = prepare(config, dataset, model=model, tx=tx)
    state = init_state(run)
    compiled = compile_run(run, state)
    history: list[dict[str, Any]] = []
    state, _ = run_epochs(run, state, compiled, history, progress=progress, log=log)
    return FitResult(state, history, run, compiled.compile_time_s)


def train_and_evaluate(config: TrainConfig, workdir: str | Path, dataset: Dataset, *, resume: bool = False,
                       stop_after: int | None = None, progress: bool = True,
                       log: Callable[[str], None] = print, plots: bool = True, model: nn.Model | None = None,
                       tx: optax.GradientTransformation | None = None) -> dict[str, Any]:
    """Train ``config`` on ``dataset`` in ``workdir``; return the summary (also written to
    ``summary.json``).

    ``resume`` continues from the latest checkpoint with the same data order, RNG stream,
    schedule position and early-stopping counters, so the final parameters equal an
    uninterrupted run's bit for bit (CPU). ``stop_after`` ends this invocation after that many
    epochs, as if interrupted (for tests and for splitting a run).

    ``model`` (any :class:`~mlwork.nn.Model`, e.g. ``nn.from_flax(your_linen_module)``) and ``tx``
    (any Optax transformation) replace the ones ``config`` names; the rest of the pipeline
    (data, checkpoints, metrics, plots) is unchanged. ``plots=False`` skips the PNGs.

    Reliability: one run per workdir (a lock); SIGTERM saves a checkpoint after the compiled call
    in flight and raises :class:`~mlwork.train.guard.Preempted`; resuming skips damaged
    checkpoints (with a warning naming each) for the newest intact one; a failed write raises
    :class:`~mlwork.train.checkpoint.CheckpointError` naming the folder, earlier checkpoints intact.

    Raises:
      RunError: bad config, a workdir holding another run, ``resume`` without a checkpoint.
      WorkdirInUse: another process is training in ``workdir``.
      NonFiniteLossError: the loss became NaN/inf (nothing is saved for that epoch).
      Preempted: SIGTERM; a checkpoint was written.
      CheckpointError: a checkpoint could not be written, or none is intact to resume from.
    """
    config.validate()
    workdir = Path(workdir)
    _check_workdir(workdir, config, dataset.source, resume)  # read-only checks, before any write
    run = prepare(config, dataset, model=model, tx=tx)
    with WorkdirLock(workdir):
        fresh = _check_workdir(workdir, config, dataset.source, resume)  # again, now that we hold the lock
        state = init_state(run)
        manager = ckpt.checkpoint_manager(workdir, keep=config.keep_checkpoints)
        history: list[dict[str, Any]] = []
        partial = None
        try:
            if resume and fresh:
                log(f"no checkpoint in {workdir} yet (stopped before its first): starting from scratch")
            elif resume:
                state, record, step = ckpt.restore_latest_intact(manager, state, warn=log, quarantine=True)
                history = [r for r in record.get("history", []) if r["epoch"] <= int(state.epoch)]
                partial = record.get("partial")
                log(f"resumed from step {step} (epoch {int(state.epoch)}) in {manager.directory}")
            meta = {**dataclasses.asdict(config), "data_source": dataset.source,
                    "n_params": nn.count_params(state.params), "steps_per_epoch": run.steps_per_epoch,
                    **run_metadata(dataset, run.mean, run.std), "reproducibility": reproducibility_record(run.mesh)}
            report.write_json(workdir / "config.json", meta)
            report.write_metrics(workdir / "metrics.jsonl", history)
            compiled = compile_run(run, state)

            def on_epoch(state: TrainState, row: dict[str, Any]) -> None:
                ckpt.save(manager, int(state.step), state, {"history": history, "config": meta},
                          row["val_accuracy"], row["epoch"])
                report.write_metrics(workdir / "metrics.jsonl", history)

            def on_preempt(state: TrainState, sums: dict[str, Any]) -> None:
                ckpt.save(manager, int(state.step), state, {"history": history, "config": meta, "partial": sums})

            with PreemptionGuard() as guard:
                try:
                    state, stopped_early = run_epochs(run, state, compiled, history, on_epoch=on_epoch,
                                                      on_preempt=on_preempt, guard=guard, partial=partial,
                                                      stop_after=stop_after, progress=progress, workdir=workdir,
                                                      log=log)
                finally:
                    ckpt.wait(manager)  # a checkpoint being written is finished (or its failure reported)
            final_sha = report.params_sha256(state.params)
            best = ckpt.best_step(manager)
            best_state, _ = ckpt.restore(manager, state, best)
            best_epoch = ckpt.epoch_of(manager, best)
            test = jax.device_get(make_evaluator(run)(best_state.params, best_state.model_state, *run.test))
        finally:
            manager.close()

    epochs_run = int(state.epoch)
    summary = {
        "dataset": config.dataset, "data_source": dataset.source, "model": config.model,
        "n_params": nn.count_params(state.params), "epochs_run": epochs_run, "best_epoch": best_epoch,
        "best_val_accuracy": float(best_state.early_stopping.best),
        "test_accuracy": float(test["accuracy"]), "test_loss": float(test["loss"]),
        "compile_time_s": compiled.compile_time_s,
        "epoch_time_s_median": statistics.median(r["epoch_time_s"] for r in history) if history else None,
        "params_sha256": final_sha, "stopped_early": stopped_early,
        "finished": epochs_run >= config.epochs or stopped_early,
    }
    report.write_json(workdir / "summary.json", summary)
    if plots:
        _plot(workdir, run, dataset, history, test)
    return summary


def _plot(workdir: Path, run: Run, dataset: Dataset, history: list[dict[str, Any]], test: dict) -> None:
    config, steps_per_epoch = run.config, run.steps_per_epoch
    labels = np.asarray(dataset.test_labels)
    preds = np.asarray(test["predictions"])
    wrong = np.nonzero(preds != labels)[0][:32]
    if run.custom_tx:  # the schedule is inside the user's transformation: plot what was logged
        t_steps = np.array([r["epoch"] * steps_per_epoch for r in history])
        lr_values = np.array([np.nan if r["learning_rate"] is None else r["learning_rate"] for r in history])
    else:
        t_steps = np.arange(0, config.epochs * steps_per_epoch + 1, max(1, steps_per_epoch // 20))
        lr_values = np.asarray(jax.vmap(run.schedule)(jnp.asarray(t_steps)))
    report.plot_run(workdir / "plots", history, t_steps, lr_values,
                    report.confusion_matrix(labels, preds, 10), dataset.class_names,
                    np.asarray(dataset.test_images)[wrong], labels[wrong], preds[wrong],
                    f"{config.dataset} {config.model}", data_source=dataset.source, steps_per_epoch=steps_per_epoch)
