"""Checkpoints on a clock (issue 28 item 4): ``checkpoint_every_steps`` / ``_minutes`` save mid-epoch
after compiled chunks, and a run resumed from any of them ends bit-identical to one never stopped."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import orbax.checkpoint as ocp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlwork.train import RunError, TrainConfig, checkpoint, train_and_evaluate
from mlwork.train.checkpoint import EveryNStepsOfEpoch, clock_policy

QUIET = {"progress": False, "plots": False, "log": lambda m: None}
ROOT = Path(__file__).resolve().parents[2]


@given(n=st.integers(1, 60), per_call=st.none() | st.integers(1, 60), spe=st.integers(1, 200))
def test_chunks_end_at_every_multiple_of_n_in_the_epoch(n, per_call, spe):
    length = TrainConfig(checkpoint_every_steps=n, steps_per_call=per_call).call_steps(spe)
    assert 1 <= length <= spe
    ends = set(range(length, spe, length)) | {spe}  # where the compiled calls of an epoch end
    assert {k * n for k in range(1, spe // n + 1) if k * n < spe} <= ends
    if per_call is not None:
        assert length <= per_call


def test_no_clock_keeps_one_call_per_epoch():
    assert TrainConfig().call_steps(937) == 937 and not TrainConfig().on_a_clock
    assert TrainConfig(steps_per_call=10).call_steps(937) == 10
    assert TrainConfig(checkpoint_every_minutes=2.5).call_steps(937) == 100
    assert clock_policy(None, None, 9) is None


@pytest.mark.parametrize("field, value, message", [
    ("checkpoint_every_steps", 0, "checkpoint_every_steps must be >= 1, got 0"),
    ("checkpoint_every_minutes", 0.0, "checkpoint_every_minutes must be > 0, got 0.0"),
    ("checkpoint_every_minutes", -1, "checkpoint_every_minutes must be > 0, got -1.0"),
])
def test_bad_clock_values_are_refused(field, value, message):
    with pytest.raises(RunError, match=message):
        TrainConfig(**{field: value})


def test_the_step_policy_counts_from_each_epochs_start():
    policy = EveryNStepsOfEpoch(n=4, steps_per_epoch=9)
    saved = [t for t in range(1, 28) if policy.should_save(SimpleNamespace(step=t), [], context=None)]
    assert saved == [4, 8, 9, 13, 17, 18, 22, 26, 27]  # not Orbax's global 4, 8, 12, 16, ...
    with pytest.raises(ValueError, match="n and steps_per_epoch must be >= 1"):
        EveryNStepsOfEpoch(0, 9)


def _steps(workdir):
    manager = checkpoint.checkpoint_manager(workdir, read_only=True)
    try:
        return manager.all_steps()
    finally:
        manager.close()


def test_a_mid_epoch_checkpoint_resumes_bit_identical(tmp_path, small_mnist):
    """Save every 4 steps (9 steps per epoch), then resume from the checkpoint at step 13 alone, as
    if the run had been killed right after writing it."""
    clock = TrainConfig(epochs=2, batch_size=64, seed=4, hidden="32", monitor=False, keep_checkpoints=20,
                        checkpoint_every_steps=4)
    ran = train_and_evaluate(clock, tmp_path / "clock", small_mnist, **QUIET)
    assert _steps(tmp_path / "clock") == [4, 8, 9, 13, 17, 18]
    reference = train_and_evaluate(clock.replace(checkpoint_every_steps=None), tmp_path / "ref", small_mnist, **QUIET)
    assert ran["params_sha256"] == reference["params_sha256"]  # saving changes nothing
    ref_rows = [json.loads(line) for line in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()]

    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "clock" / "config.json", killed / "config.json")
    shutil.copytree(tmp_path / "clock" / "checkpoints" / "13", killed / "checkpoints" / "13")
    manager = checkpoint.checkpoint_manager(killed, read_only=True)
    record = manager.restore(13, args=ocp.args.Composite(record=ocp.args.JsonRestore()))["record"]
    manager.close()
    assert record["partial"]["step_in_epoch"] == 4 and [r["epoch"] for r in record["history"]] == [1]

    other = tmp_path / "other"  # resumed with another clock: chunks of 3 from step 4 of the epoch (3, then 2)
    shutil.copytree(killed, other)
    done = train_and_evaluate(clock.replace(checkpoint_every_steps=3), other, small_mnist, resume=True, **QUIET)
    assert done["params_sha256"] == reference["params_sha256"]
    done = train_and_evaluate(clock, killed, small_mnist, resume=True, **QUIET)
    assert done["params_sha256"] == reference["params_sha256"]
    rows = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    for row, ref in zip(rows, ref_rows, strict=True):  # the resumed epoch's sums include its first 4 steps
        assert row["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-6)
        assert row["train_accuracy"] == ref["train_accuracy"]


@pytest.mark.slow
def test_a_population_saves_on_the_clock_and_resumes_bit_identical(tmp_path, small_mnist):
    clock = TrainConfig(epochs=2, batch_size=64, seed=1, population=2, hidden="32", monitor=False, keep_checkpoints=20,
                        checkpoint_every_steps=5)
    train_and_evaluate(clock, tmp_path / "clock", small_mnist, **QUIET)
    assert _steps(tmp_path / "clock") == [5, 9, 14, 18]
    reference = train_and_evaluate(clock.replace(checkpoint_every_steps=None), tmp_path / "ref", small_mnist, **QUIET)
    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "clock" / "config.json", killed / "config.json")
    shutil.copytree(tmp_path / "clock" / "checkpoints" / "14", killed / "checkpoints" / "14")
    done = train_and_evaluate(clock, killed, small_mnist, resume=True, **QUIET)
    assert done["params_sha256"] == reference["params_sha256"]
    assert [m["params_sha256"] for m in done["members"]] == [m["params_sha256"] for m in reference["members"]]


def _env():
    import os

    env = {**os.environ, "MLWORK_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MLWORK_DATA_DIR", None)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--population", "2"], ["--stream"], ["--stream", "--population", "2"]],
                         ids=["single", "population", "single-streamed", "population-streamed"])
def test_sigkill_loses_at_most_n_steps_and_the_resumed_run_is_exact(extra, tmp_path, monkeypatch):
    """SIGKILL once epoch 2 has a checkpoint on the clock; every N steps of the epoch had one (so at
    most N steps are lost), and the resumed run equals a run without the flag (and, streamed, a
    streamed run without it: the Grain iterator's state is in the checkpoint)."""
    from tests.train.problems import diabetes, save_npz

    monkeypatch.setenv("MLWORK_CACHE_DIR", str(tmp_path / "cache"))  # the streamed split's .npy files
    data = tmp_path / "diabetes.npz"
    save_npz(data, diabetes())
    base = [sys.executable, "-m", "experiments.train", "--data", str(data), "--epochs", "3", "--batch-size", "8",
            "--hidden", "16", "--no-compile-cache", *extra]
    n, spe = 5, 39  # 318 training examples / 8 = 39 steps per epoch
    proc = subprocess.Popen([*base, "--checkpoint-every-steps", str(n), "--keep-checkpoints", "100",
                             "--workdir", str(tmp_path / "run")], env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    folder, deadline = tmp_path / "run" / "checkpoints", time.time() + 300
    while proc.poll() is None and time.time() < deadline and not any(
            p.name.isdigit() and spe < int(p.name) < 2 * spe for p in (folder.iterdir() if folder.is_dir() else ())):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    steps = _steps(tmp_path / "run")
    latest = steps[-1]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps_per_epoch"] == spe
    assert latest > spe
    expected = [e * spe + p for e in range(3) for p in [*range(n, spe, n), spe] if e * spe + p <= latest]
    assert steps == expected, (steps, expected)  # every n steps of each epoch and at its end: none skipped
    resumed = subprocess.run([*base, "--workdir", str(tmp_path / "run"), "--resume"], env=_env(), cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    reference = subprocess.run([*base, "--workdir", str(tmp_path / "ref")], env=_env(), cwd=ROOT,
                               capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]
    sha = lambda w: json.loads((tmp_path / w / "summary.json").read_text())["params_sha256"]  # noqa: E731
    assert sha("run") == sha("ref")


def test_a_streamed_run_equals_the_in_memory_one_and_resumes_mid_epoch(tmp_path, small_mnist, monkeypatch):
    """Streamed automatically (the split exceeds a 0.1 MiB budget, with a notice), saved every 4
    steps with the Grain iterator's state, resumed from step 13 alone: the in-memory run's bits."""
    monkeypatch.setenv("MLWORK_CACHE_DIR", str(tmp_path / "cache"))
    lines = []
    clock = TrainConfig(epochs=2, batch_size=64, seed=4, hidden="32", keep_checkpoints=20, checkpoint_every_steps=4,
                        device_memory_budget_mb=0.1)
    ran = train_and_evaluate(clock, tmp_path / "clock", small_mnist, **{**QUIET, "log": lines.append})
    assert any(line.startswith("streaming the training split from ") and "exceed the device memory budget of 0.1 MiB"
               in line for line in lines)
    reference = train_and_evaluate(TrainConfig(epochs=2, batch_size=64, seed=4, hidden="32"), tmp_path / "ref",
                                   small_mnist, **QUIET)
    assert ran["params_sha256"] == reference["params_sha256"]
    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "clock" / "config.json", killed / "config.json")
    shutil.copytree(tmp_path / "clock" / "checkpoints" / "13", killed / "checkpoints" / "13")
    manager = checkpoint.checkpoint_manager(killed, read_only=True)
    record = manager.restore(13, args=ocp.args.Composite(record=ocp.args.JsonRestore()))["record"]
    manager.close()
    assert record["partial"]["data_iterator"] == {"next_index": 1}  # Grain's state: the second chunk of 4 next
    other = tmp_path / "other"  # another chunk length: the pipeline is positioned from the step instead
    shutil.copytree(killed, other)
    done = train_and_evaluate(clock.replace(checkpoint_every_steps=3), other, small_mnist, resume=True, **QUIET)
    assert done["params_sha256"] == reference["params_sha256"]
    done = train_and_evaluate(clock, killed, small_mnist, resume=True, **QUIET)
    assert done["params_sha256"] == reference["params_sha256"]


def test_the_minutes_policy_saves_once_the_interval_has_passed_since_the_last_checkpoint():
    import datetime

    from orbax.checkpoint.options import MultiprocessingOptions

    policy = clock_policy(None, 0.5, 9)  # 30 s
    now = datetime.datetime.now(datetime.UTC)
    context = SimpleNamespace(is_saving_in_progress=False, reached_preemption=False,
                              multiprocessing_options=MultiprocessingOptions())
    at = lambda step, seconds: SimpleNamespace(step=step, time=now + datetime.timedelta(seconds=seconds))  # noqa: E731
    assert not policy.should_save(at(5, 29), [at(3, 0)], context=context)
    assert policy.should_save(at(5, 31), [at(3, 0)], context=context)
    busy = SimpleNamespace(**{**vars(context), "is_saving_in_progress": True})
    assert not policy.should_save(at(5, 31), [at(3, 0)], context=busy)  # an async save still being written
    both = clock_policy(4, 0.5, 9)  # either one
    assert both.should_save(at(4, 1), [at(3, 0)], context=context)
    assert both.should_save(at(5, 31), [at(3, 0)], context=context)
    assert not both.should_save(at(5, 1), [at(3, 0)], context=context)
