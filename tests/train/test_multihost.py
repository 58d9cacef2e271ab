"""A real multi-process job: two ``experiments.mnist`` processes on 127.0.0.1 form one JAX job
(``jax.distributed`` over a free port, gloo CPU collectives, two CPU devices each), checked
against one process with the same four devices.

What is checked: both processes exit 0 and write one set of outputs; the final parameters equal
one process's to float32 reduction tolerance (the cross-process gradient all-reduce may sum in
another order: ``rtol=1e-4, atol=1e-5``); ``kill -9`` of one process makes the other print one
line and exit 69, and ``--resume`` of the two-process run then ends bit for bit where
the uninterrupted one did; SIGTERM to one process saves once and stops both with 75; a checkpoint
written by two processes resumes on one, and one written by one resumes on two.

Each launch compiles from scratch (several seconds on a quiet machine), hence ``slow``.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from mlwork.data import load_dataset
from mlwork.train import checkpoint, errors, lifecycle, parallel
from mlwork.train.config import TrainConfig
from mlwork.train.guard import WorkdirLock
from mlwork.train.programs import init_state, prepare
from tests.train import test_run_paths

#: Gloo's connection messages (its C++ writes to the same stream as the process, and two of them
#: can interleave anywhere: "[Gloo] Rank [Gloo] Rank 3 is connected ... : 3" then "2 is connected ...", or
#: "Rank 2 is connected to 3 peer ranks. [Gloo] Rank 3 ... : 3" then "Expected number ... : 3"), so each of
#: its three fragments is removed wherever it falls.
_GLOO = re.compile(r"\[Gloo\] Rank |\d+ is connected to \d+ peer ranks\. ?|Expected number of connected peer "
                   r"ranks is : \d+")


def our_lines(text: str) -> list[str]:
    """The non-empty lines a process printed, Gloo's messages (whole or interleaved) removed."""
    return [line for line in _GLOO.sub("", text).splitlines() if line.strip()]



def test_our_lines_removes_gloo_messages_however_they_interleave():
    # the three interleavings CI has printed, between two lines of the process's own
    text = ("[process 1/2] data: 700 train\n"
            "[Gloo] Rank 1 is connected to 1 peer ranks. Expected number of connected peer ranks is : 1\n"
            "[Gloo] Rank [Gloo] Rank 3 is connected to 3 peer ranks. Expected number of connected peer ranks is : 3\n"
            "2 is connected to 3 peer ranks. Expected number of connected peer ranks is : 3\n"
            "[Gloo] Rank 2 is connected to 3 peer ranks. [Gloo] Rank 3 is connected to 3 peer ranks. "
            "Expected number of connected peer ranks is : 3\n"
            "Expected number of connected peer ranks is : 3\n"
            "[process 1/2] done (the primary process reports the run)\n")
    assert our_lines(text) == ["[process 1/2] data: 700 train",
                               "[process 1/2] done (the primary process reports the run)"]
    assert our_lines("a line of ours\n") == ["a line of ours"]

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 10  # --heartbeat-timeout of the launches
EXIT_BOUND_S = HEARTBEAT_S + 50  # the survivor must be gone by then (a loaded CI machine is slow)
RTOL, ATOL = 1e-4, 1e-5  # float32 after 27 Adam steps whose gradient sums are ordered differently (seen: 1.3e-6)
EPOCHS = 3


data_dir = test_run_paths.data_dir  # 700 training and 200 test images as IDX files


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int, **extra: str) -> dict:
    env = {**os.environ, "MLWORK_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", **extra}
    for key in ("MLWORK_DATA_DIR", "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        env.pop(key, None)
    env.update(extra)
    return env


def _cmd(data_dir, workdir, *extra):
    return [sys.executable, "-m", "experiments.mnist", "--data-dir", str(data_dir), "--epochs", str(EPOCHS),
            "--steps-per-call", "2", "--no-compile-cache", "--workdir", str(workdir),
            "--heartbeat-timeout", str(HEARTBEAT_S), *extra]


def _start_two(data_dir, workdir, *extra):
    """Two cooperating processes (2 CPU devices each), configured through JAX's variables."""
    port = _free_port()
    return [subprocess.Popen(_cmd(data_dir, workdir, *extra), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env=_env(2, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                                      JAX_PROCESS_ID=str(i)))
            for i in range(2)]


def _finish(procs, timeout=600):
    outs = [p.communicate(timeout=timeout) for p in procs]
    return [p.returncode for p in procs], outs


def _run_one(data_dir, workdir, *extra):
    return subprocess.run(_cmd(data_dir, workdir, *extra), cwd=ROOT, env=_env(4), capture_output=True, text=True,
                          timeout=600)


def _wait_for_rows(workdir: Path, rows: int, procs, seconds=400):
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + seconds
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= rows:
            return
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.05)
    raise AssertionError(f"no epoch {rows} within {seconds} s")


def _tail(err: str) -> str:
    """What a failed process said, without C++ stack frames."""
    return "\n".join(line for line in err.splitlines() if not line.lstrip().startswith("@"))[-3000:]


def _summary(workdir: Path) -> dict:
    return json.loads((workdir / "summary.json").read_text())


def _final_params(workdir: Path, data_dir) -> list[np.ndarray]:
    """The latest checkpoint's parameters, restored in this (one-device) process."""
    config = TrainConfig.from_json(workdir / "config.json").replace(devices=1)
    run = prepare(config, load_dataset("mnist", str(data_dir)))
    manager = checkpoint.checkpoint_manager(workdir, read_only=True)
    try:
        state, _ = checkpoint.restore(manager, init_state(run))
    finally:
        manager.close()
    assert int(state.epoch) == EPOCHS
    return [np.asarray(x) for x in jax.tree.leaves(state.params)]


def _assert_close(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def two(data_dir, tmp_path_factory):
    """The uninterrupted two-process run."""
    workdir = tmp_path_factory.mktemp("two") / "run"
    codes, outs = _finish(_start_two(data_dir, workdir))
    assert codes == [0, 0], [_tail(err) for _, err in outs]
    return workdir, outs


@pytest.fixture(scope="module")
def one(data_dir, tmp_path_factory):
    """The same run in one process with the same four devices."""
    workdir = tmp_path_factory.mktemp("one") / "run"
    done = _run_one(data_dir, workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


@pytest.mark.slow
def test_two_processes_train_like_one(two, one, data_dir):
    workdir, outs = two
    # one set of outputs, written by the primary
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    assert (workdir / "config.json").is_file() and (workdir / "summary.json").is_file()
    assert sorted(p.name for p in (workdir / "plots").iterdir()) == sorted(p.name for p in (one / "plots").iterdir())
    primary_out, other_out = outs[0][0], outs[1][0]
    assert "test accuracy" in primary_out and "test accuracy" not in other_out
    ours = our_lines(other_out)
    assert ours and all(line.startswith("[process 1/2] ") for line in ours), other_out
    # the same training as one process with the same total device count
    _assert_close(_final_params(workdir, data_dir), _final_params(one, data_dir))
    ours, theirs = _summary(workdir), _summary(one)
    assert ours["epochs_run"] == theirs["epochs_run"] == EPOCHS
    assert ours["test_accuracy"] == pytest.approx(theirs["test_accuracy"], abs=0.011)  # 200 test images


@pytest.mark.slow
def test_kill_one_process_then_resume(two, data_dir, tmp_path):
    workdir = tmp_path / "run"
    procs = _start_two(data_dir, workdir)
    _wait_for_rows(workdir, 1, procs)
    procs[1].kill()
    killed_at = time.time()
    try:
        procs[0].wait(timeout=EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        procs[0].kill()
        raise AssertionError(f"the surviving process still ran {EXIT_BOUND_S} s after its peer was killed") from None
    waited = time.time() - killed_at
    _, err = procs[0].communicate()
    procs[1].communicate()
    # one line and exit 69 at once (PeerWatch), not JAX's fatal log, C++ stack trace and 134
    assert procs[0].returncode == errors.EXIT_PEER_LOST, err[-2000:]
    assert waited < EXIT_BOUND_S
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("error: lost the multi-process job: process 1 ended without finishing"), err[-2000:]
    assert "--resume" in lines[-1] and "Stack trace" not in err and "Check failure" not in err, err[-2000:]
    resumed = _finish(_start_two(data_dir, workdir, "--resume"))
    assert resumed[0] == [0, 0], [_tail(e) for _, e in resumed[1]]
    assert _summary(workdir)["params_sha256"] == _summary(two[0])["params_sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGUSR1"])  # SIGUSR1: SLURM's warning before its time limit
def test_sigterm_to_one_process_stops_both_and_resumes_on_one(signame, two, data_dir, tmp_path):
    workdir = tmp_path / "run"
    procs = _start_two(data_dir, workdir)
    _wait_for_rows(workdir, 1, procs)
    procs[1].send_signal(getattr(signal, signame))
    codes, outs = _finish(procs, timeout=EXIT_BOUND_S)
    assert codes == [75, 75], [_tail(e) for _, e in outs]
    manager = checkpoint.checkpoint_manager(workdir, read_only=True)
    steps = manager.all_steps()
    manager.close()
    spe = 630 // 64
    mid_epoch = [s for s in steps if s % spe]
    assert len(mid_epoch) <= 1 and max(steps) < EPOCHS * spe, steps  # saved once, before the end
    # a checkpoint written by two processes continues on one
    done = _run_one(data_dir, workdir, "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_close(_final_params(workdir, data_dir), _final_params(two[0], data_dir))


@pytest.mark.slow
def test_checkpoint_of_one_process_resumes_on_two(one, two, data_dir, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(one, workdir)
    first = min(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    for p in (workdir / "checkpoints").iterdir():  # keep only the end of epoch 1 (written by one process)
        if p.name.isdigit() and int(p.name) != first:
            shutil.rmtree(p)
    (workdir / "summary.json").unlink()
    codes, outs = _finish(_start_two(data_dir, workdir, "--resume"))
    assert codes == [0, 0], [_tail(e) for _, e in outs]
    assert "resumed from step 9" in outs[0][0] + outs[0][1]
    _assert_close(_final_params(workdir, data_dir), _final_params(two[0], data_dir))


@pytest.mark.parametrize(("kwargs", "env", "match"), [
    ({"num_processes": 2, "process_id": 2}, {}, "process_id must be in"),
    ({"num_processes": 0, "process_id": 0}, {}, "num_processes must be >= 1"),
    ({}, {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"},
     "num_processes must be an integer"),
])
def test_bad_job_description_is_refused_before_connecting(kwargs, env, match, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=match):
        parallel.maybe_initialize_distributed(**kwargs)


def test_only_the_primary_writes_outputs(small_mnist, tmp_path, monkeypatch):
    """A non-primary process of a job writes its share of the checkpoints (Orbax decides which
    bytes) and nothing else, and its log lines name it."""
    monkeypatch.setattr(parallel, "is_primary", lambda: False)
    monkeypatch.setattr(parallel, "process_prefix", lambda: "[process 1/2] ")
    workdir = tmp_path / "run"
    config, lines = TrainConfig(epochs=1, batch_size=70), []
    lifecycle.train_and_evaluate(config, workdir, small_mnist, progress=False, log=lines.append)
    assert sorted(p.name for p in workdir.iterdir() if not p.name.startswith(".")) == ["checkpoints"]
    lifecycle.train_and_evaluate(config, workdir, small_mnist, progress=False, log=lines.append, resume=True)
    assert sorted(p.name for p in workdir.iterdir() if not p.name.startswith(".")) == ["checkpoints"]
    assert lines and all(line.startswith("[process 1/2] ") for line in lines), lines


@pytest.mark.slow
def test_a_workdir_in_use_refuses_every_process(data_dir, tmp_path):
    """The primary holds the workdir lock for the job; when it cannot, every process refuses."""
    workdir = tmp_path / "run"
    with WorkdirLock(workdir):
        codes, outs = _finish(_start_two(data_dir, workdir), timeout=300)
    assert codes == [2, 2], [_tail(e) for _, e in outs]
    assert "is in use by another run" in outs[0][1]
    assert "[process 1/2] error: workdir" in outs[1][1] and "in use" in outs[1][1]
    assert not (workdir / "config.json").exists()


_ENDS_WITH = """
import os, sys, time
index, port, code, after = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
import jax
jax.distributed.initialize(f"127.0.0.1:{port}", 2, index, heartbeat_timeout_seconds=30, initialization_timeout=60)
from mlwork.train import peers
peers.ERROR_GRACE_S = 2.0  # 10 s in a real job
peers.watch_peers()
time.sleep(after)  # busy (a collective, say) until it meets its error; run_main's end follows
peers.release_peers(code)
os._exit(code)
"""


@pytest.mark.parametrize(("after_1", "code_1", "expected_1"), [
    (0.5, errors.EXIT_NONFINITE, errors.EXIT_NONFINITE),  # both meet the error: each ends with its own code
    (60.0, None, errors.EXIT_PEER_LOST),  # only process 0 does: 1 stops after the grace, with one line
])
def test_process_0_failing_first_leaves_the_others_their_own_end(after_1, code_1, expected_1, tmp_path):
    """Process 0 holds JAX's coordination service; had it exited at once, JAX would abort the
    others (status 134, a fatal log and a C++ trace) before they could end on their own terms."""
    port = _free_port()
    runs = [(0, 4, 1.0), (1, code_1 or 0, after_1)]
    procs = [subprocess.Popen([sys.executable, "-c", _ENDS_WITH, str(i), str(port), str(code), str(after)],
                              cwd=ROOT, env=_env(1, JAX_PLATFORMS="cpu"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for i, code, after in runs]
    codes, outs = _finish(procs, timeout=120)
    assert codes == [4, expected_1], [_tail(e) for _, e in outs]
    if expected_1 == errors.EXIT_PEER_LOST:
        lines = our_lines(outs[1][1])
        assert lines[-1].startswith("error: [process 1/2] lost the multi-process job: process 0 stopped with exit 4"), \
            outs[1][1][-2000:]
        assert "Stack trace" not in outs[1][1] and "Check failure" not in outs[1][1]


@pytest.mark.slow
def test_two_processes_stream_only_their_share_and_train_like_one(one, data_dir, tmp_path, monkeypatch):
    """``--stream`` in a two-process job: each process reads the half of every global batch its two
    devices hold (it says which), and the run ends where one in-memory process with four devices does."""
    monkeypatch.setenv("MLWORK_CACHE_DIR", str(tmp_path / "cache"))
    workdir = tmp_path / "run"
    codes, outs = _finish(_start_two(data_dir, workdir, "--stream"))
    assert codes == [0, 0], [_tail(err) for _, err in outs]
    assert "this process reads examples 0:32 of every batch" in outs[0][0]
    assert "[process 1/2] streaming the training split from " in outs[1][0]
    assert "this process reads examples 32:64 of every batch" in outs[1][0]
    _assert_close(_final_params(workdir, data_dir), _final_params(one, data_dir))
