"""Integer token inputs ``(N, T)`` int32 with a user's embedding model named by import string
(``tests.train.problems:bag_of_embeddings``): trained, judged against the majority class, loaded
back, predicted with and exported; token ids beyond the model's vocabulary are named at step 0.
The command-line run, its exact resume and a new process's load_run are slow."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mlwork.train import (
    NonFiniteLossError,
    TrainConfig,
    export_run,
    load_exported,
    load_run,
    predict_run,
    train_and_evaluate,
)
from tests.train.problems import save_npz, tokens

ROOT = Path(__file__).resolve().parents[2]
MODEL = "tests.train.problems:bag_of_embeddings"
QUIET = {"progress": False, "log": lambda m: None, "plots": False}
FAST = {"batch_size": 32, "lr": 1e-2, "optimizer": "adam", "monitor": False}


@pytest.fixture(scope="module")
def data():
    return tokens()


@pytest.fixture(scope="module")
def token_run(data, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tokens") / "run"
    summary = train_and_evaluate(TrainConfig(model=MODEL, epochs=5, **FAST), workdir, data, **QUIET)
    return workdir, summary


def test_tokens_are_int32_and_the_embedding_model_learns_the_rule(token_run, data):
    workdir, summary = token_run
    assert data.input_kind == "tokens" and data.x_train.dtype == np.int32 and data.x_train.shape[1:] == (12,)
    majority = max(np.mean(data.y_test), 1 - np.mean(data.y_test))  # the oracle a model must beat
    assert summary["test_accuracy"] > majority + 0.2, (summary["test_accuracy"], majority)
    assert summary["n_params"] == 20 * 8 + 8 * 2 + 2  # Embed(20, 8) and Dense(2): the factory's kwargs defaults
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"] == MODEL and config["input_kind"] == "tokens"


def test_a_token_run_comes_back_predicts_and_exports(token_run, data, tmp_path):
    workdir, summary = token_run
    loaded = load_run(workdir)
    probs = predict_run(loaded, data.x_test)
    assert probs.shape == (len(data.y_test), 2) and np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert np.mean(probs.argmax(-1) == data.y_test) == pytest.approx(summary["test_accuracy"], abs=1e-6)
    exported = load_exported(export_run(workdir, tmp_path / "exported"))(data.x_test)
    np.testing.assert_allclose(exported, probs, rtol=1e-5, atol=1e-6)
    # Wrong inputs are named as inputs, not images (the argument keeps its deck name).
    with pytest.raises(ValueError,
                       match=r"^inputs must be integer tokens \(the run trained on tokens\); got dtype float32$"):
        predict_run(loaded, data.x_test.astype(np.float32))
    with pytest.raises(ValueError, match=r"^inputs has shape \(3, 11\); expected \(\.\.\., 12\) — one example \(12,\)"):
        predict_run(loaded, data.x_test[:3, :11])


def test_token_ids_beyond_the_vocabulary_stop_at_step_0_blaming_the_data_not_the_learning_rate(data, tmp_path):
    config = TrainConfig(model=MODEL, model_kwargs='{"vocab": 3}', epochs=1, **FAST)
    with pytest.raises(NonFiniteLossError) as e:
        train_and_evaluate(config, tmp_path / "w", data, **QUIET)
    message = str(e.value)
    assert "at epoch 1, step 0" in message and "token ids beyond an embedding's vocabulary" in message
    assert "lower the learning rate" not in message
    assert (tmp_path / "w" / "config.json").exists() and not (tmp_path / "w" / ".lock").exists()  # exit 3: no lock


def _env():
    env = {**os.environ, "MLWORK_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MLWORK_DATA_DIR", None)
    return env


@pytest.mark.slow
def test_a_token_problem_from_the_command_line_resumes_exactly_and_loads_in_a_new_process(data, tmp_path):
    save_npz(tmp_path / "tokens.npz", data)
    base = [sys.executable, "-m", "experiments.train", "--data", str(tmp_path / "tokens.npz"), "--model", MODEL,
            "--model-kwargs", '{"dim": 6}', "--epochs", "3", "--batch-size", "32", "--optimizer", "adam",
            "--lr", "1e-2"]
    for argv in ([*base, "--workdir", str(tmp_path / "ref")], [*base, "--workdir", str(tmp_path / "run"),
                                                                 "--stop-after", "1"],
                 [sys.executable, "-m", "experiments.train", "--workdir", str(tmp_path / "run"), "--resume"]):
        out = subprocess.run(argv, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
    summaries = [json.loads((tmp_path / w / "summary.json").read_text()) for w in ("ref", "run")]
    assert summaries[0]["params_sha256"] == summaries[1]["params_sha256"] and summaries[1]["epochs_run"] == 3
    assert not (tmp_path / "run" / ".lock").exists()
    np.save(tmp_path / "x.npy", data.x_test)
    code = textwrap.dedent(f"""
        import numpy as np
        from mlwork.train import load_run, predict_run
        print(predict_run(load_run({str(tmp_path / 'run')!r}), np.load({str(tmp_path / 'x.npy')!r})).tolist())
    """)
    out = subprocess.run([sys.executable, "-c", code], env=_env(), cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    probs = np.asarray(json.loads(out.stdout.strip().splitlines()[-1]))
    assert np.mean(probs.argmax(-1) == data.y_test) == pytest.approx(summaries[1]["test_accuracy"], abs=1e-6)
