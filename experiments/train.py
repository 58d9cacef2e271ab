"""Train any model on any data: an .npz file of arrays, or the MNIST family, with every guarantee of the trainer.

    python -m experiments.train --data diabetes.npz                  # a regression (float targets): MSE, R²
    python -m experiments.train --data digits.npz --model cnn        # uint8 8x8 images, 10 classes
    python -m experiments.train --data d.npz --task regression --loss huber --metrics mae,r2 --monitor-metric r2
    python -m experiments.train --data d.npz --model my_pkg.models:small_cnn --model-kwargs '{"width": 32}'
    python -m experiments.train --data d.npz --model mlp --hidden 64,32 --population 4
    python -m experiments.train --workdir runs/a --resume            # the run's own flags, from its config.json
    python -m experiments.train --data big.npz --device-memory-budget-mb 2048 --checkpoint-every-steps 500
                                  # streamed from disk when the split exceeds 2 GiB; a checkpoint every 500 steps
    python -m experiments.train                                      # no --data: MNIST (experiments.mnist's preset)

The ``.npz`` file holds ``x_train`` and ``y_train``, optionally ``x_val``/``y_val`` (otherwise a
seeded validation split is carved, ``--val-fraction``, ``--split-seed``), ``x_test``/``y_test``
(otherwise the test figures are the validation split's, and say so) and ``class_names``. The
inputs' dtype says what they are: uint8 images (normalised on the device), float features
(standardised with the training statistics, recorded for prediction) or integer tokens; the
targets' says the task: integer class labels (classification), float values (regression),
boolean multi-hot labels. ``--task`` overrides the inference (``regression`` on integer targets
reads them as values).

Writes to ``--workdir`` (default ``runs/<data>-<model>-<time>``): ``config.json``,
``metrics.jsonl`` (one line per epoch: the loss and every metric, train and validation),
``summary.json``, ``checkpoints/`` (Orbax: latest N and the best by the monitored validation
metric) and ``plots/`` (a confusion matrix and misclassified images for a classification;
predicted-vs-true and residuals for a regression).

Exit codes (one table for every experiment, :mod:`mlwork.train.errors`): 0 success; 2 bad input
(flags, a data file, targets that cannot fit the loss or the model's output, a workdir holding
another run or in use by one, a ``--resume`` that does not match the run or has nothing to
resume; nothing written); 3 non-finite loss; 4 a checkpoint could not be written; 69 a
multi-process job lost a process; 75 preempted (SIGTERM, SIGUSR1) after saving a checkpoint;
130 interrupted by SIGINT after saving.
"""

from __future__ import annotations

from pathlib import Path

from mlwork.train import cli
from mlwork.train.config import TrainConfig

PROG = "python -m experiments.train"


def parse_args(argv: list[str] | None, *, prog: str = PROG, description: str | None = None):
    """Flags -> ``(invocation flags, TrainConfig)``; exits 2 with one line on a bad flag. Imports no JAX
    (:func:`mlwork.train.cli.parse_args` under this command's name)."""
    return cli.parse_args(argv, prog=prog, description=description or __doc__.split("\n")[0])


def load_data(config: TrainConfig):
    """The data ``config`` names: its ``.npz`` file (``--task regression`` reads integer targets as
    values, ``--task classification`` integer or 0/1 float targets of shape ``(N, C)`` as multi-hot
    labels), or the MNIST-family data set through the source chain."""
    if config.data is not None:
        from mlwork.data import load_npz

        target = {"regression": "values", "classification": _classification_target(config.data)}.get(config.task)
        return load_npz(config.data, target=target)
    from mlwork.data import load_dataset

    return load_dataset(config.dataset, config.data_dir, test_dir=config.test_dir, source=config.source)


def _classification_target(path) -> str | None:
    """``"multilabel"`` when the file's ``y_train`` is an ``(N, C)`` array of integers, or of floats
    that are all 0 or 1 (multi-hot labels), else ``None`` (inferred; a file that cannot be read is
    :func:`~mlwork.data.load_npz`'s to report)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            y = z["y_train"]
    except Exception:  # noqa: BLE001 (load_npz names what is wrong with the file)
        return None
    if y.ndim != 2:
        return None
    if np.issubdtype(y.dtype, np.integer):
        return "multilabel"
    if np.issubdtype(y.dtype, np.floating) and y.size and bool(np.all((y == 0) | (y == 1))):
        return "multilabel"  # 0.0/1.0 columns: multi-hot labels saved as floats
    return None


def main(argv: list[str] | None = None, *, prog: str = PROG, description: str | None = None) -> int:
    """Train with the flags ``argv`` (the shell: :func:`mlwork.train.cli.run`); print the summary.

    Returns:
      The exit code (:mod:`mlwork.train.errors`).
    """
    args, config = parse_args(argv, prog=prog, description=description)
    code, summary, workdir = cli.run(args, config, load_data)
    if summary is not None:
        (_print_population if config.is_population else _print_single)(summary, workdir)
    return code


def _print_single(summary: dict, workdir: Path) -> None:
    monitor = summary.get("monitor", "accuracy")
    split = "test" if summary.get("test_split", "test") == "test" else "test (= validation split)"
    names = summary.get("metrics", ["accuracy"])
    labels = [f"{split} {name}" for name in [*names, "loss"]] + [f"best val {monitor}"]
    width = max(22, *(len(label) + 2 for label in labels))  # every label, then at least two spaces

    def row(label: str, value: str) -> None:
        print(f"{label:<{width}}{value}")

    print()
    row("dataset", f"{summary['dataset']}  ({summary['data_source']})")
    row("model", f"{summary['model']}  ({summary['n_params']:,} parameters)")
    row("epochs run", f"{summary['epochs_run']}  (best epoch {summary['best_epoch']})")
    best = summary.get(f"best_val_{monitor}")
    row(f"best val {monitor}", "-" if best is None else f"{best:.4f}")
    for name in names:
        row(f"{split} {name}", f"{summary[f'test_{name}']:.4f}")
    row(f"{split} loss", f"{summary['test_loss']:.4f}")
    row("compile time", f"{summary['compile_time_s']:.2f} s")
    if summary["epoch_time_s_median"] is not None:
        row("epoch time (median)", f"{summary['epoch_time_s_median']:.2f} s")
    row("params sha256", f"{summary['params_sha256'][:16]}…")
    row("outputs", str(workdir))


def _print_population(summary: dict, workdir: Path) -> None:
    monitor = summary.get("monitor", "accuracy")
    print(f"\npopulation of {summary['population']} ({summary['model']}, {summary['dataset']}, "
          f"{summary['data_source']}), {summary['epochs_run']} epochs")
    short = "acc" if monitor == "accuracy" else monitor[:8]
    print(f"{'member':>6} {'seed':>5} {'lr':>9} {'wd':>8} {'best ep':>7} {'val ' + short:>12} {'test ' + short:>13}")
    for k, m in enumerate(summary["members"]):
        print(f"{k:>6} {m['seed']:>5} {m['lr']:>9.3g} {m['weight_decay']:>8.3g} {m['best_epoch']:>7} "
              f"{m[f'best_val_{monitor}']:>12.4f} {m[f'test_{monitor}']:>13.4f}")
    kind = "mean softmax" if summary.get("task", "classes") == "classes" else "mean output"
    print(f"ensemble ({kind}) test {monitor}: {summary[f'ensemble_test_{monitor}']:.4f}")
    print(f"compile {summary['compile_time_s']:.2f} s, epoch (all members) {summary['epoch_time_s_median']:.2f} s; "
          f"outputs: {workdir}")


def run_main(argv: list[str] | None = None, *, main=main) -> None:
    """Run ``main`` (this module's :func:`main`, or a preset's) and exit with its code
    (:func:`mlwork.train.cli.exit_with`)."""
    cli.exit_with(main(argv))


if __name__ == "__main__":
    run_main()
