"""WorkdirLock: one holder per workdir, no lock file left by a run that ends, and a stale file
(left by a SIGKILLed holder) taken over with its pid named."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlwork.train import WorkdirInUse, WorkdirLock

ROOT = Path(__file__).resolve().parents[2]
_HOLD = ("import sys, time; from mlwork.train.guard import WorkdirLock\n"
         "with WorkdirLock(sys.argv[1]):\n"
         "    print('locked', flush=True); sys.stdin.readline()\n")


def _holder(workdir):
    """A process that holds ``workdir``'s lock until a line arrives on its stdin."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(workdir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_clean_exit_removes_the_lock_file_and_keeps_an_existing_workdir(tmp_path):
    with WorkdirLock(tmp_path) as lock:
        assert lock.path.read_text() == str(os.getpid()) and lock.held() and lock.stale_pid is None
    assert not lock.path.exists() and tmp_path.is_dir() and not lock.held()


def test_an_exit_by_exception_removes_the_lock_file(tmp_path):
    with pytest.raises(KeyError), WorkdirLock(tmp_path) as lock:
        raise KeyError("a run that fails")
    assert list(tmp_path.iterdir()) == [] and not lock.held()


def test_a_workdir_the_lock_created_is_removed_when_empty_and_kept_when_written(tmp_path):
    with WorkdirLock(tmp_path / "a"):
        pass
    assert not (tmp_path / "a").exists()
    with WorkdirLock(tmp_path / "b"):
        (tmp_path / "b" / "config.json").write_text("{}")
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["config.json"]


def test_a_replaced_lock_file_is_not_removed(tmp_path):
    with WorkdirLock(tmp_path) as lock:
        lock.path.unlink()
        lock.path.write_text("another")
        assert not lock.held()
    assert lock.path.read_text() == "another"


def test_a_live_holder_refuses_others_and_its_clean_exit_frees_the_workdir(tmp_path):
    holder = _holder(tmp_path)
    try:
        with pytest.raises(WorkdirInUse, match=f"is in use by another run \\(pid {holder.pid}\\)"):
            WorkdirLock(tmp_path).__enter__()
        assert (tmp_path / ".lock").read_text() == str(holder.pid)  # the refusal changed nothing
    finally:
        holder.communicate("go\n", timeout=60)
    assert holder.returncode == 0 and not (tmp_path / ".lock").exists()
    with WorkdirLock(tmp_path) as lock:
        assert lock.stale_pid is None  # a holder that ended cleanly leaves nothing to take over


def test_a_sigkilled_holder_leaves_a_stale_file_that_the_next_holder_takes_over(tmp_path):
    holder = _holder(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    assert (tmp_path / ".lock").read_text() == str(holder.pid)  # left behind, but the kernel released the lock
    with WorkdirLock(tmp_path) as lock:
        assert lock.stale_pid == holder.pid and lock.path.read_text() == str(os.getpid())
        with pytest.raises(WorkdirInUse):
            WorkdirLock(tmp_path).__enter__()
    assert not (tmp_path / ".lock").exists()


_CONTEND = """
import os, sys
from mlwork.train.guard import WorkdirLock, WorkdirInUse
workdir, n, held = sys.argv[1], int(sys.argv[2]), 0
for _ in range(n):
    try:
        with WorkdirLock(workdir):
            fd = os.open(os.path.join(workdir, "owner"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # two holders: fails
            os.close(fd)
            os.unlink(os.path.join(workdir, "owner"))
            held += 1
    except WorkdirInUse:
        pass
print(held)
"""


@pytest.mark.parametrize("existing", [True, False], ids=["existing-workdir", "created-and-removed-workdir"])
def test_holders_that_remove_the_file_on_leaving_never_hold_it_together(tmp_path, existing):
    """Removing the file (and a workdir the lock created) on exit must not let a process that
    opened the old file before the removal lock it while another locks the new one: at most one
    holder at any moment (the ``owner`` file would exist twice)."""
    workdir = tmp_path / "w"
    if existing:
        workdir.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", _CONTEND, str(workdir), "2000"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-1000:] for _, err in outs]
    assert sum(int(out) for out, _ in outs) > 0
    assert not workdir.exists() or sorted(p.name for p in workdir.iterdir()) == []  # no lock file left
