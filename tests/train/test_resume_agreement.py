"""A resume continues the run it names or refuses before writing: the same data (by content, not
only by file name), the same task (a loss or metric function is not silently replaced by the
default), no fewer epochs; values the run inferred may be named; a finished run leaves no
evicted checkpoints behind."""

from __future__ import annotations

import json
import re

import jax.numpy as jnp
import numpy as np
import pytest

from mlwork.data import from_arrays
from mlwork.train import RunError, TrainConfig, train_and_evaluate
from tests.train.problems import diabetes

pytest.importorskip("sklearn")
QUIET = {"progress": False, "log": lambda m: None, "plots": False}
FAST = {"batch_size": 32, "eval_batch_size": 50, "lr": 3e-3, "hidden": "16", "dropout": 0.0}


def _files(workdir):
    return {p.relative_to(workdir): p.read_bytes() for p in sorted(workdir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data():
    return diabetes()


@pytest.fixture(scope="module")
def stopped(data, tmp_path_factory):
    """A 3-epoch regression stopped after its first epoch."""
    workdir = tmp_path_factory.mktemp("agree") / "run"
    train_and_evaluate(TrainConfig(epochs=3, **FAST), workdir, data, stop_after=1, **QUIET)
    return workdir


def _refused(workdir, config, data, says, **kw):
    before = _files(workdir)
    with pytest.raises(RunError, match=re.escape(says)):
        train_and_evaluate(config, workdir, data, resume=True, **QUIET, **kw)
    assert _files(workdir) == before  # nothing written


def test_the_run_records_the_sha256_of_its_data(stopped, data):
    from mlwork.train.provenance import data_sha256

    recorded = json.loads((stopped / "config.json").read_text())["data_sha256"]
    assert recorded == data_sha256(data) and re.fullmatch(r"[0-9a-f]{64}", recorded)


def test_changed_data_under_the_same_source_is_refused(stopped, data):
    y = data.y_train.copy()
    y[0] += 1.0  # one target changed: same file name, same shapes
    changed = from_arrays(data.x_train, y, x_test=data.x_test, y_test=data.y_test, name=data.name)
    assert changed.source == data.source
    _refused(stopped, TrainConfig(epochs=3, **FAST), changed, "was trained on other data (SHA-256")


def test_a_run_trained_with_a_loss_function_is_not_resumed_with_the_default(data, tmp_path):
    def log_cosh(outputs, targets):
        d = outputs.reshape(-1) - targets.reshape(-1)  # one output per example
        return jnp.logaddexp(d, -d) - jnp.log(2.0)

    workdir = tmp_path / "run"
    config = TrainConfig(epochs=2, **FAST)
    train_and_evaluate(config, workdir, data, loss=log_cosh, stop_after=1, **QUIET)
    _refused(workdir, config, data, "holds a run with loss 'log_cosh', not 'mse'")
    summary = train_and_evaluate(config, workdir, data, loss=log_cosh, resume=True, **QUIET)
    assert summary["epochs_run"] == 2


def test_a_run_with_a_metric_function_is_not_resumed_without_it(data, tmp_path):
    def max_error(outputs, targets):
        return jnp.abs(outputs.reshape(-1) - targets.reshape(-1))

    workdir = tmp_path / "run"
    config = TrainConfig(epochs=2, **FAST)
    train_and_evaluate(config, workdir, data, metrics={"max_error": max_error}, stop_after=1, **QUIET)
    _refused(workdir, config, data, "holds a run with metrics ['mse', 'mae', 'r2', 'max_error'], not "
                                    "['mse', 'mae', 'r2']")


@pytest.mark.parametrize("given", [{"loss": "mse"}, {"metrics": "mse,mae,r2"}, {"task": "regression"},
                                   {"monitor_metric": "loss", "monitor_mode": "min"}])
def test_naming_what_the_run_inferred_is_no_change(data, tmp_path, given):
    workdir = tmp_path / "run"
    train_and_evaluate(TrainConfig(epochs=2, **FAST), workdir, data, stop_after=1, **QUIET)
    summary = train_and_evaluate(TrainConfig(epochs=2, **FAST, **given), workdir, data, resume=True, **QUIET)
    assert summary["epochs_run"] == 2


@pytest.mark.parametrize("given, says", [
    ({"loss": "mae"}, "holds a run with loss=None (inferred: 'mse'), not 'mae'"),
    ({"metrics": "mse,r2"}, "holds a run with metrics=None (inferred: 'mse,mae,r2'), not 'mse,r2'"),
    ({"task": "classification"}, "holds a run with task=None (inferred: 'regression'), not 'classification'"),
    ({"epochs": 2}, "holds a run with epochs=3, not 2 (a resume may add epochs, not remove them"),
])
def test_what_differs_from_the_run_is_refused_naming_it(stopped, data, given, says):
    config = TrainConfig(**{"epochs": 3, **FAST, **given})
    _refused(stopped, config, data, says)


def test_more_epochs_are_an_extension(data, tmp_path):
    workdir = tmp_path / "run"
    train_and_evaluate(TrainConfig(epochs=2, **FAST), workdir, data, **QUIET)
    summary = train_and_evaluate(TrainConfig(epochs=3, **FAST), workdir, data, resume=True, **QUIET)
    assert summary["epochs_run"] == 3


@pytest.mark.parametrize("population", [1, 2])
def test_a_finished_run_leaves_no_evicted_checkpoints(data, tmp_path, population):
    workdir = tmp_path / "run"
    train_and_evaluate(TrainConfig(epochs=4, keep_checkpoints=1, population=population, **FAST), workdir, data,
                       **QUIET)
    checkpoints = workdir / "checkpoints"
    assert not (checkpoints / "_deleted").exists(), list((checkpoints / "_deleted").iterdir())
    steps = sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
    assert 1 <= len(steps) <= 2  # the latest, and the best when it is another
    assert not (workdir / ".lock").exists()


def test_the_data_hash_covers_every_split_and_its_layout():
    from mlwork.train.provenance import data_sha256

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 3)).astype(np.float32), rng.normal(size=20).astype(np.float32)
    base = data_sha256(from_arrays(x, y, x_test=x[:5], y_test=y[:5]))
    variants = [from_arrays(x, y),  # no test split
                from_arrays(x, y, x_test=x[:5], y_test=y[1:6]),  # another test split
                from_arrays(x.reshape(20, 3, 1), y, x_test=x[:5].reshape(5, 3, 1), y_test=y[:5]),  # same bytes
                from_arrays(x[:, ::-1].copy(), y, x_test=x[:5], y_test=y[:5])]
    hashes = {data_sha256(v) for v in variants}
    assert base not in hashes and len(hashes) == len(variants)
    assert data_sha256(from_arrays(x[:, :].copy(), y.copy(), x_test=x[:5].copy(), y_test=y[:5].copy())) == base


def test_metrics_as_a_list_of_functions_are_named_by_their_names(data, tmp_path):
    from mlwork.train.task import make_task

    def abs_error(outputs, targets):
        return jnp.abs(outputs.reshape(-1) - targets.reshape(-1))

    task = make_task(TrainConfig(**FAST), data, metrics=[abs_error])
    assert "abs_error" in task.metrics
    for metrics, says in (([lambda o, t: o[:, 0]], "must be a distinct identifier; got '<lambda>'"),
                          ([abs_error, abs_error], "got 'abs_error' twice"),
                          ({"m": 3}, "metrics: 'm' must be a function"),
                          ("abs_error", "metrics must be a dict name -> metric(outputs, targets) or a list")):
        with pytest.raises(RunError, match=re.escape(says)):
            train_and_evaluate(TrainConfig(epochs=1, **FAST), tmp_path / "w", data, metrics=metrics, **QUIET)
        assert not (tmp_path / "w").exists()


def test_asking_multi_hot_of_float_values_says_how_to_get_them(data):
    from mlwork.train.task import make_task

    y = (np.random.default_rng(0).random((40, 3)) < 0.5).astype(np.float32)
    values = from_arrays(np.zeros((40, 2), np.float32), y)
    assert values.target == "values"
    for config in (TrainConfig(task="classification"), TrainConfig(loss="sigmoid_binary_cross_entropy")):
        with pytest.raises(RunError, match=re.escape("multi-hot labels are read from boolean targets, "
                                                     "from_arrays(..., target='multilabel')")):
            make_task(config, values)
    assert make_task(TrainConfig(), from_arrays(np.zeros((40, 2), np.float32), y, target="multilabel")).kind == \
        "multilabel"
