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

import argparse
import os
import sys
import time
from pathlib import Path

from mlwork.train.config import (
    TrainConfig,
    add_config_arguments,
    config_from_args,
    given_config_flags,
    resume_config,
)
from mlwork.train.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PREEMPTED,
    RunError,
    exit_code,
    exit_codes_epilog,
)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _resume_value(text: str) -> str:
    if text != "auto":
        raise argparse.ArgumentTypeError(f"expected 'auto' or no value, got {text!r}")
    return text


def parse_args(argv: list[str] | None, *, prog: str = "python -m experiments.train",
               description: str | None = None) -> tuple[argparse.Namespace, TrainConfig]:
    """Flags -> ``(invocation flags, TrainConfig)``; exits 2 with one line on a bad flag. Imports no JAX.

    A ``--resume`` of a run (``auto`` too, when ``--workdir`` holds one) takes the flags not given
    from the run's ``config.json``. ``--data`` is recorded as an absolute path."""
    p = argparse.ArgumentParser(prog=prog, description=description or __doc__.split("\n")[0],
                                epilog=exit_codes_epilog(), formatter_class=_HelpFormatter)
    add_config_arguments(p)
    run = p.add_argument_group("this invocation")
    run.add_argument("--workdir", default=None, help="the run's folder (default: runs/<dataset>-<model>-<time>)")
    run.add_argument("--resume", nargs="?", const=True, default=False, type=_resume_value, metavar="auto",
                     help="continue the run in --workdir from its latest checkpoint; flags not given are the run's "
                          "(its config.json), flags given must agree with them or extend the run (e.g. more "
                          "--epochs). --resume auto: continue when --workdir holds a run, else start one (a "
                          "scheduler reruns the same command after every preemption)")
    run.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    run.add_argument("--no-compile-cache", action="store_true", help="do not use the persistent compilation cache")
    run.add_argument("--coordinator-address", default=None, metavar="HOST:PORT",
                     help="multi-process job: process 0's address (default: $JAX_COORDINATOR_ADDRESS)")
    run.add_argument("--num-processes", type=int, default=None,
                     help="multi-process job: processes in it (default: $JAX_NUM_PROCESSES)")
    run.add_argument("--process-id", type=int, default=None,
                     help="multi-process job: this process's index (default: $JAX_PROCESS_ID)")
    run.add_argument("--heartbeat-timeout", type=int, default=30, metavar="SECONDS",
                     help="multi-process job: a process silent this long is declared dead and the others stop")
    args = p.parse_args(argv)
    if args.heartbeat_timeout < 1:
        p.error("--heartbeat-timeout must be >= 1")
    if args.resume and not args.workdir:
        p.error("--resume needs --workdir (the run to continue)")
    if args.stop_after is not None and args.stop_after < 1:
        p.error("--stop-after must be >= 1")
    if args.data is not None:
        if not Path(args.data).is_file():
            why = "is a folder, not an .npz file" if Path(args.data).is_dir() else "does not exist"
            print(f"error: data file {args.data} {why}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT)
        args.data = str(Path(args.data).resolve())
    try:
        config = config_from_args(args)
        recorded = Path(args.workdir) / "config.json" if args.workdir else None
        if args.resume and recorded is not None and recorded.exists():  # the run's flags, the given ones on top
            given = {name: getattr(args, name) for name in given_config_flags(p, argv)}
            config = resume_config(recorded, given)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None
    return args, config


def load_data(config: TrainConfig):
    """The data ``config`` names: its ``.npz`` file (``--task regression`` reads integer targets as
    values), or the MNIST-family data set through the source chain."""
    if config.data is not None:
        from mlwork.data import load_npz

        return load_npz(config.data, target="values" if config.task == "regression" else None)
    from mlwork.data import load_dataset

    return load_dataset(config.dataset, config.data_dir, test_dir=config.test_dir, source=config.source)


def _default_workdir(config: TrainConfig) -> Path:
    name = Path(config.data).stem if config.data else config.dataset
    return Path(f"runs/{name}-{config.model.rpartition(':')[2]}-{time.strftime('%Y%m%d-%H%M%S')}")


def main(argv: list[str] | None = None, *, prog: str = "python -m experiments.train",
         description: str | None = None) -> int:
    args, config = parse_args(argv, prog=prog, description=description)
    workdir = Path(args.workdir) if args.workdir else _default_workdir(config)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from mlwork.train import enable_compilation_cache, train_and_evaluate
    from mlwork.train.lifecycle import check_workdir, quiet_orbax_logs
    from mlwork.train.parallel import is_primary, maybe_initialize_distributed, process_prefix
    from mlwork.train.peers import watch_peers

    quiet_orbax_logs(None)
    prefix = ""
    try:
        if maybe_initialize_distributed(args.coordinator_address, args.num_processes, args.process_id,
                                        heartbeat_timeout_s=args.heartbeat_timeout):
            watch_peers()  # a process that dies or fails stops the others at once, with one line (exit 69)
        quiet_orbax_logs(workdir / "orbax.log" if is_primary() else None)  # log files: the primary's only
        prefix = "" if is_primary() else process_prefix()  # the other processes' lines say which they are
        if prefix and not args.workdir:  # the default name has the time in it: processes would disagree
            raise RunError("a multi-process job needs --workdir (the same folder on every process)")
        from mlwork.train.programs import check_devices

        check_workdir(workdir, config, None, args.resume)  # refusals that need no data come before loading it
        check_devices(config)
        if not args.no_compile_cache:
            enable_compilation_cache()
        dataset = load_data(config)
        from mlwork.data import as_arrays

        arrays = as_arrays(dataset)
        n_test = "no test split (the validation split's figures)" if arrays.x_test is None else \
            f"{len(arrays.y_test)} test"
        print(f"{prefix}data: {arrays.source} — {len(arrays.y_train)} train, {n_test}; workdir: {workdir}", flush=True)
        summary = train_and_evaluate(config, workdir, dataset, resume=args.resume, stop_after=args.stop_after)
    except KeyboardInterrupt:  # SIGINT before training started (the run's guard answers it after)
        print("interrupted (SIGINT) before training started; nothing was saved", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except Exception as e:  # every documented failure: one line, its exit code
        try:
            code = exit_code(e)
        except TypeError:
            raise e from None
        print(prefix + ("" if code in (75, 130) else "error: ") + str(e).splitlines()[0], file=sys.stderr, flush=True)
        return code
    if prefix:
        print(f"{prefix}done (the primary process reports the run)", flush=True)
        return EXIT_OK
    if config.is_population:
        _print_population(summary, workdir)
    else:
        _print_single(summary, workdir)
    return EXIT_OK


def _print_single(summary: dict, workdir: Path) -> None:
    monitor = summary.get("monitor", "accuracy")
    split = "test" if summary.get("test_split", "test") == "test" else "test (= validation split)"
    print()
    print(f"{'dataset':<22}{summary['dataset']}  ({summary['data_source']})")
    print(f"{'model':<22}{summary['model']}  ({summary['n_params']:,} parameters)")
    print(f"{'epochs run':<22}{summary['epochs_run']}  (best epoch {summary['best_epoch']})")
    best = summary.get(f"best_val_{monitor}")
    print(f"{'best val ' + monitor:<22}{'-' if best is None else f'{best:.4f}'}")
    for name in summary.get("metrics", ["accuracy"]):
        print(f"{split + ' ' + name:<22}{summary[f'test_{name}']:.4f}")
    print(f"{split + ' loss':<22}{summary['test_loss']:.4f}")
    print(f"{'compile time':<22}{summary['compile_time_s']:.2f} s")
    if summary["epoch_time_s_median"] is not None:
        print(f"{'epoch time (median)':<22}{summary['epoch_time_s_median']:.2f} s")
    print(f"{'params sha256':<22}{summary['params_sha256'][:16]}…")
    print(f"{'outputs':<22}{workdir}")


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
    """Run ``main`` (this module's :func:`main`, or a preset's) and exit with its code. A failing run
    exits at once (``os._exit`` after flushing): a failed Orbax write can leave non-daemon threads
    that would otherwise block the interpreter's shutdown forever; everything the run keeps is
    already on disk by then."""
    code = main(argv)
    if "mlwork.train.peers" in sys.modules:
        from mlwork.train.peers import release_peers

        release_peers(code)  # the other processes of a job learn how this one ended
    if code != EXIT_OK:
        sys.stdout.flush()
        sys.stderr.flush()
        if code in (EXIT_PREEMPTED, EXIT_INTERRUPTED) and "jax" in sys.modules:  # every process of a job stops
            from mlwork.train.parallel import leave_distributed

            leave_distributed()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    run_main()
