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
    python -m experiments.mnist --checkpoint-every-minutes 10       # also save mid-epoch every 10 minutes
    python -m experiments.mnist --stream                            # the training split streamed from disk (Grain)
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

from experiments import train as _train

#: What ``--help`` says first: this command is experiments.train with the MNIST family as its data.
DESCRIPTION = __doc__.split("\n")[0] + " (experiments.train's preset: --dataset, no --data)"


def parse_args(argv: list[str] | None):
    """Flags -> ``(invocation flags, TrainConfig)`` (see :func:`experiments.train.parse_args`)."""
    return _train.parse_args(argv, prog="python -m experiments.mnist", description=DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    """Run experiments.train under this command's name (see :func:`experiments.train.main`)."""
    return _train.main(argv, prog="python -m experiments.mnist", description=DESCRIPTION)


def run_main(argv: list[str] | None = None) -> None:
    """Run :func:`main` and exit with its code (see :func:`experiments.train.run_main`)."""
    _train.run_main(argv, main=main)


if __name__ == "__main__":
    run_main()
