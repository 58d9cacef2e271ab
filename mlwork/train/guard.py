"""Guards around a run: one writer per workdir, and a graceful answer to preemption.

* :class:`WorkdirLock` — an exclusive ``fcntl`` lock on ``<workdir>/.lock`` held for the whole
  run, so a second run on the same workdir refuses at once instead of both writing checkpoints.
  A run that ends (success, or any error it answers: exit 0, 1, 2, 3, 4, 75, 130) removes the
  file; the kernel releases the lock of a process that dies, even by SIGKILL, so the file it
  leaves (naming the dead pid) is stale and the next run takes it over, saying so.
* :class:`PreemptionGuard` — turns SIGTERM (what preemptible VMs, Kubernetes and SLURM send before
  killing a job), SIGUSR1 (SLURM's warning before a time limit, ``--signal=USR1@120``) and SIGINT
  (Ctrl-C) into a flag the training loop checks between compiled calls:
  it finishes the call in flight, writes a checkpoint, waits for asynchronous saves, and exits
  with :data:`~mlwork.train.EXIT_PREEMPTED` (75, for SIGTERM and SIGUSR1 alike; 130 for SIGINT).
"""

from __future__ import annotations

import contextlib
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
    process). The holder's pid is written into the file and named by the error of the next
    would-be holder. Leaving the ``with`` block, by any exception too, removes the file (while
    still holding the lock, so no other process can hold a lock on a removed file: a process that
    opened the old file before the removal sees that it is gone and locks the new one), and the
    workdir itself when entering created it and it is still empty.

    A process that dies without leaving (SIGKILL, ``os._exit``, a crash) leaves the file behind;
    the kernel releases its lock all the same, so the file is stale, not a lock: the next holder
    takes it over and records the dead holder's pid in ``stale_pid``.

    Args:
      workdir: the run's folder (created on entering, if needed).

    Attributes:
      path: ``<workdir>/.lock``.
      stale_pid: after entering, the pid a holder that never left wrote into the file (``None``
        when there was no such file, or it named no pid).

    Raises:
      WorkdirInUse: (on entering) another open lock holds the workdir.
      OSError: (on entering) the lock file cannot be created or locked for another reason.

    Example:
      >>> import os, tempfile
      >>> from mlwork.train import WorkdirInUse, WorkdirLock
      >>> tmp = tempfile.TemporaryDirectory()
      >>> with WorkdirLock(tmp.name) as lock:
      ...     try:
      ...         with WorkdirLock(tmp.name):
      ...             pass
      ...     except WorkdirInUse as e:
      ...         print("refused:", "is in use by another run" in str(e), lock.held())
      refused: True True
      >>> os.listdir(tmp.name)  # a run that ended leaves no lock file
      []
      >>> tmp.cleanup()
    """

    _ATTEMPTS = 100  # a holder removing the file between our open and our flock: open the new one

    def __init__(self, workdir: str | Path):
        self.path = Path(workdir) / ".lock"
        self.stale_pid: int | None = None
        self._fd: int | None = None
        self._created_workdir = False

    def __enter__(self) -> WorkdirLock:
        for _ in range(self._ATTEMPTS):
            fd = self._open()
            if fd is not None:
                break
        else:
            raise OSError(f"could not lock {self.path}: it was removed {self._ATTEMPTS} times while being locked")
        recorded = os.pread(fd, 64, 0).decode(errors="replace").strip()
        self.stale_pid = int(recorded) if recorded.isdigit() else None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def _open(self) -> int | None:
        """A locked descriptor of the file now at :attr:`path`, or ``None`` when the file was
        removed (by the holder leaving) between opening and locking it: try again."""
        workdir = self.path.parent
        if not workdir.is_dir():
            try:
                workdir.mkdir(parents=True)
            except FileExistsError:
                if workdir.exists() and not workdir.is_dir():
                    raise
                return None  # another run created it meanwhile, or removed it again: look again
            self._created_workdir = True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the workdir was removed by a holder leaving it empty
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            owner = ""
            try:
                owner = os.pread(fd, 64, 0).decode(errors="replace").strip()
            except OSError:
                pass
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise WorkdirInUse(f"workdir {workdir} is in use by another run"
                                   + (f" (pid {owner})" if owner else "") + "; wait for it or use another --workdir") \
                    from None
            raise
        if not self._is_current(fd):  # we locked a file its holder removed on leaving
            os.close(fd)
            return None
        return fd

    def _is_current(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except OSError:
            return False

    def held(self) -> bool:
        """Whether the workdir still holds this lock's file.

        Returns:
          ``False`` before entering, after exiting, or once someone removed or replaced the workdir (or
          its ``.lock``) under the run; ``True`` otherwise.
        """
        return self._fd is not None and self._is_current(self._fd)

    def __exit__(self, *exc) -> None:
        if self._fd is None:
            return
        try:
            if self._is_current(self._fd):  # never remove a file that is not ours (a replaced workdir)
                with contextlib.suppress(OSError):
                    self.path.unlink()
                if self._created_workdir:
                    with contextlib.suppress(OSError):  # not empty: the run wrote there
                        self.path.parent.rmdir()
        finally:
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
