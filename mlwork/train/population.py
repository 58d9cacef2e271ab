"""Many models, one program: ``jax.vmap`` over train states (DESIGN.md, "many models").

A population is K members that differ by seed (initialisation, data order, dropout masks) and
optionally by learning rate and decoupled weight decay. Those two hyperparameters live in each
member's optimizer state (``lr_scale``, ``weight_decay``; see :func:`mlwork.optim.set_hyperparams`),
so one vmapped epoch trains every member at once, and member k ends exactly where training it
alone with the same seed and hyperparameters ends (to float32 tolerance: vmap batches the
matrix products). On a CPU the members train in vmapped blocks sized to the last-level cache,
the blocks one after another in the same program (:func:`mlwork.train.hardware.member_block`):
lockstep over more members than the cache holds streams every member's state from memory on
every step. Uses: seed ensembles (test accuracy of the mean softmax), learning-rate and
weight-decay sweeps, bias-variance estimates.

The population runs on one device; data parallelism (:mod:`mlwork.train.parallel`) is for
single models. Early stopping is not applied to populations (every member trains for
``config.epochs``), but each member's best epoch by validation accuracy is tracked and its best
parameters are what the test evaluation and the ensemble use.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from mlwork import nn, optim
from mlwork.data.sources import Dataset
from mlwork.train import checkpoint as ckpt
from mlwork.train import report
from mlwork.train.hardware import compiler_options, member_block
from mlwork.train.loop import Run, RunError, TrainConfig, _check_workdir, prepare
from mlwork.train.provenance import reproducibility_record, run_metadata
from mlwork.train.state import TrainState, create_train_state
from mlwork.train.step import make_evaluate, make_train_epoch, make_train_step

SWEEPABLE = ("lr", "weight_decay")


class Member(NamedTuple):
    """One population member's seed and hyperparameters."""

    seed: int
    lr: float
    weight_decay: float


def parse_sweep(text: str) -> dict[str, list[float]]:
    """``"lr=1e-4,3e-4;weight_decay=0,1e-4"`` -> ``{"lr": [...], "weight_decay": [...]}``."""
    sweep: dict[str, list[float]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, values = part.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in SWEEPABLE:
            raise ValueError(f"--sweep takes NAME=V1,V2,... with NAME in {SWEEPABLE}; got {part!r}")
        try:
            sweep[name] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--sweep {name} values must be numbers, got {values!r}") from None
        if not sweep[name] or any(not np.isfinite(v) or v < 0 for v in sweep[name]):
            raise ValueError(f"--sweep {name} needs non-negative finite values, got {values!r}")
    return sweep


def members_from(config: TrainConfig, population: int = 1, sweep: Mapping[str, Sequence[float]] | None = None
                 ) -> list[Member]:
    """Every combination of ``population`` seeds (``config.seed``, ``config.seed + 1``, ...) and
    the swept values (default: the config's own)."""
    if isinstance(population, bool) or int(population) != population or population < 1:
        raise ValueError(f"population must be a positive integer, got {population!r}")
    sweep = dict(sweep or {})
    unknown = set(sweep) - set(SWEEPABLE)
    if unknown:
        raise ValueError(f"cannot sweep {sorted(unknown)}; sweepable: {SWEEPABLE}")
    lrs = sweep.get("lr", [config.lr])
    if any(lr <= 0 for lr in lrs):
        raise ValueError(f"swept learning rates must be > 0, got {lrs}")
    seeds = [config.seed + i for i in range(int(population))]
    return [Member(s, float(lr), float(wd))
            for s, lr, wd in itertools.product(seeds, lrs, sweep.get("weight_decay", [config.weight_decay]))]


def init_population(run: Run, members: Sequence[Member]) -> TrainState:
    """A batch of K train states (every leaf has a leading member axis)."""
    keys = jnp.stack([jax.random.key(m.seed) for m in members])
    states = jax.vmap(lambda k: create_train_state(run.model, run.tx, k, (28, 28), run.stopper))(keys)
    scale = jnp.asarray([m.lr / run.config.lr for m in members], jnp.float32)
    decay = jnp.asarray([m.weight_decay for m in members], jnp.float32)
    return states._replace(opt_state=optim.set_hyperparams(states.opt_state, lr_scale=scale, weight_decay=decay))


class PopulationResult(NamedTuple):
    state: TrainState           # final states, batched over members
    best_params: Any            # each member's parameters at its best validation epoch
    best_model_state: Any
    history: list[dict[str, Any]]
    members: list[Member]
    run: Run
    compile_time_s: float
    member_block: int           # members per vmapped block (see mlwork.train.hardware.member_block)


def _state_bytes_per_member(state: TrainState) -> int:
    """Parameters, optimizer state and (as much again as the parameters) gradients, per member."""
    k = int(state.step.shape[0])
    nbytes = lambda tree: sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))  # noqa: E731
    return max(1, (2 * nbytes(state.params) + nbytes(state.opt_state)) // k)


def _compile(run: Run, state: TrainState, block: int | None = None):
    """Compile the population's epoch and evaluation. Members train in vmapped blocks of
    ``block`` (default :func:`mlwork.train.hardware.member_block`), the blocks one after another
    in the same program; returns ``(epoch, evaluate_val, evaluate, compile_time_s, block)``."""
    k = int(state.step.shape[0])
    block = member_block(_state_bytes_per_member(state), k) if block is None else int(block)
    if not 1 <= block <= k:
        raise ValueError(f"member block must be between 1 and the population size {k}, got {block}")
    train_step = make_train_step(run.model, run.tx, mean=run.mean, std=run.std, augment=run.config.augment)
    one = make_train_epoch(train_step, run.config.batch_size)
    if block == k:
        epoch = jax.jit(jax.vmap(one, in_axes=(0, None, None)), donate_argnums=0)
    else:
        epoch = jax.jit(lambda st, x, y: jax.lax.map(lambda s: one(s, x, y), st, batch_size=block),
                        donate_argnums=0)
    evaluate = jax.jit(jax.vmap(make_evaluate(run.model, mean=run.mean, std=run.std,
                                              batch_size=run.config.eval_batch_size), in_axes=(0, 0, None, None)))
    options = compiler_options()
    t0 = time.perf_counter()
    epoch_c = epoch.lower(state, *run.train).compile(compiler_options=options)
    eval_c = evaluate.lower(state.params, state.model_state, *run.val).compile(compiler_options=options)
    return epoch_c, eval_c, evaluate, time.perf_counter() - t0, block


def _keep_best(improved, new, old):
    return jax.tree.map(lambda n, o: jnp.where(improved.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old)


def fit_population(config: TrainConfig, dataset: Dataset, members: Sequence[Member], *,
                   model: nn.Model | None = None, progress: bool = False,
                   on_epoch: Callable[[TrainState, Any, Any, list[dict[str, Any]]], None] | None = None,
                   start: tuple[TrainState, Any, Any, list[dict[str, Any]]] | None = None,
                   member_block: int | None = None) -> PopulationResult:
    """Train every member in one vmapped program for ``config.epochs`` epochs (in memory;
    ``on_epoch(state, best_params, best_model_state, history)`` can checkpoint; ``start`` resumes).
    The history has one row per member per epoch. ``member_block``: members per vmapped block
    (default: as many as fit the CPU's cache, every member on an accelerator; see
    :func:`mlwork.train.hardware.member_block`); it changes speed, not results."""
    if config.devices not in (None, 1):
        raise RunError("a population runs on one device (--devices 1); data parallelism is for single models")
    if not members:
        raise RunError("a population needs at least one member")
    run = prepare(dataclasses.replace(config, devices=1, patience=None), dataset, model=model)
    if start is None:
        state = init_population(run, members)
        # Copies: the epoch donates (and so invalidates) the state's own buffers.
        best_params, best_mstate = jax.tree.map(jnp.copy, (state.params, state.model_state))
        history = []
    else:
        state, best_params, best_mstate, history = start
    epoch_c, eval_c, _, compile_time, block = _compile(run, state, member_block)
    bar = tqdm(total=config.epochs, initial=int(state.epoch[0]), unit="epoch", disable=None if progress else True,
               desc=f"population of {len(members)}")
    update = jax.vmap(run.stopper.update)
    for epoch in range(int(state.epoch[0]) + 1, config.epochs + 1):
        t = time.perf_counter()
        state, m = epoch_c(state, *run.train)
        m = jax.device_get({k: v for k, v in m.items() if k != "steps"})
        epoch_time = time.perf_counter() - t
        bad = np.nonzero(np.asarray(m["nonfinite_step"]) >= 0)[0]
        if bad.size:
            k = int(bad[0])
            raise RunError(f"member {k} ({members[k]}) hit a non-finite loss at epoch {epoch}, "
                           f"step {int(m['nonfinite_step'][k])}; lower its learning rate")
        val = jax.device_get(eval_c(state.params, state.model_state, *run.val))
        es, improved, _ = update(state.early_stopping, jnp.asarray(val["accuracy"]))
        state = state._replace(early_stopping=es)
        best_params = _keep_best(improved, state.params, best_params)
        best_mstate = _keep_best(improved, state.model_state, best_mstate)
        lrs = np.asarray(optim.current_learning_rate(state.opt_state))
        for k, mem in enumerate(members):
            history.append({"epoch": epoch, "member": k, "seed": mem.seed, "lr": mem.lr,
                            "weight_decay": mem.weight_decay, "train_loss": float(m["loss"][k]),
                            "train_accuracy": float(m["accuracy"][k]), "val_loss": float(val["loss"][k]),
                            "val_accuracy": float(val["accuracy"][k]), "learning_rate": float(lrs[k]),
                            "epoch_time_s": epoch_time})
        if on_epoch is not None:
            on_epoch(state, best_params, best_mstate, history)
        bar.update(1)
        bar.set_postfix(mean_val_acc=f"{float(np.mean(val['accuracy'])):.4f}")
    bar.close()
    return PopulationResult(state, best_params, best_mstate, history, list(members), run, compile_time, block)


def ensemble_predict(run: Run, params: Any, model_state: Any, images: jax.Array) -> jax.Array:
    """Mean softmax over the members (axis 0 of ``params``), in batches: ``(n, classes)``."""
    from mlwork.data.device import preprocess

    def member_probs(p, s, x):
        logits, _ = run.model.apply({"params": p, "state": s}, preprocess(x, run.mean, run.std))
        return jax.nn.softmax(logits)

    @jax.jit
    def batch_probs(x):
        return jnp.mean(jax.vmap(member_probs, in_axes=(0, 0, None))(params, model_state, x), axis=0)

    bs = run.config.eval_batch_size
    return jnp.concatenate([batch_probs(images[i:i + bs]) for i in range(0, images.shape[0], bs)])


def train_population(config: TrainConfig, workdir: str | Path, dataset: Dataset, members: Sequence[Member], *,
                     resume: bool = False, progress: bool = True, plots: bool = True,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train a population in ``workdir``: checkpoints of the batched state (latest N, plus the
    best mean validation accuracy), ``metrics.jsonl`` with one line per member per epoch, a
    ``summary.json`` with every member's test accuracy and the ensemble's, and
    ``plots/population_val.png``."""
    config.validate()
    workdir = Path(workdir)
    _check_workdir(workdir, config, dataset.source, resume)
    workdir.mkdir(parents=True, exist_ok=True)
    meta = {**dataclasses.asdict(config), "data_source": dataset.source,
            "members": [m._asdict() for m in members], **run_metadata(dataset, *dataset.mean_std),
            "reproducibility": reproducibility_record()}
    manager = ckpt.checkpoint_manager(workdir, keep=config.keep_checkpoints)
    try:
        start = None
        if resume:
            run = prepare(dataclasses.replace(config, devices=1, patience=None), dataset)
            template = init_population(run, members)
            saved, record, _ = ckpt.restore_latest_intact(manager, {"state": template, "best_params": template.params,
                                                                    "best_model_state": template.model_state},
                                                          warn=log, quarantine=True)
            if record.get("config", {}).get("members") != meta["members"]:
                raise RunError(f"workdir {workdir} holds a population with other members; use another --workdir")
            start = (saved["state"], saved["best_params"], saved["best_model_state"], list(record["history"]))
            log(f"resumed the population from epoch {int(saved['state'].epoch[0])}")
        report.write_json(workdir / "config.json", meta)

        def on_epoch(state, best_params, best_mstate, history):
            mean_val = float(np.mean([r["val_accuracy"] for r in history[-len(members):]]))
            ckpt.save(manager, int(state.step[0]), {"state": state, "best_params": best_params,
                                                    "best_model_state": best_mstate},
                      {"history": history, "config": meta}, mean_val, int(state.epoch[0]))
            report.write_metrics(workdir / "metrics.jsonl", history)

        result = fit_population(config, dataset, members, progress=progress, on_epoch=on_epoch, start=start)
        ckpt.wait(manager)
    finally:
        manager.close()

    run = result.run
    evaluate = jax.jit(jax.vmap(make_evaluate(run.model, mean=run.mean, std=run.std,
                                              batch_size=config.eval_batch_size), in_axes=(0, 0, None, None)))
    test = jax.device_get(evaluate(result.best_params, result.best_model_state, *run.test))
    probs = ensemble_predict(run, result.best_params, result.best_model_state, run.test[0])
    ensemble_acc = float(jnp.mean(jnp.argmax(probs, -1) == run.test[1]))
    per_member = []
    for k, mem in enumerate(members):
        rows = [r for r in result.history if r["member"] == k]
        best = max(rows, key=lambda r: (r["val_accuracy"], -r["epoch"]))
        per_member.append({**mem._asdict(), "best_epoch": best["epoch"], "best_val_accuracy": best["val_accuracy"],
                           "test_accuracy": float(test["accuracy"][k]), "test_loss": float(test["loss"][k]),
                           "params_sha256": report.params_sha256(jax.tree.map(lambda x, k=k: x[k],
                                                                              result.state.params))})
    times = sorted({r["epoch"]: r["epoch_time_s"] for r in result.history}.values())
    summary = {"dataset": config.dataset, "data_source": dataset.source, "model": config.model,
               "n_params": nn.count_params(jax.tree.map(lambda x: x[0], result.state.params)),
               "population": len(members), "epochs_run": int(result.state.epoch[0]),
               "members": per_member, "ensemble_test_accuracy": ensemble_acc,
               "best_member_test_accuracy": max(m["test_accuracy"] for m in per_member),
               "compile_time_s": result.compile_time_s, "member_block": result.member_block,
               "epoch_time_s_median": statistics.median(times) if times else None}
    report.write_json(workdir / "summary.json", summary)
    if plots:
        report.plot_population(workdir / "plots", result.history, len(members), data_source=dataset.source)
    return summary
