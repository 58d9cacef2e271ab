"""``python -m experiments.train --data FILE.npz``: any problem from the command line, with the MNIST
trainer's outputs, exit codes and guarantees (a regression and a classification, single models and
populations; the long end-to-end ones are slow)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from experiments import train
from tests.train.problems import diabetes, digits_images, save_npz

pytest.importorskip("sklearn")
ROOT = Path(__file__).resolve().parents[2]
FAST = ["--epochs", "2", "--batch-size", "32", "--lr", "3e-3", "--hidden", "32", "--no-compile-cache"]


def _env():
    env = {**os.environ, "MLWORK_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MLWORK_DATA_DIR", None)
    return env


@pytest.fixture(scope="module")
def diabetes_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("npz") / "diabetes.npz"
    save_npz(path, diabetes())
    return path


def _main(argv, capsys):
    try:
        code = train.main(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if line.strip()]
    return code, out.out, lines[-1] if lines else ""


def test_a_regression_from_an_npz_file(diabetes_npz, tmp_path, capsys):
    workdir = tmp_path / "run"
    code, out, _ = _main(["--data", str(diabetes_npz), "--workdir", str(workdir), *FAST], capsys)
    assert code == 0
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["task"] == "values" and "test r2" in out and "best val loss" in out
    config = json.loads((workdir / "config.json").read_text())
    assert config["data"] == str(diabetes_npz.resolve()) and config["hidden"] == "32"
    assert (workdir / "plots" / "predicted_vs_true.png").exists()
    assert not (workdir / ".lock").exists()  # a finished run leaves no lock file


def test_task_regression_reads_integer_targets_as_values(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    np.savez(tmp_path / "counts.npz", x_train=x, y_train=np.round(np.abs(x[:, 0]) * 4).astype(np.int64))
    workdir = tmp_path / "run"
    code, _, _ = _main(["--data", str(tmp_path / "counts.npz"), "--task", "regression", "--workdir", str(workdir),
                        *FAST], capsys)
    assert code == 0 and json.loads((workdir / "summary.json").read_text())["task"] == "values"


@pytest.mark.parametrize("flags, says", [
    (["--loss", "softmax_cross_entropy"], "error: loss 'softmax_cross_entropy' is for class labels"),
    (["--task", "classification"], "error: task 'classification' needs class labels"),
    (["--metrics", "top3_accuracy"], "error: metric 'top3_accuracy' is for class labels"),
    (["--monitor-metric", "mae", "--monitor-mode", "max"], "error: monitor_mode must be 'min' for 'mae'"),
    (["--model", "no_such_module_xyz:factory"], "error: model 'no_such_module_xyz:factory' cannot be imported"),
    (["--model", "cnn"], "error: model 'cnn' needs images"),
])
def test_targets_that_cannot_fit_exit_2_with_one_line_and_nothing_written(diabetes_npz, tmp_path, capsys, flags,
                                                                         says):
    workdir = tmp_path / "run"
    code, _, line = _main(["--data", str(diabetes_npz), "--workdir", str(workdir), *FAST, *flags], capsys)
    assert code == 2 and line.startswith(says), line
    assert not workdir.exists()


def test_bad_data_files_exit_2_with_one_line(tmp_path, capsys):
    np.savez(tmp_path / "pickled.npz", x_train=np.array([None] * 4, dtype=object), y_train=np.arange(4))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    np.savez(tmp_path / "nan.npz", x_train=np.array([[0.0], [np.nan], [1.0]]), y_train=np.array([0, 1, 0]))
    (tmp_path / "folder.npz").mkdir()
    for name, says in (("missing.npz", "does not exist"), ("folder.npz", "is a folder, not an .npz file"),
                       ("pickled.npz", "pickled"), ("junk.npz", "is not an .npz archive"),
                       ("nan.npz", "x_train must hold finite values; got NaN or infinity in row 1")):
        code, _, line = _main(["--data", str(tmp_path / name), "--workdir", str(tmp_path / "w"), *FAST], capsys)
        assert code == 2 and line.startswith("error: ") and says in line, line
        assert not (tmp_path / "w").exists()


def _bad_files(tmp_path):
    """``name -> (arrays, what the one-line refusal says)``: the ways a new user's .npz goes wrong."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(np.int64)
    return {
        "no_y_train": ({"x_train": x}, "must hold x_train and y_train; missing y_train"),
        "lengths": ({"x_train": x, "y_train": labels[:50]}, "y_train must have one target per example of x_train (60)"),
        "one_class": ({"x_train": x, "y_train": np.zeros(60, np.int64)}, "y_train must hold at least 2 classes"),
        "unseen_val_class": ({"x_train": x[:40], "y_train": labels[:40], "x_val": x[40:],
                              "y_val": np.full(20, 5, np.int64)}, "y_val must hold class labels below 2"),
        "negative_label": ({"x_train": x, "y_train": -labels}, "y_train must hold class labels >= 0"),
        "sparse_labels": ({"x_train": x, "y_train": labels * 1_000_000}, "y_train must hold class indices 0..K-1"),
        "string_labels": ({"x_train": x, "y_train": np.array(["a", "b"] * 30)},
                          "y_train must be integer class labels, float values or boolean multi-hot labels"),
        "nan_values": ({"x_train": x, "y_train": np.where(np.arange(60) == 3, np.nan, 1.0)},
                       "y_train must hold finite values; got NaN or infinity in row 3"),
        "float32_overflow": ({"x_train": x.astype(np.float64) * 1e300, "y_train": labels},
                             "x_train must hold finite values; got a value beyond float32's range"),
        "values_overflow": ({"x_train": x, "y_train": np.where(np.arange(60) == 7, 1e39, 1.0)},
                            "y_train must hold finite values; got a value beyond float32's range (|v| > 3.4e+38) "
                            "in row 7"),
        "no_features": ({"x_train": x[:, :0], "y_train": labels},
                        "x_train must hold at least one value per example; got per-example shape (0,)"),
        "no_target_values": ({"x_train": x, "y_train": np.zeros((60, 0), np.float32)},
                             "y_train must hold at least one target value per example; got per-example shape (0,)"),
        "bool_inputs": ({"x_train": x > 0, "y_train": labels}, "x_train must be uint8 images, float features or "
                                                               "integer tokens; got dtype bool"),
        "test_shape": ({"x_train": x, "y_train": labels, "x_test": x[:5, :2], "y_test": labels[:5]},
                       "x_test must have per-example shape (3,) like x_train"),
        "half_a_split": ({"x_train": x, "y_train": labels, "x_test": x[:5]},
                         "x_test and y_test must be given together"),
        "names_on_values": ({"x_train": x, "y_train": x[:, 0], "class_names": np.array(["a", "b"])},
                            "holds class_names, but its targets are read as values"),
    }


@pytest.mark.parametrize("name", list(_bad_files(Path("."))))
def test_a_bad_npz_exits_2_with_one_line_and_nothing_written(name, tmp_path, capsys):
    arrays, says = _bad_files(tmp_path)[name]
    np.savez(tmp_path / "bad.npz", **arrays)
    workdir = tmp_path / "run"
    code, out, line = _main(["--data", str(tmp_path / "bad.npz"), "--workdir", str(workdir), *FAST], capsys)
    assert code == 2 and line.startswith("error: ") and says in line, line
    assert "Traceback" not in out and not workdir.exists()


def test_a_workdir_that_is_a_file_exits_2_and_the_file_is_untouched(diabetes_npz, tmp_path, capsys):
    (tmp_path / "plain").write_text("mine")
    for workdir in (tmp_path / "plain", tmp_path / "plain" / "sub"):
        code, _, line = _main(["--data", str(diabetes_npz), "--workdir", str(workdir), *FAST], capsys)
        assert code == 2 and line == f"error: workdir {workdir} cannot be a folder: {tmp_path / 'plain'} is a file; " \
            "choose another --workdir", line
    assert (tmp_path / "plain").read_text() == "mine"


@pytest.mark.parametrize("flags, says", [
    (["--monitor-mode", "max"], "error: monitor_mode must be 'min' for 'loss'"),
    (["--model", "mlwork.nn:no_such_factory"], "error: model 'mlwork.nn:no_such_factory'"),
    (["--model", "json:loads"], "error: model 'json:loads' failed"),
    (["--loss", "json:loads"], "error: loss 'json:loads' failed on outputs (2, 1) float32 and targets (2,) "
                               "float32: TypeError"),
    (["--metrics", "mse,json:loads"], "error: metric 'json:loads' failed on outputs"),
    (["--task", "classification"], "error: task 'classification' needs class labels"),
])
def test_a_task_or_model_that_cannot_fit_exits_2_before_the_first_write(diabetes_npz, tmp_path, capsys, flags, says):
    workdir = tmp_path / "run"
    code, _, line = _main(["--data", str(diabetes_npz), "--workdir", str(workdir), *FAST, *flags], capsys)
    assert code == 2 and line.startswith(says), line
    assert not workdir.exists()


@pytest.mark.parametrize("flags, says", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
    (["--hidden", "0,3"], "hidden must be comma-separated positive integers"),
    (["--patience", "-1"], "patience must be >= 0"),
    (["--resume"], "--resume needs --workdir"),
])
def test_flag_errors_exit_2_naming_the_flag(diabetes_npz, tmp_path, capsys, flags, says):
    argv = ["--data", str(diabetes_npz), *FAST, *flags]
    if flags != ["--resume"]:
        argv += ["--workdir", str(tmp_path / "run")]
    code, _, line = _main(argv, capsys)
    assert code == 2 and says in line, line
    assert not (tmp_path / "run").exists()


def test_resume_needs_only_the_workdir(diabetes_npz, tmp_path, capsys, monkeypatch):
    workdir = tmp_path / "run"
    first = ["--data", str(diabetes_npz), "--workdir", str(workdir), *FAST, "--stop-after", "1"]
    monkeypatch.setattr(sys, "argv", ["train", *first])  # what config.json records as the command
    assert _main(first, capsys)[0] == 0
    again = ["--workdir", str(workdir), "--resume", "--no-compile-cache"]
    monkeypatch.setattr(sys, "argv", ["train", *again])
    code, out, _ = _main(again, capsys)
    assert code == 0 and json.loads((workdir / "summary.json").read_text())["epochs_run"] == 2
    record = json.loads((workdir / "config.json").read_text())["reproducibility"]
    assert record["argv"] == ["train", *first] and record["resumed_argv"] == [["train", *again]]
    code, _, line = _main(["--workdir", str(workdir), "--resume", "--loss", "mae"], capsys)
    assert code == 2 and "holds a run with loss=None (inferred: 'mse'), not 'mae'" in line


def test_a_resume_agrees_with_the_run_or_exits_2_with_nothing_written(diabetes_npz, tmp_path, capsys):
    workdir = tmp_path / "run"
    argv = ["--data", str(diabetes_npz), "--workdir", str(workdir), *FAST, "--epochs", "3"]
    assert _main([*argv, "--stop-after", "1"], capsys)[0] == 0
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    changed = tmp_path / "changed" / diabetes_npz.name
    changed.parent.mkdir()
    with np.load(diabetes_npz) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["y_train"] = arrays["y_train"][::-1].copy()  # the same shapes, other targets
    np.savez(changed, **arrays)
    for flags, says in (
            (["--epochs", "2"], "holds a run with epochs=3, not 2 (a resume may add epochs, not remove them"),
            (["--metrics", "mse"], "holds a run with metrics=None (inferred: 'mse,mae,r2'), not 'mse'"),
            (["--data", str(changed)], "holds a run with data=")):
        code, _, line = _main(["--workdir", str(workdir), "--resume", "--no-compile-cache", *flags], capsys)
        assert code == 2 and line.startswith("error: --resume: workdir") and says in line, line
        assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == before
    # the same file name with other contents: the content hash tells
    os.replace(changed, diabetes_npz.with_name("changed.npz"))
    same_name = tmp_path / "same"
    same_name.mkdir()
    stopped = same_name / "run"
    data = same_name / "d.npz"
    data.write_bytes(diabetes_npz.read_bytes())
    assert _main(["--data", str(data), "--workdir", str(stopped), *FAST, "--stop-after", "1"], capsys)[0] == 0
    data.write_bytes(diabetes_npz.with_name("changed.npz").read_bytes())
    code, _, line = _main(["--workdir", str(stopped), "--resume", "--no-compile-cache"], capsys)
    assert code == 2 and "was trained on other data (SHA-256" in line, line
    # naming what the run inferred, and more epochs, continue it
    data.write_bytes(diabetes_npz.read_bytes())
    code, _, _ = _main(["--workdir", str(stopped), "--resume", "--no-compile-cache", "--loss", "mse", "--task",
                        "regression", "--epochs", "3"], capsys)
    assert code == 0 and json.loads((stopped / "summary.json").read_text())["epochs_run"] == 3
    assert not (stopped / "checkpoints" / "_deleted").exists()


@pytest.mark.parametrize("metrics, says", [
    ("accuracy,top0_accuracy", "error: metric 'top0_accuracy' needs k of at least 1"),
    ("accuracy,top5_accuracy", "error: metric 'top5_accuracy' needs k below the number of classes (3)"),
])
def test_top_k_that_cannot_be_exits_2_with_one_line(tmp_path, capsys, metrics, says):
    rng = np.random.default_rng(0)
    path = tmp_path / "three.npz"
    np.savez(path, x_train=rng.normal(size=(30, 4)).astype(np.float32), y_train=np.arange(30) % 3)
    code, _, line = _main(["--data", str(path), "--workdir", str(tmp_path / "w"), *FAST, "--metrics", metrics],
                          capsys)
    assert code == 2 and line.startswith(says), line
    assert not (tmp_path / "w").exists()


# -- the long end-to-end guarantees (slow) ---------------------------------------------------------------
def _wait_for_first_epoch(proc, workdir, seconds=240):
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + seconds
    while not (metrics.exists() and metrics.read_text().strip()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be stopped"


def _sha(workdir):
    return json.loads((Path(workdir) / "summary.json").read_text())["params_sha256"]


def _digits_npz(tmp_path):
    path = tmp_path / "digits.npz"
    save_npz(path, digits_images())
    return path


@pytest.mark.slow
@pytest.mark.parametrize("problem, extra, sig", [
    ("diabetes", ["--epochs", "6", "--batch-size", "8", "--steps-per-call", "2"], signal.SIGTERM),
    ("diabetes", ["--epochs", "6", "--batch-size", "8", "--steps-per-call", "2"], signal.SIGKILL),
    ("digits", ["--model", "cnn", "--epochs", "4", "--batch-size", "32", "--steps-per-call", "2"], signal.SIGTERM),
    ("diabetes", ["--epochs", "6", "--batch-size", "8", "--steps-per-call", "2", "--population", "3"],
     signal.SIGTERM),
    ("diabetes", ["--epochs", "6", "--batch-size", "8", "--steps-per-call", "2", "--population", "3"],
     signal.SIGKILL),
    ("digits", ["--epochs", "4", "--batch-size", "32", "--steps-per-call", "2", "--sweep", "lr=1e-3,3e-3"],
     signal.SIGKILL),
], ids=["diabetes-sigterm", "diabetes-sigkill", "digits-cnn-sigterm", "diabetes-population-sigterm",
        "diabetes-population-sigkill", "digits-sweep-sigkill"])
def test_a_stopped_run_resumes_bit_identical(problem, extra, sig, diabetes_npz, tmp_path):
    data = diabetes_npz if problem == "diabetes" else _digits_npz(tmp_path)
    base = [sys.executable, "-m", "experiments.train", "--data", str(data), *extra]
    reference = subprocess.run([*base, "--workdir", str(tmp_path / "ref")], env=_env(), cwd=ROOT,
                               capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]
    workdir = tmp_path / "run"
    proc = subprocess.Popen([*base, "--workdir", str(workdir)], env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_first_epoch(proc, workdir)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == (75 if sig == signal.SIGTERM else -signal.SIGKILL), err[-2000:]
    lock = workdir / ".lock"
    assert lock.exists() == (sig == signal.SIGKILL)  # exit 75 removes the lock file; a SIGKILL leaves it
    resumed = subprocess.run([sys.executable, "-m", "experiments.train", "--workdir", str(workdir), "--resume"],
                             env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    stale = f"the run that held it (pid {proc.pid}) ended without releasing it"
    assert (stale in resumed.stdout + resumed.stderr) == (sig == signal.SIGKILL)
    assert not lock.exists()
    assert _sha(workdir) == _sha(tmp_path / "ref")


@pytest.mark.slow
def test_a_regression_on_two_devices_matches_one(diabetes_npz, tmp_path):
    env = {**_env(), "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"}
    runs = {}
    for devices in ("1", "2"):
        workdir = tmp_path / f"d{devices}"
        out = subprocess.run([sys.executable, "-m", "experiments.train", "--data", str(diabetes_npz), "--epochs", "3",
                              "--batch-size", "32", "--devices", devices, "--workdir", str(workdir)],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        runs[devices] = json.loads((workdir / "summary.json").read_text())
    assert runs["2"]["test_r2"] == pytest.approx(runs["1"]["test_r2"], abs=1e-3)
    assert runs["2"]["test_mse"] == pytest.approx(runs["1"]["test_mse"], rel=1e-3)


def test_integer_multi_hot_labels_from_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "tags.npz"
    y = (rng.random((60, 3)) < 0.4).astype(np.int64)  # 0/1 integers, one column per label
    np.savez(path, x_train=rng.normal(size=(60, 5)).astype(np.float32), y_train=y)
    code, _, line = _main(["--data", str(path), "--workdir", str(tmp_path / "w0"), *FAST], capsys)
    assert code == 2 and "is ambiguous" in line and "--task classification on the command line" in line, line
    assert not (tmp_path / "w0").exists()
    workdir = tmp_path / "w"
    code, out, _ = _main(["--data", str(path), "--workdir", str(workdir), *FAST, "--task", "classification"], capsys)
    assert code == 0
    config = json.loads((workdir / "config.json").read_text())
    assert config["target"] == "multilabel" and config["loss_name"] == "sigmoid_binary_cross_entropy"
    assert re.search(r"^test \(= validation split\) accuracy {2,}\d", out, re.M), out  # label and value apart
    # 0.0/1.0 float columns: values by default, multi-hot labels with --task classification
    np.savez(path, x_train=rng.normal(size=(60, 5)).astype(np.float32), y_train=y.astype(np.float32))
    code, _, line = _main(["--data", str(path), "--workdir", str(tmp_path / "f0"), *FAST, "--loss",
                           "sigmoid_binary_cross_entropy"], capsys)
    assert code == 2 and "0/1 columns with --task classification" in line, line
    code, _, _ = _main(["--data", str(path), "--workdir", str(tmp_path / "f"), *FAST, "--task", "classification"],
                       capsys)
    assert code == 0 and json.loads((tmp_path / "f" / "config.json").read_text())["target"] == "multilabel"


def test_a_refusal_that_needs_the_data_is_one_line_and_no_banner(diabetes_npz, tmp_path, capsys):
    code, out, line = _main(["--data", str(diabetes_npz), "--workdir", str(tmp_path / "w"), *FAST, "--loss",
                             "softmax_cross_entropy"], capsys)
    assert code == 2 and line.startswith("error: loss 'softmax_cross_entropy' is for class labels"), line
    assert "data:" not in out and not (tmp_path / "w").exists()  # the banner waits for the run's first line
