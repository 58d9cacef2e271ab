"""The ways a run ends other than success, and the one table of exit codes every experiment uses.

Each exception carries a one-line message that names what went wrong and what to do; the
experiments print ``error: <message>`` and exit with :func:`exit_code` of it. This module
imports nothing heavy, so a command line can map errors before JAX loads.

======  ===========================================================================================
code    meaning
======  ===========================================================================================
0       success
2       bad input: flags, data files, a workdir that holds another run or is in use, a ``--resume``
        that does not match the run in the workdir or has nothing to resume (nothing was written)
3       the training loss became NaN or infinite (nothing saved for that epoch)
4       a checkpoint or another output could not be written or read (disk full, read-only, or
        the workdir gone); earlier checkpoints intact
69      a multi-process job lost a process (it died or exited with an error): rerun every process
        with ``--resume`` (EX_UNAVAILABLE); earlier checkpoints intact
75      preempted (SIGTERM, or SIGUSR1: SLURM's warning before its time limit) after saving a
        checkpoint: rerun with ``--resume`` (EX_TEMPFAIL)
130     interrupted (SIGINT, Ctrl-C) after saving a checkpoint: rerun with ``--resume``
======  ===========================================================================================
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_NONFINITE = 3
EXIT_CHECKPOINT = 4
EXIT_PEER_LOST = 69
EXIT_PREEMPTED = 75
EXIT_INTERRUPTED = 130

#: code -> meaning, for ``--help`` epilogs and the README.
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_BAD_INPUT: "bad input (flags, data, a workdir holding another run or in use, a mismatched --resume); "
                    "nothing written",
    EXIT_NONFINITE: "non-finite training loss (nothing saved for that epoch)",
    EXIT_CHECKPOINT: "a checkpoint or output could not be written or read (earlier checkpoints intact)",
    EXIT_PEER_LOST: "a multi-process job lost a process (it died or exited with an error): rerun every process "
                    "with --resume (earlier checkpoints intact)",
    EXIT_PREEMPTED: "preempted by SIGTERM or SIGUSR1 (a scheduler's warning) after saving a checkpoint: rerun "
                    "with --resume",
    EXIT_INTERRUPTED: "interrupted by SIGINT (Ctrl-C) after saving a checkpoint: rerun with --resume",
}


class RunError(ValueError):
    """A problem with the run's inputs (config, workdir, ``--resume``); one line, nothing was written.

    A subclass of :class:`ValueError`; :func:`exit_code` maps it to :data:`EXIT_BAD_INPUT` (2).

    Example:
      >>> from mlwork.train import RunError, exit_code
      >>> exit_code(RunError("workdir /tmp/run holds another run; pick another --workdir"))
      2
    """


class WorkdirInUse(RuntimeError):
    """Another live process holds the workdir's lock (:class:`~mlwork.train.WorkdirLock`).

    :func:`exit_code` maps it to :data:`EXIT_BAD_INPUT` (2): nothing was written.

    Example:
      >>> from mlwork.train import WorkdirInUse, exit_code
      >>> exit_code(WorkdirInUse("/tmp/run is in use by process 1234"))
      2
    """


class CheckpointError(RuntimeError):
    """A checkpoint (or another output) could not be written, or no intact checkpoint could be read.

    Earlier checkpoints are left intact; :func:`exit_code` maps it to :data:`EXIT_CHECKPOINT` (4).

    Example:
      >>> from mlwork.train import CheckpointError, exit_code
      >>> exit_code(CheckpointError("cannot write /tmp/run/checkpoints: disk full"))
      4
    """


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; nothing was saved for that epoch.

    :func:`exit_code` maps it to :data:`EXIT_NONFINITE` (3). The message says whether a good
    checkpoint is left to resume from.

    Args:
      epoch: the epoch (1-based) the loss broke in.
      step: the global optimizer step of the first non-finite loss; at step 0 no update has
        happened, and the message says the model or the data are the cause, not the learning rate.
      member: the population member it happened to (``None`` for a single model).
      detail: a few words on the member (e.g. its hyperparameters), shown after its index.
      checkpoint_dir: the run's checkpoint folder, or ``None`` when the run writes none.
      has_checkpoint: whether a checkpoint had been written before the loss broke.

    Attributes:
      epoch: the epoch (1-based) the loss broke in.
      step: the global optimizer step of the first non-finite loss.
      member: the population member it happened to (``None`` for a single model).

    Example:
      >>> from mlwork.train import NonFiniteLossError, exit_code
      >>> e = NonFiniteLossError(epoch=2, step=117)
      >>> print(e)
      non-finite training loss at epoch 2, step 117; lower the learning rate
      >>> exit_code(e)
      3
    """

    def __init__(self, epoch: int, step: int, *, member: int | None = None, detail: str = "",
                 checkpoint_dir: Path | None = None, has_checkpoint: bool = False):
        self.epoch, self.step, self.member = epoch, step, member
        who = "" if member is None else f" of member {member}{f' ({detail})' if detail else ''}"
        fix = "lower the learning rate" if step > 0 else (
            "at the first step, before any update: the model or the data give it, not the learning rate (e.g. "
            "token ids beyond an embedding's vocabulary)")
        if checkpoint_dir is None:
            where = fix
        elif has_checkpoint:
            where = (f"nothing was saved for it; the last good checkpoint in {checkpoint_dir} is intact ({fix}, "
                     "or --resume to continue from it)")
        else:
            where = f"no checkpoint had been written yet ({fix}; --resume in this workdir starts over with any config)"
        super().__init__(f"non-finite training loss{who} at epoch {epoch}, step {step}; {where}")


class Preempted(Exception):
    """Raised after a checkpoint was saved in answer to SIGTERM or SIGUSR1 (or SIGINT): rerun with
    ``--resume``.

    :func:`exit_code` maps it to :data:`EXIT_PREEMPTED` (75) for SIGTERM and SIGUSR1 and
    :data:`EXIT_INTERRUPTED` (130) for SIGINT.

    Args:
      step: the optimizer step the checkpoint was saved at.
      epoch: the epochs completed at that step.
      workdir: the run's workdir, named in the message.
      signal_name: ``"SIGTERM"`` or ``"SIGUSR1"`` (preempted) or ``"SIGINT"`` (interrupted).

    Example:
      >>> from mlwork.train import Preempted, exit_code
      >>> e = Preempted(step=500, epoch=1, workdir="/tmp/run", signal_name="SIGINT")
      >>> print(e)
      interrupted (SIGINT): checkpoint saved at step 500 (epoch 1) in /tmp/run; continue with --resume
      >>> exit_code(e)
      130
    """

    def __init__(self, step: int, epoch: int, workdir: Path | None, signal_name: str = "SIGTERM"):
        self.step, self.epoch, self.signal_name = step, epoch, signal_name
        verb = "interrupted" if signal_name == "SIGINT" else "preempted"
        super().__init__(f"{verb} ({signal_name}): checkpoint saved at step {step} (epoch {epoch}) in "
                         f"{workdir}; continue with --resume")


def exit_code(error: BaseException) -> int:
    """The documented exit status for an exception a run raised (the module's table).

    Args:
      error: the exception.

    Returns:
      :data:`EXIT_INTERRUPTED` (130) or :data:`EXIT_PREEMPTED` (75) for :class:`Preempted` (by its
      signal), :data:`EXIT_NONFINITE` (3) for :class:`NonFiniteLossError`,
      :data:`EXIT_CHECKPOINT` (4) for :class:`CheckpointError`, :data:`EXIT_BAD_INPUT` (2) for any
      :class:`ValueError` (:class:`RunError`, :class:`~mlwork.data.DataError`, argument checks) or
      :class:`WorkdirInUse`.

    Raises:
      TypeError: no exit code is documented for the exception's type (chained to it).

    Example:
      >>> from mlwork.train import exit_code
      >>> exit_code(ValueError("--epochs must be a positive integer; got 0"))
      2
      >>> try:
      ...     exit_code(KeyError("x"))
      ... except TypeError as e:
      ...     print(e)
      no exit code is documented for KeyError
    """
    if isinstance(error, Preempted):
        return EXIT_INTERRUPTED if error.signal_name == "SIGINT" else EXIT_PREEMPTED
    if isinstance(error, NonFiniteLossError):
        return EXIT_NONFINITE
    if isinstance(error, CheckpointError):
        return EXIT_CHECKPOINT
    if isinstance(error, (ValueError, WorkdirInUse)):  # RunError, DataError, argument checks
        return EXIT_BAD_INPUT
    raise TypeError(f"no exit code is documented for {type(error).__name__}") from error


def exit_codes_epilog() -> str:
    """The exit-code table as ``--help`` text."""
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
