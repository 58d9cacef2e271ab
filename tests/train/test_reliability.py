"""Runs survive kills, preemption, damaged checkpoints, full disks and bad numbers (issue 9)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from experiments import mnist
from mlwork.data import load_dataset
from mlwork.train import (
    CheckpointError,
    Preempted,
    PreemptionGuard,
    TrainConfig,
    WorkdirInUse,
    WorkdirLock,
    checkpoint,
    init_state,
    lifecycle,
    prepare,
    train_and_evaluate,
)

ROOT = Path(__file__).resolve().parents[2]
QUIET = {"progress": False, "plots": False, "log": lambda m: None}


def _env():
    env = {**os.environ, "MLWORK_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MLWORK_DATA_DIR", None)
    return env


def _sha(workdir):
    return json.loads((Path(workdir) / "summary.json").read_text())["params_sha256"]


@pytest.fixture(scope="module")
def sample():
    return load_dataset("mnist", use_tfds=False)


def test_a_second_run_on_a_workdir_refuses_while_the_first_lives(tmp_path, capsys):
    workdir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from mlwork.train.guard import WorkdirLock; "
         "WorkdirLock(sys.argv[1]).__enter__(); print('locked', flush=True); time.sleep(120)", str(workdir)],
        stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = mnist.main(["--workdir", str(workdir), "--epochs", "1", "--no-compile-cache"])
        err = capsys.readouterr().err
        assert code == 2 and f"is in use by another run (pid {holder.pid})" in err
        assert not (workdir / "checkpoints").exists() and not (workdir / "config.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with WorkdirLock(workdir):  # the kernel released the dead holder's lock
        with pytest.raises(WorkdirInUse):
            WorkdirLock(workdir).__enter__()


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_the_resumed_run_is_exact(tmp_path, sample):
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "experiments.mnist", "--epochs", "4", "--steps-per-call", "1",
           "--workdir", str(workdir)]
    proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + 240
    while not (metrics.exists() and metrics.read_text().strip()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)  # during epoch 2: answered after the step in flight
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 75, err[-2000:]
    manager = checkpoint.checkpoint_manager(workdir, read_only=True)
    latest = manager.latest_step()
    manager.close()
    # The signal lands after epoch 1's checkpoint (step 63): inside epoch 2, or in the moment between
    # epoch 1's metrics row and epoch 2's first step (then the epoch-end checkpoint is the answer).
    # Either way the run names the checkpoint it stopped at. The mid-epoch path is pinned down
    # deterministically by the next test.
    assert latest >= 63
    assert f"preempted (SIGTERM): checkpoint saved at step {latest} " in err

    resumed = subprocess.run(cmd + ["--resume"], env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    reference = train_and_evaluate(TrainConfig(epochs=4, steps_per_call=1), tmp_path / "ref", sample, **QUIET)
    assert _sha(workdir) == reference["params_sha256"]


class _GuardFiringAt(PreemptionGuard):
    """A preemption guard whose request appears at its ``fire_at``-th poll (the lifecycle polls after
    each compiled call that does not end an epoch, and once at each epoch's end), so the stop
    lands at a known place mid-epoch."""

    fire_at = 0

    def __init__(self, *args, **kwargs):
        self.polls = 0
        super().__init__(*args, **kwargs)

    @property
    def requested(self) -> bool:
        self.polls += 1
        return self._requested or self.polls >= self.fire_at

    @requested.setter
    def requested(self, value: bool) -> None:
        self._requested = value


def test_preemption_mid_epoch_saves_partial_sums_and_resumes_exactly(tmp_path, small_mnist, monkeypatch):
    config = TrainConfig(epochs=3, batch_size=64, seed=4, steps_per_call=1)  # 9 steps per epoch
    workdir = tmp_path / "run"
    # Polls 1-8: after epoch 1's steps 1-8 (not after the call that ends the epoch), 9: its end,
    # 10-12: after epoch 2's steps 10-12 -> stop after step 12.
    monkeypatch.setattr(lifecycle, "PreemptionGuard", type("Guard", (_GuardFiringAt,), {"fire_at": 12}))
    with pytest.raises(Preempted) as stopped:
        train_and_evaluate(config, workdir, small_mnist, **QUIET)
    assert (stopped.value.step, stopped.value.epoch) == (12, 1)
    manager = checkpoint.checkpoint_manager(workdir, read_only=True)
    assert manager.latest_step() == 12
    manager.close()
    history = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1]

    monkeypatch.undo()
    done = train_and_evaluate(config, workdir, small_mnist, resume=True, **QUIET)
    reference = train_and_evaluate(config, tmp_path / "ref", small_mnist, **QUIET)
    assert done["params_sha256"] == reference["params_sha256"]
    # The interrupted epoch's metrics include the steps before the stop (partial sums restored).
    resumed = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    uninterrupted = [json.loads(line) for line in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    for got, want in zip(resumed, uninterrupted, strict=True):
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-6)
        assert got["train_accuracy"] == want["train_accuracy"]


def _biggest_file(folder: Path) -> Path:
    return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def test_a_damaged_latest_checkpoint_falls_back_with_a_warning(tmp_path, small_mnist):
    config = TrainConfig(epochs=3, batch_size=64, seed=4)
    workdir = tmp_path / "run"
    train_and_evaluate(config, workdir, small_mnist, **QUIET)
    steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [9, 18, 27]

    # Truncated array data in the latest checkpoint: resume warns, falls back to step 18, and the
    # finished run equals an uninterrupted 4-epoch run.
    victim = _biggest_file(workdir / "checkpoints" / "27" / "state")
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    logged = []
    done = train_and_evaluate(TrainConfig(epochs=4, batch_size=64, seed=4), workdir, small_mnist, resume=True,
                              progress=False, plots=False, log=logged.append)
    assert any("checkpoint 27" in m and "falling back" in m for m in logged), logged
    assert any("resumed from step 18" in m for m in logged), logged
    reference = train_and_evaluate(TrainConfig(epochs=4, batch_size=64, seed=4), tmp_path / "ref", small_mnist,
                                   **QUIET)
    assert done["params_sha256"] == reference["params_sha256"]


def test_deleted_files_and_wrong_bytes_are_detected(tmp_path, small_mnist):
    config = TrainConfig(epochs=2, batch_size=64, seed=4)
    train_and_evaluate(config, tmp_path / "run", small_mnist, **QUIET)
    template = init_state(prepare(config, small_mnist))
    for damage in ("delete", "tamper"):
        workdir = tmp_path / damage
        shutil.copytree(tmp_path / "run", workdir)
        latest = workdir / "checkpoints" / "18"
        if damage == "delete":
            for p in (latest / "state").rglob("*"):
                if p.is_file() and p.name != "_METADATA":
                    p.unlink()
        else:  # the bytes read back no longer match the SHA-256 recorded at save time
            record = next(p for p in (latest / "record").rglob("*") if p.is_file() and p.stat().st_size > 100)
            data = json.loads(record.read_text())
            data["state_sha256"] = "0" * 64
            record.write_text(json.dumps(data))
        manager = checkpoint.checkpoint_manager(workdir, read_only=True)
        warnings = []
        try:
            with pytest.raises(CheckpointError, match="checkpoint 18"):
                checkpoint.restore(manager, template, 18)
            state, _, step = checkpoint.restore_latest_intact(manager, template, warn=warnings.append)
        finally:
            manager.close()
        assert step == 9 and int(state.epoch) == 1
        assert len(warnings) == 1 and "checkpoint 18" in warnings[0]


def _small_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_stops_the_run_naming_the_path_and_keeps_earlier_checkpoints(tmp_path, small_mnist, monkeypatch,
                                                                               capsys):
    disk = tmp_path / "disk"
    mounted = _small_tmpfs(disk, "4m")  # room for one MLP checkpoint (≈ 2.8 MB) but not two
    if not mounted:  # no permission to mount: make the second save fail as a full disk would
        import orbax.checkpoint as ocp

        real_save, calls = ocp.CheckpointManager.save, []

        def full_disk(self, *args, **kwargs):
            calls.append(1)
            if len(calls) > 1:
                raise OSError(28, "No space left on device")
            return real_save(self, *args, **kwargs)

        monkeypatch.setattr(ocp.CheckpointManager, "save", full_disk)
    try:
        workdir = disk / "run"
        config = TrainConfig(epochs=3, batch_size=64, seed=4)
        with pytest.raises(CheckpointError, match=f"could not write checkpoint .* to {workdir / 'checkpoints'}"):
            train_and_evaluate(config, workdir, small_mnist, **QUIET)
        template = init_state(prepare(config, small_mnist))
        manager = checkpoint.checkpoint_manager(workdir, read_only=True)
        try:
            state, _, step = checkpoint.restore_latest_intact(manager, template)
        finally:
            manager.close()
        assert step == 9 and int(state.epoch) == 1
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("magic", "magic number 0x00000804"),
        ("count", "200 images but .* 199 labels"),
        ("label", "label 11; expected labels in 0-9"),
    ],
)
def test_bad_data_files_exit_2_with_one_line(tmp_path, capsys, damage, message):
    from tests.data.test_idx import make_split_dir, write_idx

    folder = tmp_path / "data"
    make_split_dir(folder, n_train=200, n_test=20)
    if damage == "magic":
        write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((200, 28, 28)), magic=0x00000804)
    elif damage == "count":
        write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(199))
    else:
        write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(200, 11))
    code = mnist.main(["--data-dir", str(folder), "--workdir", str(tmp_path / "w"), "--no-compile-cache"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    import re

    assert re.search(message, err)


def test_exploding_learning_rate_exits_3_without_a_checkpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLWORK_OFFLINE", "1")
    workdir = tmp_path / "w"
    code = mnist.main(["--optimizer", "sgd", "--lr", "1e6", "--epochs", "2", "--workdir", str(workdir),
                       "--no-compile-cache"])
    err = capsys.readouterr().err
    assert code == 3 and "non-finite training loss at epoch 1, step" in err
    assert not any(p.name.isdigit() for p in (workdir / "checkpoints").iterdir())


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_is_exact(tmp_path, sample):
    """The reduced version of bench/torture_resume.py: SIGKILL once the first epoch's checkpoint
    exists (so inside the second epoch, or during its save), then resume to the end."""
    from bench import torture_resume as torture

    workdir = tmp_path / "run"
    cmd = torture.command(workdir, 3, False)
    proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + 240
    while not (metrics.exists() and metrics.read_text().strip()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert torture.unrestorable(workdir, 3) == []
    resumed = subprocess.run(torture.command(workdir, 3, True), env=_env(), cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    reference = train_and_evaluate(TrainConfig(epochs=3, keep_checkpoints=2), tmp_path / "ref", sample, **QUIET)
    assert _sha(workdir) == reference["params_sha256"]
