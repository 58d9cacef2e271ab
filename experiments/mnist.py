"""Train on MNIST or Fashion-MNIST: the deck's full pipeline (sections 20-21), compiled.

    python -m experiments.mnist                       # MLP on the best available MNIST source
    python -m experiments.mnist --model cnn --augment
    python -m experiments.mnist --dataset fashion_mnist --data-dir /usr/share/datasets/fashion-mnist
    python -m experiments.mnist --workdir runs/a --epochs 4 --resume
    python -m experiments.mnist --population 8                      # 8 seeds in one vmapped program
    python -m experiments.mnist --sweep lr=1e-4,3e-4,1e-3,3e-3      # a learning-rate sweep, likewise
    python -m experiments.mnist --devices 4                         # data parallel over 4 devices

Writes to ``--workdir`` (default ``runs/<dataset>-<model>-<time>``): ``config.json``,
``metrics.jsonl`` (one line per epoch), ``summary.json``, ``checkpoints/`` (Orbax: latest N and
best) and ``plots/``.

Exit codes: 0 success; 2 bad input (flags, data files, a workdir holding another run or in use
by one, ``--resume`` with nothing to resume); 3 non-finite loss (nothing saved for that epoch);
4 a checkpoint could not be written (disk full or read-only; earlier checkpoints intact);
75 preempted by SIGTERM after saving a checkpoint (rerun with ``--resume``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT, EXIT_NONFINITE, EXIT_CHECKPOINT = 2, 3, 4


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from mlwork.optim import OPTIMIZERS
    from mlwork.train.loop import MODELS, SCHEDULES, TrainConfig

    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m experiments.mnist", description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=MODELS, default=d.model)
    p.add_argument("--dataset", choices=("mnist", "fashion_mnist"), default=d.dataset)
    p.add_argument("--data-dir", default=None,
                   help="folder with the four IDX files (.gz or raw); default $MLWORK_DATA_DIR, then TFDS, "
                        "the system package, the embedded 5k sample")
    p.add_argument("--test-dir", default=None,
                   help="evaluate on the t10k IDX files in this folder instead (e.g. the real MNIST test set)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule,
                   help="step = the deck's StepLR (halve every 5 epochs)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="decoupled L2 (weights only)")
    p.add_argument("--l1", type=float, default=d.l1, help="proximal L1 strength (weights only)")
    p.add_argument("--clip-norm", type=float, default=d.clip_norm, help="clip gradients to this global norm")
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--augment", action="store_true", help="random shifts (±2 px) and rotations (±10°)")
    p.add_argument("--patience", type=int, default=d.patience, help="early stopping on validation accuracy")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--keep-checkpoints", type=int, default=d.keep_checkpoints)
    p.add_argument("--devices", type=int, default=None,
                   help="data-parallel over this many devices (default: all local devices)")
    p.add_argument("--population", type=int, default=1,
                   help="train K models (seeds seed..seed+K-1) in one vmapped program")
    p.add_argument("--sweep", default=None,
                   help="e.g. lr=1e-4,3e-4,1e-3 or 'lr=1e-3,3e-3;weight_decay=0,1e-4': one member per value "
                        "(times --population seeds)")
    p.add_argument("--workdir", default=None, help="default runs/<dataset>-<model>-<time>")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --workdir")
    p.add_argument("--steps-per-call", type=int, default=None,
                   help="optimizer steps per compiled call (default: a whole epoch); smaller answers SIGTERM sooner")
    p.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--compute-dtype", choices=("float32", "bfloat16"), default=d.compute_dtype,
                   help="the forward pass's dtype; bfloat16 is for accelerators (parameters stay float32)")
    p.add_argument("--no-compile-cache", action="store_true", help="do not use the persistent compilation cache")
    args = p.parse_args(argv)
    if args.resume and not args.workdir:
        p.error("--resume needs --workdir (the run to continue)")
    if args.population < 1:
        p.error("--population must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from mlwork.data import DataError, load_dataset
    from mlwork.nn.layers import check_rate
    from mlwork.train import (
        EXIT_PREEMPTED,
        CheckpointError,
        NonFiniteLossError,
        Preempted,
        RunError,
        TrainConfig,
        WorkdirInUse,
        enable_compilation_cache,
        train_and_evaluate,
    )
    from mlwork.train.parallel import maybe_initialize_distributed
    from mlwork.train.population import members_from, parse_sweep, train_population

    maybe_initialize_distributed()

    config = TrainConfig(model=args.model, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                         optimizer=args.optimizer, lr=args.lr, schedule=args.schedule,
                         weight_decay=args.weight_decay, l1=args.l1, dropout=args.dropout, augment=args.augment,
                         patience=args.patience, seed=args.seed, val_fraction=args.val_fraction,
                         keep_checkpoints=args.keep_checkpoints, clip_norm=args.clip_norm, devices=args.devices,
                         steps_per_call=args.steps_per_call, compute_dtype=args.compute_dtype)
    workdir = Path(args.workdir or f"runs/{args.dataset}-{args.model}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        config.validate()
        check_rate(args.dropout, "--dropout")
        if not args.no_compile_cache:
            enable_compilation_cache()
        dataset = load_dataset(args.dataset, args.data_dir, test_dir=args.test_dir)
        if dataset.notice:
            sys.stdout.flush()
            print(dataset.notice, file=sys.stderr, flush=True)
        print(f"data: {dataset.source} — {len(dataset.train_labels)} train, {len(dataset.test_labels)} test; "
              f"workdir: {workdir}")
        if args.population > 1 or args.sweep:
            members = members_from(config, args.population, parse_sweep(args.sweep) if args.sweep else None)
            if args.devices is None:
                config = dataclasses.replace(config, devices=1)
            summary = train_population(config, workdir, dataset, members, resume=args.resume)
            _print_population(summary, workdir)
            return 0
        summary = train_and_evaluate(config, workdir, dataset, resume=args.resume, stop_after=args.stop_after)
    except (DataError, RunError, WorkdirInUse, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_NONFINITE
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_CHECKPOINT
    except Preempted as e:
        print(str(e), file=sys.stderr)
        return EXIT_PREEMPTED

    print()
    print(f"{'dataset':<22}{summary['dataset']}  ({summary['data_source']})")
    print(f"{'model':<22}{summary['model']}  ({summary['n_params']:,} parameters)")
    print(f"{'epochs run':<22}{summary['epochs_run']}  (best epoch {summary['best_epoch']})")
    print(f"{'best val accuracy':<22}{summary['best_val_accuracy']:.4f}")
    print(f"{'test accuracy':<22}{summary['test_accuracy']:.4f}  (loss {summary['test_loss']:.4f})")
    print(f"{'compile time':<22}{summary['compile_time_s']:.2f} s")
    if summary["epoch_time_s_median"] is not None:
        print(f"{'epoch time (median)':<22}{summary['epoch_time_s_median']:.2f} s")
    print(f"{'params sha256':<22}{summary['params_sha256'][:16]}…")
    print(f"{'outputs':<22}{workdir}")
    return 0


def _print_population(summary: dict, workdir: Path) -> None:
    print(f"\npopulation of {summary['population']} ({summary['model']}, {summary['dataset']}, "
          f"{summary['data_source']}), {summary['epochs_run']} epochs")
    print(f"{'member':>6} {'seed':>5} {'lr':>9} {'wd':>8} {'best ep':>7} {'val acc':>8} {'test acc':>9}")
    for k, m in enumerate(summary["members"]):
        print(f"{k:>6} {m['seed']:>5} {m['lr']:>9.3g} {m['weight_decay']:>8.3g} {m['best_epoch']:>7} "
              f"{m['best_val_accuracy']:>8.4f} {m['test_accuracy']:>9.4f}")
    print(f"ensemble (mean softmax) test accuracy: {summary['ensemble_test_accuracy']:.4f}")
    print(f"compile {summary['compile_time_s']:.2f} s, epoch (all members) {summary['epoch_time_s_median']:.2f} s; "
          f"outputs: {workdir}")


if __name__ == "__main__":
    raise SystemExit(main())
