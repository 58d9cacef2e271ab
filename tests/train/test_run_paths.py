"""Every way a run can be refused, interrupted or fail — on each path: one model, a population, a sweep.

The spec is the table in docs/guides/reliability.md: for each row, the process ends within a
bounded time with the documented exit code and one line; no good checkpoint is moved or lost; the
workdir stays usable by the right command. Runs go through ``experiments.mnist.main`` in process
(real signals sent to this process while the run's guard is installed; disk faults from a real
tmpfs made full or read-only, or a failing writer where mounting is not allowed), and through a
subprocess where the process's own exit is what is tested. The rows that train (about fifty small
runs) are marked slow: CI runs them once, on Python 3.11.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from experiments import mnist
from mlwork.data import from_sample
from mlwork.train import checkpoint, lifecycle
from mlwork.train.guard import WorkdirLock
from tests.data.test_idx import write_idx

ROOT = Path(__file__).resolve().parents[2]
PATHS = {"single": [], "population": ["--population", "2"], "sweep": ["--sweep", "lr=1e-3,3e-3"]}
STEPS_PER_EPOCH = 630 // 64  # 700 images, 10% held out, batch 64


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """700 real MNIST training images (the embedded sample) and 200 test images as IDX files."""
    sample = from_sample()
    folder = tmp_path_factory.mktemp("data")
    write_idx(folder / "train-images-idx3-ubyte.gz", sample.train_images[:700])
    write_idx(folder / "train-labels-idx1-ubyte.gz", sample.train_labels[:700])
    write_idx(folder / "t10k-images-idx3-ubyte.gz", sample.test_images[:200])
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", sample.test_labels[:200])
    return folder


def _args(data_dir, path, workdir, *extra, epochs=3):
    return ["--data-dir", str(data_dir), "--epochs", str(epochs), "--steps-per-call", "2", *PATHS[path],
            "--workdir", str(workdir), *extra]


def _main(argv, capsys):
    try:
        code = mnist.main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    return code, capsys.readouterr().err


def _one_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err[-3000:]
    assert "Traceback" not in err
    return lines[0]


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


def _summary(workdir):
    return json.loads((Path(workdir) / "summary.json").read_text())


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
    """One finished 3-epoch run per path (the references), made on first use."""
    runs = {}

    def get(path):
        if path not in runs:
            workdir = tmp_path_factory.mktemp(path) / "run"
            assert mnist.main(_args(data_dir, path, workdir)) == 0
            runs[path] = workdir
        return runs[path]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_finished_runs_record_the_config_and_monitor_every_member(path, finished):
    workdir = finished(path)
    from mlwork.train.config import TrainConfig

    config = TrainConfig.from_json(workdir / "config.json")
    assert config.steps_per_call == 2 and config.epochs == 3
    assert config.is_population == (path != "single")
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    members = 1 if path == "single" else 2
    assert len(rows) == 3 * members
    assert all(r["grad_norm"] > 0 and r["param_norm"] > 0 and "grad_norm_layers" in r for r in rows)
    if members > 1:
        assert {r["member"] for r in rows} == {0, 1}
        assert rows[0]["param_norm"] != rows[1]["param_norm"]  # each member's own monitor


BAD_FLAGS = [["--devices", "64"], ["--lr", "nan"], ["--lr", "0"], ["--batch-size", "100000"], ["--dropout", "1.5"],
             ["--epochs", "0"]]


@pytest.mark.parametrize("path", PATHS)
def test_a_refused_start_leaves_the_workdir_as_it_was(path, data_dir, tmp_path, capsys):
    workdir = tmp_path / "run"
    for bad in BAD_FLAGS + ([["--sweep", "lr=1e-3,x"]] if path == "sweep" else []):
        code, err = _main(_args(data_dir, path, workdir, *bad), capsys)
        assert code == 2, (bad, err)
        assert _one_line(err).startswith("error: ")
        assert not workdir.exists(), bad


MISMATCHES = [
    ("single", ["--population", "2"], "population=1, not 2"),
    ("population", ["--population", "1"], "population=2, not 1"),
    ("population", ["--population", "4"], "population=2, not 4"),
    ("sweep", ["--population", "2"], "population=1, not 2"),
    ("single", ["--model", "cnn"], "model='mlp', not 'cnn'"),
    ("single", ["--lr", "0.01"], "lr=0.001, not 0.01"),
]


@pytest.mark.slow
@pytest.mark.parametrize("holder, request_flags, differs", MISMATCHES)
def test_a_mismatched_resume_is_refused_and_moves_nothing(holder, request_flags, differs, finished, data_dir,
                                                          tmp_path, capsys):
    workdir = tmp_path / "run"
    shutil.copytree(finished(holder), workdir)
    before = _snapshot(workdir)
    argv = ["--data-dir", str(data_dir), "--epochs", "3", "--steps-per-call", "2", "--workdir", str(workdir),
            "--resume", *request_flags]
    code, err = _main(argv, capsys)
    assert code == 2 and differs in _one_line(err), err
    assert _snapshot(workdir) == before and not (workdir / "damaged_checkpoints").exists()
    # The right command still continues the run (finished: nothing to train, evaluated again), and so
    # does --resume with --workdir alone (config.json holds every flag).
    code, err = _main(_args(data_dir, holder, workdir, "--resume"), capsys)
    assert code == 0, err
    code, err = _main(["--workdir", str(workdir), "--resume"], capsys)
    assert code == 0, err


@pytest.mark.slow
def test_a_checkpoint_of_another_kind_of_run_is_a_mismatch_not_damage(finished, data_dir, tmp_path, capsys):
    # Without config.json to compare, the checkpoint's own shapes tell a single model from a population.
    workdir = tmp_path / "run"
    shutil.copytree(finished("single"), workdir)
    (workdir / "config.json").unlink()
    before = _snapshot(workdir)
    code, err = _main(_args(data_dir, "population", workdir, "--resume"), capsys)
    assert code == 2 and "does not fit a population" in _one_line(err)
    assert _snapshot(workdir) == before and not (workdir / "damaged_checkpoints").exists()


@pytest.mark.slow
def test_a_schedule_spanning_the_run_cannot_be_stretched_on_resume(data_dir, tmp_path, capsys):
    workdir = tmp_path / "run"
    assert mnist.main(_args(data_dir, "single", workdir, "--schedule", "cosine", epochs=1)) == 0
    code, err = _main(_args(data_dir, "single", workdir, "--schedule", "cosine", "--resume", epochs=2), capsys)
    assert code == 2 and "epochs=1, not 2 (the cosine schedule spans the run's epochs" in _one_line(err)
    # The deck's step schedule counts steps, not the run's length: extending is exact (tests/train/test_loop.py).
    capsys.readouterr()


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_a_damaged_latest_checkpoint_falls_back_and_the_run_ends_exact(path, finished, data_dir, tmp_path, capsys):
    workdir = tmp_path / "run"
    shutil.copytree(finished(path), workdir)
    latest = workdir / "checkpoints" / str(3 * STEPS_PER_EPOCH)
    victim = max((p for p in (latest / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    code, err = _main(_args(data_dir, path, workdir, "--resume"), capsys)
    assert code == 0, err
    assert (workdir / "damaged_checkpoints").is_dir()  # moved aside, named in a warning
    assert _summary(workdir)["params_sha256"] == _summary(finished(path))["params_sha256"]  # epoch 3 again


@pytest.mark.parametrize("path", PATHS)
def test_a_busy_workdir_is_refused_and_nothing_is_written(path, data_dir, tmp_path, capsys):
    workdir = tmp_path / "run"
    with WorkdirLock(workdir):
        code, err = _main(_args(data_dir, path, workdir), capsys)
        assert sorted(p.name for p in workdir.iterdir()) == [".lock"]  # the holder's, untouched
    assert code == 2 and "is in use by another run" in _one_line(err)
    assert not workdir.exists()  # the holder's lock created it, and removed it on leaving


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_a_nonfinite_loss_exits_3_naming_member_epoch_and_step(path, data_dir, tmp_path, capsys):
    workdir = tmp_path / "run"
    explode = ["--optimizer", "sgd", "--lr", "1e6"] if path != "sweep" else ["--optimizer", "sgd"]
    args = _args(data_dir, path, workdir, *explode, epochs=1)
    if path == "sweep":
        args[args.index("lr=1e-3,3e-3")] = "lr=1e-3,1e6"  # only the second member explodes
    code, err = _main(args, capsys)
    line = _one_line(err)
    assert code == 3 and "non-finite training loss" in line and "at epoch 1, step " in line
    assert "no checkpoint had been written yet" in line  # true: none was
    who = {"single": None, "population": "of member 0 (seed 0, lr 1e+06", "sweep": "of member 1 (seed 0, lr 1e+06"}
    assert ("member" not in line) if who[path] is None else (who[path] in line), line
    assert not any(p.name.isdigit() for p in (workdir / "checkpoints").iterdir())
    assert not (workdir / ".lock").exists()  # exit 3 releases and removes the lock file
    # Stopped before its first checkpoint: --resume with a sane config starts over (flags not given are the
    # recorded run's, so the rate is given).
    code, err = _main(_args(data_dir, path, workdir, "--optimizer", "sgd", "--lr", "1e-3", "--resume", epochs=1),
                      capsys)
    assert code == 0, err


def _signal_at_poll(monkeypatch, signum, poll):
    """Send ``signum`` to this process at the run's ``poll``-th mid-epoch poll (after a compiled call),
    while its preemption guard is installed: a real signal at a known place."""
    real = lifecycle.train_epochs

    def train_epochs(*args, interrupt, **kwargs):
        polls = [0]

        def polled():
            polls[0] += 1
            if polls[0] == poll:
                os.kill(os.getpid(), signum)
            return interrupt()

        return real(*args, interrupt=polled, **kwargs)

    monkeypatch.setattr(lifecycle, "train_epochs", train_epochs)


@pytest.mark.slow
@pytest.mark.parametrize("signame, code", [("SIGTERM", 75), ("SIGUSR1", 75), ("SIGINT", 130)])
@pytest.mark.parametrize("path", PATHS)
def test_a_signal_saves_then_the_resumed_run_is_exact(path, signame, code, finished, data_dir, tmp_path, capsys,
                                                      monkeypatch):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed only in the main thread")
    workdir = tmp_path / "run"
    # Chunks of 2 over 9 steps per epoch: the mid-epoch polls come after steps 2, 4, 6, 8 of epoch 1,
    # then 11, 13, 15, 17 of epoch 2; the 6th is after step 13.
    _signal_at_poll(monkeypatch, getattr(signal, signame), 6)
    got, err = _main(_args(data_dir, path, workdir), capsys)
    assert got == code, err
    assert f"({signame}): checkpoint saved at step 13 (epoch 1)" in _one_line(err)
    assert not (workdir / ".lock").exists()  # exit 75 / 130 releases and removes the lock file
    monkeypatch.undo()
    got, err = _main(_args(data_dir, path, workdir, "--resume"), capsys)
    assert got == 0, err
    assert _summary(workdir)["params_sha256"] == _summary(finished(path))["params_sha256"]


def _env():
    env = {**os.environ, "MLWORK_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MLWORK_DATA_DIR", None)
    return env


def _wait_for_first_epoch(workdir, proc, seconds=240):
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + seconds
    while not (metrics.exists() and metrics.read_text().strip()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the fault"


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_sigkill_anywhere_then_resume_is_exact(path, finished, data_dir, tmp_path):
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "experiments.mnist", *_args(data_dir, path, workdir)]
    proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_first_epoch(workdir, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(cmd + ["--resume"], env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _summary(workdir)["params_sha256"] == _summary(finished(path))["params_sha256"]


@pytest.mark.slow
def test_sigusr1_then_the_same_command_with_resume_auto_finishes_exact(finished, data_dir, tmp_path):
    """What a SLURM job does: ``--resume auto`` starts the run in an empty workdir, SIGUSR1 (sent before
    the time limit) saves and exits 75, the same command resumes it to the uninterrupted result, and a
    changed command is refused with 2."""
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "experiments.mnist", *_args(data_dir, "single", workdir), "--resume", "auto"]
    proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_first_epoch(workdir, proc)
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 75, err[-2000:]
    assert "preempted (SIGUSR1): checkpoint saved at step " in err and "Traceback" not in err
    assert not (workdir / "summary.json").exists()
    resumed = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from step " in resumed.stdout
    assert _summary(workdir)["params_sha256"] == _summary(finished("single"))["params_sha256"]
    changed = subprocess.run(cmd + ["--lr", "0.01"], env=_env(), cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
    assert changed.returncode == 2 and "holds a run with lr=0.001, not 0.01" in _one_line(changed.stderr)


@contextlib.contextmanager
def _tmpfs(folder: Path, size: str = "64m"):
    folder.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _make_read_only(folder: Path) -> bool:
    """A read-only bind mount over ``folder``: from now on writes under it fail with EROFS, as on a
    disk remounted read-only (open files, like the run's lock, stay open). ``False`` if not permitted."""
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bind.returncode != 0:
        return False
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode != 0:
        _make_writable(folder)  # lazily: the run's open lock file made a plain umount fail and leave the bind behind
        return False
    return True


def _make_writable(folder: Path) -> None:
    """Remove the read-only mount (lazily if a file under it is still open), leaving no mount behind."""
    for _ in range(3):
        if not _is_mount_point(folder):
            return
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    assert not _is_mount_point(folder), f"could not unmount {folder}"


def _is_mount_point(folder: Path) -> bool:
    # os.path.ismount compares devices and inodes, which a bind mount of a folder onto itself keeps
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    return os.path.realpath(folder) in {line.split()[4] for line in mounts}


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 2**20)
            f.flush()


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["full", "read_only", "vanished"])
@pytest.mark.parametrize("path", PATHS)
def test_a_disk_fault_after_the_first_checkpoint_exits_4_and_keeps_it(path, fault, finished, data_dir, tmp_path,
                                                                      capsys, monkeypatch):
    with _tmpfs(tmp_path / "disk") as mounted:
        workdir = tmp_path / "disk" / "run"
        real_save, saves, injected = checkpoint.save, [], []

        def save(manager, step, *args, **kwargs):
            if saves and not injected:  # no permission to mount: the writer fails as the disk would
                raise checkpoint.CheckpointError(f"could not write checkpoint {step} to {manager.directory}: "
                                                 f"{'No space left on device' if fault == 'full' else 'gone'}")
            real_save(manager, step, *args, **kwargs)
            saves.append(step)
            if len(saves) == 1:  # epoch 1's checkpoint is on disk: now the fault
                checkpoint.wait(manager)
                if fault == "full" and mounted:
                    _fill(tmp_path / "disk")
                    injected.append(fault)
                elif fault == "read_only" and _make_read_only(workdir):
                    injected.append(fault)
                elif fault == "vanished":
                    shutil.rmtree(workdir)
                    injected.append(fault)

        monkeypatch.setattr(checkpoint, "save", save)
        try:
            code, err = _main(_args(data_dir, path, workdir), capsys)
        finally:
            monkeypatch.undo()
            if "read_only" in injected:
                _make_writable(workdir)
        line = _one_line(err)
        assert code == 4 and line.startswith("error: could not write"), err
        if "read_only" not in injected:  # (a read-only folder keeps the file; the kernel released the lock)
            assert not (workdir / ".lock").exists()  # exit 4 releases and removes the lock file
        if fault == "vanished":  # the user removed the run; nothing was recreated, and the command starts anew
            assert not workdir.exists()
            code, err = _main(_args(data_dir, path, workdir, epochs=1), capsys)
            assert code == 0, err
            return
        if "full" in injected:
            (tmp_path / "disk" / "filler").unlink()
        assert (workdir / "checkpoints" / str(STEPS_PER_EPOCH)).is_dir()  # epoch 1's checkpoint is kept
        code, err = _main(_args(data_dir, path, workdir, "--resume"), capsys)
        assert code == 0, err
        assert _summary(workdir)["params_sha256"] == _summary(finished(path))["params_sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_a_read_only_disk_ends_the_process_within_seconds(path, data_dir, tmp_path):
    workdir = tmp_path / "run"
    args = _args(data_dir, path, workdir, "--steps-per-call", "1", epochs=6)
    cmd = [sys.executable, "-m", "experiments.mnist", *args]
    proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_first_epoch(workdir, proc)
    if not _make_read_only(workdir):
        proc.kill()
        pytest.skip("needs permission to mount")
    t0 = time.time()
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the process did not end within 60 s of its disk turning read-only")
    finally:
        _make_writable(workdir)
    assert proc.returncode == 4, err[-2000:]
    assert _one_line(err).startswith("error: could not write"), err
    assert time.time() - t0 < 60
