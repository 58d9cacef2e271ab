"""What a run leaves behind besides checkpoints: metrics files, the summary, and PNG plots."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np


def params_sha256(params: Any) -> str:
    """SHA-256 of the parameters' bytes, leaf by leaf in pytree order: equal hashes mean
    bit-identical parameters (used to compare runs, e.g. resumed vs uninterrupted)."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(params):
        arr = np.asarray(jax.device_get(leaf))
        h.update(str(arr.dtype).encode() + str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file renamed into place, so a reader never sees
    half a file. A failed write (disk full, read-only, folder gone) raises
    :class:`~mlwork.train.errors.CheckpointError` naming the path (exit 4), the old file intact."""
    from mlwork.train.errors import CheckpointError

    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise CheckpointError(f"could not write {path}: {e.strerror or e}") from None


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a temporary file renamed into place)."""
    _write_atomically(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.generic, np.ndarray)):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x)}")


def write_metrics(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """Rewrite ``metrics.jsonl`` from the history (one line per epoch)."""
    _write_atomically(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in history))


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``C[true, predicted]``."""
    return np.bincount(labels.astype(np.int64) * n_classes + predictions.astype(np.int64),
                       minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def plot_run(plots: Path, history: Sequence[dict[str, Any]], lr_steps: np.ndarray, lr_values: np.ndarray,
             confusion: np.ndarray, class_names: Sequence[str], mistakes: np.ndarray,
             mistake_labels: np.ndarray, mistake_preds: np.ndarray, title: str) -> list[Path]:
    """Loss and accuracy curves, the learning-rate schedule, the confusion matrix, a grid of
    misclassified test images and (when the rows hold the monitor's fields) the per-layer
    gradient norms, as PNGs in ``plots``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots.mkdir(parents=True, exist_ok=True)
    epochs = [r["epoch"] for r in history]
    written = []

    def save(fig, name):
        path = plots / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    a1.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    a1.set(xlabel="epoch", ylabel="cross-entropy (nats)", title=f"{title}: loss")
    a1.legend()
    a2.plot(epochs, [r["train_accuracy"] for r in history], "o-", label="train")
    a2.plot(epochs, [r["val_accuracy"] for r in history], "o-", label="validation")
    a2.set(xlabel="epoch", ylabel="accuracy", title=f"{title}: accuracy")
    a2.legend()
    save(fig, "curves.png")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(lr_steps, lr_values)
    ax.set(xlabel="optimizer step", ylabel="learning rate", title="learning-rate schedule")
    save(fig, "learning_rate.png")

    n = len(class_names)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(confusion, cmap="Blues")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if confusion[i, j] > confusion.max() / 2 else "black")
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title="test confusion matrix")
    ax.set_xticklabels(class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(class_names, fontsize=8)
    fig.colorbar(im, ax=ax)
    save(fig, "confusion_matrix.png")

    k = len(mistakes)
    cols = 8
    rows = max(1, -(-k // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < k:
            ax.imshow(mistakes[i], cmap="gray_r")
            ax.set_title(f"{class_names[mistake_preds[i]]} ({class_names[mistake_labels[i]]})", fontsize=7)
    fig.suptitle("misclassified test images: predicted (true)")
    save(fig, "misclassified.png")
    if any(r.get("grad_norm_layers") for r in history):  # the training monitor's rows
        from mlwork.train.diagnostics.plots import plot_gradient_norms

        written.append(plot_gradient_norms(plots / "gradient_norms.png", history, title))
    return written


def plot_population(plots: Path, history: Sequence[dict[str, Any]], n_members: int) -> Path:
    """Every member's validation accuracy per epoch, labelled by seed and hyperparameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for k in range(n_members):
        rows = [r for r in history if r["member"] == k]
        label = f"seed {rows[0]['seed']}, lr {rows[0]['lr']:g}" + (
            f", wd {rows[0]['weight_decay']:g}" if rows[0]["weight_decay"] else "")
        ax.plot([r["epoch"] for r in rows], [r["val_accuracy"] for r in rows], "o-", ms=3, label=label)
    ax.set(xlabel="epoch", ylabel="validation accuracy", title=f"population of {n_members}: validation curves")
    if n_members <= 16:
        ax.legend(fontsize=7)
    path = plots / "population_val.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def summarize(run: Any, dataset: Any, history: Sequence[dict[str, Any]], state: Any, test: dict[str, Any], *,
              compile_time_s: float, best_epoch: int | None, best_val_accuracy: float | None,
              stopped_early: bool, member_block: int | None) -> dict[str, Any]:
    """The run's ``summary.json``: test figures of the best checkpoint, epochs run, timings and
    the final parameters' SHA-256; for a population, each member's and the ensemble's."""
    import statistics

    from mlwork import nn

    config = run.config
    times = sorted({r["epoch"]: r["epoch_time_s"] for r in history}.values())
    common = {"dataset": config.dataset, "data_source": dataset.source, "model": config.model,
              "compile_time_s": compile_time_s, "epoch_time_s_median": statistics.median(times) if times else None}
    if run.members is None:
        epochs_run = int(state.epoch)
        return {**common, "n_params": nn.count_params(state.params), "epochs_run": epochs_run,
                "best_epoch": best_epoch, "best_val_accuracy": best_val_accuracy,
                "test_accuracy": float(test["accuracy"]), "test_loss": float(test["loss"]),
                "params_sha256": params_sha256(state.params), "stopped_early": stopped_early,
                "finished": epochs_run >= config.epochs or stopped_early}
    members = []
    for k, member in enumerate(run.members):
        rows = [r for r in history if r["member"] == k]
        best = max(rows, key=lambda r: (r["val_accuracy"], -r["epoch"])) if rows else None
        members.append({**member._asdict(), "best_epoch": best and best["epoch"],
                        "best_val_accuracy": best and best["val_accuracy"],
                        "test_accuracy": float(test["accuracy"][k]), "test_loss": float(test["loss"][k]),
                        "params_sha256": params_sha256(jax.tree.map(lambda x, k=k: x[k], state.params))})
    epochs_run = int(state.epoch[0])
    return {**common, "n_params": nn.count_params(jax.tree.map(lambda x: x[0], state.params)),
            "population": len(run.members), "epochs_run": epochs_run, "members": members,
            "ensemble_test_accuracy": test["ensemble_accuracy"],
            "best_member_test_accuracy": max(m["test_accuracy"] for m in members),
            "params_sha256": params_sha256(state.params), "member_block": member_block,
            "finished": epochs_run >= config.epochs}


def plot(plots: Path, run: Any, dataset: Any, history: Sequence[dict[str, Any]], test: dict[str, Any]) -> list[Path]:
    """The run's PNGs: :func:`plot_run` for a single model, :func:`plot_population` for a population.
    A failed write raises :class:`~mlwork.train.errors.CheckpointError` naming the folder."""
    from mlwork.train.errors import CheckpointError

    try:
        return _plot(plots, run, dataset, history, test)
    except OSError as e:
        raise CheckpointError(f"could not write the plots in {plots}: {e.strerror or e}") from None


def _plot(plots: Path, run: Any, dataset: Any, history: Sequence[dict[str, Any]], test: dict[str, Any]) -> list[Path]:
    import jax.numpy as jnp

    if run.members is not None:
        return [plot_population(plots, history, len(run.members))]
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
    return plot_run(plots, history, t_steps, lr_values, confusion_matrix(labels, preds, run.num_classes),
                    run.class_names, np.asarray(dataset.test_images)[wrong], labels[wrong], preds[wrong],
                    f"{config.dataset} {config.model}")
