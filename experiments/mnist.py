"""Train on MNIST or Fashion-MNIST: the deck's full pipeline (sections 20-21), compiled.

    python -m experiments.mnist                       # MLP on the best available MNIST source
    python -m experiments.mnist --model cnn --augment
    python -m experiments.mnist --dataset fashion_mnist --data-dir /usr/share/datasets/fashion-mnist
    python -m experiments.mnist --workdir runs/a --epochs 4 --resume
    python -m experiments.mnist --workdir runs/a --resume           # the run's own flags, from its config.json
    python -m experiments.mnist --workdir runs/a --model cnn --resume auto   # resume if runs/a holds a run, else start
    python -m experiments.mnist --population 8                      # 8 seeds in one vmapped program
    python -m experiments.mnist --sweep lr=1e-4,3e-4,1e-3,3e-3      # a learning-rate sweep, likewise
    python -m experiments.mnist --devices 4                         # data parallel over 4 devices
    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0 python -m experiments.mnist ...
                                        # one of 2 cooperating processes (the same command on each host)

Writes to ``--workdir`` (default ``runs/<dataset>-<model>-<time>``): ``config.json``,
``metrics.jsonl`` (one line per epoch), ``summary.json``, ``checkpoints/`` (Orbax: latest N and
best) and ``plots/``.

Exit codes (one table for every experiment, :mod:`mlwork.train.errors`): 0 success; 2 bad input
(flags, data files, a workdir holding another run or in use by one, a ``--resume`` that does not
match the run or has nothing to resume; nothing written); 3 non-finite loss (nothing saved for
that epoch); 4 a checkpoint could not be written (earlier checkpoints intact); 75 preempted by
SIGTERM or SIGUSR1 (SLURM's warning before its time limit) after saving a checkpoint, 130 interrupted
by SIGINT after saving (rerun with ``--resume``, or the same command with ``--resume auto``).
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


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, TrainConfig]:
    """Flags -> ``(invocation flags, TrainConfig)``; exits 2 with one line on a bad flag. Imports no JAX.

    A ``--resume`` of a run (``auto`` too, when ``--workdir`` holds one) takes the flags not given
    from the run's ``config.json``."""
    p = argparse.ArgumentParser(prog="python -m experiments.mnist", description=__doc__.split("\n")[0],
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
    try:
        config = config_from_args(args)
        recorded = Path(args.workdir) / "config.json" if args.workdir else None
        if args.resume and recorded is not None and recorded.exists():  # the run's flags, the given ones on top
            config = resume_config(recorded, {name: getattr(args, name) for name in given_config_flags(p, argv)})
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None
    return args, config


def main(argv: list[str] | None = None) -> int:
    args, config = parse_args(argv)
    workdir = Path(args.workdir or f"runs/{config.dataset}-{config.model}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from mlwork.data import load_dataset
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
        dataset = load_dataset(config.dataset, config.data_dir, test_dir=config.test_dir, source=config.source)
        print(f"{prefix}data: {dataset.source} — {len(dataset.train_labels)} train, {len(dataset.test_labels)} test; "
              f"workdir: {workdir}", flush=True)
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


def run_main(argv: list[str] | None = None) -> None:
    """Run :func:`main` and exit with its code. A failing run exits at once (``os._exit`` after
    flushing): a failed Orbax write can leave non-daemon threads that would otherwise block the
    interpreter's shutdown forever; everything the run keeps is already on disk by then."""
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
