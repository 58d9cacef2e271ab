"""``python -m experiments.train --data diabetes.npz`` as a two-process job on 127.0.0.1 (as in
tests/train/test_multihost.py: ``jax.distributed`` over a free port, two CPU devices each): it
trains like one process with the same four devices, writes one set of outputs, and a job with a
SIGKILLed process resumes bit for bit where the uninterrupted job ended. Slow (every launch
compiles)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.train.problems import diabetes, save_npz
from tests.train.test_multihost import (
    EXIT_BOUND_S,
    HEARTBEAT_S,
    _env,
    _finish,
    _free_port,
    _tail,
    _wait_for_rows,
    our_lines,
)

pytest.importorskip("sklearn")
ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 3


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("npz") / "diabetes.npz"
    save_npz(path, diabetes())
    return path


def _cmd(npz, workdir, *extra):
    return [sys.executable, "-m", "experiments.train", "--data", str(npz), "--epochs", str(EPOCHS), "--batch-size",
            "32", "--lr", "3e-3", "--optimizer", "adam", "--hidden", "32", "--steps-per-call", "2",
            "--no-compile-cache", "--workdir", str(workdir), "--heartbeat-timeout", str(HEARTBEAT_S), *extra]


def _start_two(npz, workdir, *extra):
    port = _free_port()
    return [subprocess.Popen(_cmd(npz, workdir, *extra), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=_env(2, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                                                 JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i)))
            for i in range(2)]


def _summary(workdir):
    return json.loads((Path(workdir) / "summary.json").read_text())


@pytest.fixture(scope="module")
def two(npz, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("two") / "run"
    codes, outs = _finish(_start_two(npz, workdir))
    assert codes == [0, 0], [_tail(err) for _, err in outs]
    return workdir, outs


@pytest.mark.slow
def test_a_regression_on_two_processes_trains_like_one_process(npz, two, tmp_path):
    workdir, outs = two
    one = subprocess.run(_cmd(npz, tmp_path / "one"), cwd=ROOT, env=_env(4), capture_output=True, text=True,
                         timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))  # one set of outputs, the primary's
    assert (workdir / "plots" / "predicted_vs_true.png").is_file() and not (workdir / ".lock").exists()
    assert "test r2" in outs[0][0] and "test r2" not in outs[1][0]
    ours = our_lines(outs[1][0])
    assert ours and all(line.startswith("[process 1/2] ") for line in ours), outs[1][0]
    mine, theirs = _summary(workdir), _summary(tmp_path / "one")
    assert mine["task"] == theirs["task"] == "values" and mine["epochs_run"] == theirs["epochs_run"] == EPOCHS
    # the same training up to the order of the cross-process gradient sum (float32)
    assert mine["test_mse"] == pytest.approx(theirs["test_mse"], rel=1e-3)
    assert mine["test_r2"] == pytest.approx(theirs["test_r2"], abs=1e-3)


@pytest.mark.slow
def test_a_regression_job_with_a_killed_process_resumes_bit_identical(npz, two, tmp_path):
    workdir = tmp_path / "run"
    procs = _start_two(npz, workdir)
    _wait_for_rows(workdir, 1, procs)
    procs[1].kill()
    try:
        procs[0].wait(timeout=EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        procs[0].kill()
        raise AssertionError(f"the surviving process still ran {EXIT_BOUND_S} s after its peer was killed") from None
    _, err = procs[0].communicate()
    procs[1].communicate()
    assert procs[0].returncode == 69, err[-2000:]
    time.sleep(0.5)
    codes, outs = _finish(_start_two(npz, workdir, "--resume"))
    assert codes == [0, 0], [_tail(e) for _, e in outs]
    assert _summary(workdir)["params_sha256"] == _summary(two[0])["params_sha256"]
