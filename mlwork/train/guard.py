"""Guards around a run: one writer per workdir, and a graceful answer to preemption.

* :class:`WorkdirLock` — an exclusive ``fcntl`` lock on ``<workdir>/.lock`` held for the whole
  run, so a second run on the same workdir refuses at once instead of both writing checkpoints.
  The kernel releases it when the process dies, even by SIGKILL: there is no stale lock to clean.
* :class:`PreemptionGuard` — turns SIGTERM (what preemptible VMs, Kubernetes and SLURM send before
  killing a job), SIGUSR1 (SLURM's warning before a time limit, ``--signal=USR1@120``) and SIGINT
  (Ctrl-C) into a flag the training loop checks between compiled calls:
  it finishes the call in flight, writes a checkpoint, waits for asynchronous saves, and exits
  with :data:`~mlwork.train.EXIT_PREEMPTED` (75, for SIGTERM and SIGUSR1 alike; 130 for SIGINT).
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import threading
from pathlib import Path

from mlwork.train.errors import WorkdirInUse


class WorkdirLock:
    """An exclusive lock on ``<workdir>/.lock``: ``with WorkdirLock(workdir): ...``, one run per workdir.

    The lock is an ``fcntl.flock`` on the file, across processes (and across open files in one
    process); the kernel releases it when the process ends, even by SIGKILL, so no stale lock is
    left. The holder's pid is written into the file, and named by the error of the next would-be
    holder. Entering creates ``workdir`` if needed.

    Args:
      workdir: the run's folder.

    Raises:
      WorkdirInUse: (on entering) another open lock holds the workdir.
      OSError: (on entering) the lock file cannot be created or locked for another reason.

    Example:
      >>> import tempfile
      >>> from mlwork.train import WorkdirInUse, WorkdirLock
      >>> tmp = tempfile.TemporaryDirectory()
      >>> with WorkdirLock(tmp.name) as lock:
      ...     try:
      ...         with WorkdirLock(tmp.name):
      ...             pass
      ...     except WorkdirInUse as e:
      ...         print("refused:", "is in use by another run" in str(e), lock.held())
      refused: True True
      >>> tmp.cleanup()
    """

    def __init__(self, workdir: str | Path):
        self.path = Path(workdir) / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> WorkdirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            owner = ""
            try:
                owner = os.pread(fd, 64, 0).decode().strip()
            except OSError:
                pass
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise WorkdirInUse(f"workdir {self.path.parent} is in use by another run"
                                   + (f" (pid {owner})" if owner else "") + "; wait for it or use another --workdir") \
                    from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def held(self) -> bool:
        """Whether the workdir still holds this lock's file.

        Returns:
          ``False`` before entering, after exiting, or once someone removed or replaced the workdir (or
          its ``.lock``) under the run; ``True`` otherwise.
        """
        if self._fd is None:
            return False
        try:
            return os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
        except OSError:
            return False

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class PreemptionGuard:
    """Turns SIGTERM, SIGUSR1 and SIGINT into a flag the training loop checks between compiled calls.

    Use: ``with PreemptionGuard() as guard: ... if guard.requested: save and stop``.
    Installs handlers for these signals that only record the request (nothing unsafe happens
    inside a handler); ``guard.signal_name`` says which arrived first. Restores the previous
    handlers on exit. Outside the main thread it does nothing.

    Args:
      signals: the signal numbers to catch.

    Attributes:
      requested: whether one of ``signals`` arrived while the guard was entered.
      signal_name: the name of the first that arrived (``"SIGTERM"``, ``"SIGINT"``), or ``None``.

    Example:
      >>> import os, signal
      >>> from mlwork.train import PreemptionGuard
      >>> with PreemptionGuard(signals=(signal.SIGUSR1,)) as guard:
      ...     os.kill(os.getpid(), signal.SIGUSR1)
      ...     print(guard.requested, guard.signal_name)
      True SIGUSR1
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)):
        self.signals = signals
        self.requested = False
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def _handler(self, signum, frame) -> None:  # noqa: ARG002
        if not self.requested:
            self.signal_name = signal.Signals(signum).name
        self.requested = True

    def __enter__(self) -> PreemptionGuard:
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()
