"""The process shell of a training command, in one place: every experiment is a thin module.

A training command does the same things around :func:`~mlwork.train.train_and_evaluate`
whatever its data: parse the flags into a :class:`~mlwork.train.TrainConfig` (a ``--resume``
takes the run's own flags from its ``config.json``), join a multi-process job and watch its
peers, refuse what needs no data before loading any, load the data, train, map every
documented failure to its one-line message and exit code (:mod:`mlwork.train.errors`), and exit
so that a failed run stops at once and the other processes of a job learn how it ended. This
module holds those steps; a command supplies its name, its data and how it prints the summary::

    from mlwork.train import cli

    def main(argv=None):
        args, config = cli.parse_args(argv, prog="python -m my_experiment")
        code, summary, workdir = cli.run(args, config, load_data=my_data)
        if code == 0 and summary is not None:
            print(summary["test_accuracy"])
        return code

    if __name__ == "__main__":
        cli.exit_with(main())

``experiments.train`` (any ``.npz`` file) and ``experiments.mnist`` (its preset for the
MNIST family) are such commands. Parsing imports no JAX, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of one invocation (not recorded in the run's config): ``--workdir``,
    ``--resume [auto]``, ``--no-compile-cache`` and a multi-process job's coordinator, process
    count, process id and heartbeat timeout."""
    run = parser.add_argument_group("this invocation")
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


def parse_args(argv: list[str] | None, *, prog: str, description: str | None = None
               ) -> tuple[argparse.Namespace, TrainConfig]:
    """Flags -> ``(invocation flags, TrainConfig)``; exits 2 with one line on a bad flag. Imports no JAX.

    A ``--resume`` of a run (``auto`` too, when ``--workdir`` holds one) takes the flags not given
    from the run's ``config.json``. ``--data`` is recorded as an absolute path.

    Args:
      argv: the arguments (``None``: ``sys.argv[1:]``).
      prog: the command's name in usage lines and errors.
      description: the first line of ``--help``.

    Returns:
      The parsed invocation flags (:func:`add_job_arguments`) and the run's validated config.

    Raises:
      SystemExit: code 2 after one line on standard error (argparse's own, or the config's
        :class:`~mlwork.train.RunError`).

    Example:
      >>> from mlwork.train import cli
      >>> args, config = cli.parse_args(["--epochs", "3", "--workdir", "runs/a"], prog="demo")
      >>> args.workdir, args.resume, config.epochs, config.model
      ('runs/a', False, 3, 'mlp')
    """
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=exit_codes_epilog(),
                                formatter_class=_HelpFormatter)
    add_config_arguments(p)
    add_job_arguments(p)
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


def default_workdir(config: TrainConfig) -> Path:
    """``runs/<data>-<model>-<time>``: the folder of a run started without ``--workdir``."""
    name = Path(config.data).stem if config.data else config.dataset
    return Path(f"runs/{name}-{config.model.rpartition(':')[2]}-{time.strftime('%Y%m%d-%H%M%S')}")


def run(args: argparse.Namespace, config: TrainConfig, load_data: Callable[[TrainConfig], Any]
        ) -> tuple[int, dict[str, Any] | None, Path]:
    """Run one training command's job in this process: the shell around :func:`train_and_evaluate`.

    In order: join the multi-process job the flags or ``JAX_*`` variables describe (and watch its
    peers: a process that dies or fails stops the others, exit 69); refuse what needs no data
    (the workdir, ``--resume``, the devices); switch the persistent compilation cache on (unless
    ``--no-compile-cache``); load the data (``load_data(config)``); train. Every documented
    failure becomes one line on standard error and its exit code; any other exception propagates.

    Args:
      args: the invocation flags from :func:`parse_args`.
      config: the run's config from :func:`parse_args`.
      load_data: ``config -> data`` (an :class:`~mlwork.data.ArrayDataset`, a MNIST-family
        ``Dataset`` or anything :func:`~mlwork.data.as_arrays` takes); called after the refusals.

    Returns:
      ``(exit code, summary, workdir)``: the summary of :func:`train_and_evaluate` on the primary
      process of a run that ended with 0, else ``None``.
    """
    workdir = Path(args.workdir) if args.workdir else default_workdir(config)
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
        banner = [f"{prefix}data: {arrays.source} — {len(arrays.y_train)} train, {n_test}; workdir: {workdir}"]

        def log(message: str) -> None:  # the banner waits for the run's first line: a refusal stays one line
            if banner:
                print(banner.pop(), flush=True)
            print(message, flush=True)

        summary = train_and_evaluate(config, workdir, dataset, resume=args.resume, stop_after=args.stop_after,
                                     log=log)
        if banner:  # a run that logged nothing (another process of a job, without progress lines)
            print(banner.pop(), flush=True)
    except KeyboardInterrupt:  # SIGINT before training started (the run's guard answers it after)
        print("interrupted (SIGINT) before training started; nothing was saved", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED, None, workdir
    except Exception as e:  # every documented failure: one line, its exit code
        try:
            code = exit_code(e)
        except TypeError:
            raise e from None
        print(prefix + ("" if code in (75, 130) else "error: ") + str(e).splitlines()[0], file=sys.stderr, flush=True)
        return code, None, workdir
    if prefix:
        print(f"{prefix}done (the primary process reports the run)", flush=True)
        return EXIT_OK, None, workdir
    return EXIT_OK, summary, workdir


def exit_with(code: int) -> None:
    """End the process with ``code``, as a training command must.

    The other processes of a multi-process job learn how this one ended. A failing run exits at
    once (``os._exit`` after flushing): a failed Orbax write can leave non-daemon threads that
    would otherwise block the interpreter's shutdown forever; everything the run keeps is
    already on disk by then. A preempted or interrupted process leaves the job's coordination
    service first, so every process stops.

    Raises:
      SystemExit: ``code`` (0): the interpreter shuts down normally.
    """
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
