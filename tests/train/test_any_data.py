"""The trainer on problems that are not MNIST: a regression (diabetes) and 8x8 images (digits),
single models and populations, with the guarantees MNIST has: metrics over whole sets, the best
checkpoint by the monitored metric, exact resume, refusals before the first write, load_run /
predict / export_run, TensorBoard, the training monitor and plots that fit the task."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlwork import nn
from mlwork.data import from_arrays
from mlwork.train import RunError, TrainConfig, export_run, load_exported, load_run, predict_run, train_and_evaluate
from mlwork.train.step import make_evaluate
from mlwork.train.task import make_task
from tests.train.problems import diabetes, digits_images

pytest.importorskip("sklearn")
ROOT = Path(__file__).resolve().parents[2]
QUIET = {"progress": False, "log": lambda m: None}
FAST = {"batch_size": 32, "eval_batch_size": 50, "lr": 3e-3, "hidden": "32", "dropout": 0.0}


@pytest.fixture(scope="module")
def regression():
    return diabetes()


@pytest.fixture(scope="module")
def regression_run(regression, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("any") / "diabetes"
    summary = train_and_evaluate(TrainConfig(epochs=3, **FAST), workdir, regression, **QUIET)
    return workdir, summary


# -- metrics over whole sets ---------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [7, 32, 1000])
def test_regression_metrics_count_every_example_once_whatever_the_batch(batch_size):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(0)
    x = rng.normal(size=(45, 3)).astype(np.float32)
    y = np.stack([x @ [1.0, -2.0, 0.5] + 100.0, x[:, 0] * 3.0 - 40.0], axis=1).astype(np.float32)
    data = from_arrays(x, y + rng.normal(size=y.shape))
    task = make_task(TrainConfig(metrics="mse,mae,r2,rmse"), data)
    params = [{"W": jnp.asarray(rng.normal(size=(2, 3)), jnp.float32), "b": jnp.asarray([99.0, -39.0])}]
    model = nn.mlp([3, 2])
    evaluate = jax.jit(make_evaluate(model, mean=0.0, std=1.0, batch_size=batch_size, task=task))
    out = evaluate(params, {}, jnp.asarray(data.x_train), jnp.asarray(data.y_train))
    raw = np.asarray(model.apply({"params": params, "state": {}}, jnp.asarray(data.x_train))[0])
    pred = data.target_mean + data.target_std * raw  # the model learns standardised targets
    np.testing.assert_allclose(out["predictions"], pred, rtol=1e-5)
    assert float(out["r2"]) == pytest.approx(r2_score(data.y_train, pred), rel=1e-6, abs=1e-5)
    assert float(out["mse"]) == pytest.approx(mean_squared_error(data.y_train, pred), rel=1e-5)
    assert float(out["mae"]) == pytest.approx(mean_absolute_error(data.y_train, pred), rel=1e-5)
    assert float(out["rmse"]) == pytest.approx(np.sqrt(mean_squared_error(data.y_train, pred)), rel=1e-5)
    standardised = (data.y_train - data.target_mean) / data.target_std
    assert float(out["loss"]) == pytest.approx(mean_squared_error(standardised, raw), rel=1e-5)


@pytest.mark.parametrize("batch_size", [4, 1000])
def test_classification_metrics_top_k_and_accuracy_over_the_whole_set(batch_size):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(23, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=23)
    labels[:5] = np.arange(5)
    data = from_arrays(np.eye(23, dtype=np.float32), labels)
    task = make_task(TrainConfig(metrics="accuracy,top2_accuracy"), data)
    params = [{"W": jnp.asarray(logits.T), "b": jnp.zeros(5)}]  # one-hot inputs: the outputs are the logits
    evaluate = jax.jit(make_evaluate(nn.mlp([23, 5]), mean=0.0, std=1.0, batch_size=batch_size, task=task))
    out = evaluate(params, {}, jnp.eye(23), jnp.asarray(labels, jnp.int32))
    top2 = np.argsort(-logits, axis=1)[:, :2]
    assert float(out["accuracy"]) == pytest.approx(np.mean(logits.argmax(1) == labels))
    assert float(out["top2_accuracy"]) == pytest.approx(np.mean([labels[i] in top2[i] for i in range(23)]))
    assert out["predictions"].tolist() == logits.argmax(1).tolist()


@pytest.mark.parametrize("changes, says", [
    ({"loss": "softmax_cross_entropy"}, "loss 'softmax_cross_entropy' is for class labels; the targets are values"),
    ({"metrics": "accuracy"}, "metric 'accuracy' is for class labels or multi-hot labels; the targets are values"),
    ({"monitor_metric": "r2", "monitor_mode": "min"}, "monitor_mode must be 'max' for 'r2'"),
    ({"monitor_metric": "accuracy"}, "monitor_metric must be 'loss' or one of the metrics"),
    ({"task": "classification"}, "task 'classification' needs class labels or multi-hot labels as targets"),
    ({"model": "cnn"}, "model 'cnn' needs images"),
])
def test_targets_that_cannot_fit_are_refused_before_the_first_write(regression, tmp_path, changes, says):
    with pytest.raises(RunError) as err:
        train_and_evaluate(TrainConfig(epochs=1, **{**FAST, **changes}), tmp_path / "w", regression, **QUIET)
    assert says in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "w").exists()


def test_a_monitor_mode_that_contradicts_a_known_metric_is_refused_by_the_config_itself():
    # Known without the data (so the command line refuses before any data chain runs), and the
    # same table every metric's own mode gives once the data are known.
    from mlwork.train.config import natural_mode
    from mlwork.train.task import TASK_METRICS

    labels = from_arrays(np.zeros((12, 2), np.float32), np.arange(12) % 6)
    values = from_arrays(np.zeros((4, 2), np.float32), np.arange(4, dtype=np.float32))
    for name, (factory, kinds) in {**TASK_METRICS, "top3_accuracy": TASK_METRICS["top5_accuracy"]}.items():
        metric = factory(labels if "classes" in kinds else values)
        assert natural_mode(name) == metric.mode, name
    assert natural_mode("loss") == "min" and natural_mode("mine") is None
    for changes, says in (({"monitor_metric": "loss", "monitor_mode": "max"}, "must be 'min' for 'loss'"),
                          ({"task": "regression", "monitor_mode": "max"}, "must be 'min' for 'loss'"),
                          ({"task": "classification", "monitor_mode": "min"}, "must be 'max' for 'accuracy'"),
                          ({"monitor_metric": "top2_accuracy", "monitor_mode": "min"}, "must be 'max'")):
        with pytest.raises(RunError, match=f"^monitor_mode {re.escape(says)}"):
            TrainConfig(**changes)
    TrainConfig(monitor_metric="pkg.mod:mine", monitor_mode="max")  # a user's metric: settled with the data


def test_a_registered_loss_is_a_name_the_config_takes_and_the_task_uses():
    # The config checks a loss's name against the registry itself (no mirrored tuple), so a loss
    # added with register_loss is accepted as register_loss's docstring says.
    from mlwork.train.task import TASK_LOSSES, register_loss

    def quartic(outputs, targets):
        return jnp.mean((outputs - targets[:, None]) ** 4, axis=-1)

    values = from_arrays(np.zeros((4, 2), np.float32), np.arange(4, dtype=np.float32))
    labels = from_arrays(np.zeros((4, 2), np.float32), np.arange(4) % 2)
    with pytest.raises(RunError, match="^loss must be one of softmax_cross_entropy, .*; got 'test_quartic'$"):
        TrainConfig(loss="test_quartic")
    register_loss("test_quartic", quartic, ("values",))
    try:
        task = make_task(TrainConfig(loss="test_quartic"), values)
        assert task.loss_name == "test_quartic" and task.loss is quartic
        with pytest.raises(RunError, match="^loss 'test_quartic' is for values; the targets are class labels"):
            make_task(TrainConfig(loss="test_quartic"), labels)
    finally:
        del TASK_LOSSES["test_quartic"]


def test_a_model_whose_outputs_do_not_fit_is_refused(regression, tmp_path):
    with pytest.raises(RunError, match=r"outputs must have shape \(batch, 1\) \(one output per target value\); got "
                                       r"\(2, 3\)"):
        train_and_evaluate(TrainConfig(epochs=1, **FAST), tmp_path / "w", regression, model=nn.mlp([10, 3]), **QUIET)
    assert not (tmp_path / "w").exists()


def _mean_over_the_batch(outputs, targets):  # a common slip: the mean of the batch, not per example
    return jnp.mean((outputs[:, 0] - targets) ** 2)


def _wrong_arity(outputs):
    return outputs[:, 0]


@pytest.mark.parametrize("loss, metrics, says", [
    (_mean_over_the_batch, None, "loss '_mean_over_the_batch' must return one float per example, shape (2,) for "
                                 "outputs (2, 1) float32 and targets (2,) float32; got shape () float32"),
    (_wrong_arity, None, "loss '_wrong_arity' failed on outputs (2, 1) float32 and targets (2,) float32: TypeError"),
    (None, {"batch_mse": _mean_over_the_batch}, "metric 'batch_mse' must return one float per example"),
])
def test_a_user_loss_or_metric_that_is_not_per_example_is_refused_before_the_first_write(regression, tmp_path,
                                                                                          loss, metrics, says):
    with pytest.raises(RunError) as err:
        train_and_evaluate(TrainConfig(epochs=1, **FAST), tmp_path / "w", regression, loss=loss, metrics=metrics,
                           **QUIET)
    assert str(err.value).startswith(says) and "\n" not in str(err.value), str(err.value)
    assert not (tmp_path / "w").exists()


def test_top_k_accuracy_needs_k_below_the_classes_and_the_default_monitor_among_the_metrics(tmp_path):
    data = digits_images(n=200)
    for metrics, says in (("top10_accuracy", "metric 'top10_accuracy' needs k below the number of classes (10)"),
                          ("top3_accuracy", "monitor_metric defaults to 'accuracy' for class labels, which the "
                                            "metrics ['top3_accuracy'] leave out")):
        with pytest.raises(RunError, match=re.escape(says)):
            make_task(TrainConfig(metrics=metrics), data)
    task = make_task(TrainConfig(metrics="top3_accuracy", monitor_metric="top3_accuracy"), data)
    assert task.monitor == "top3_accuracy" and task.mode == "max"


@pytest.mark.parametrize("metrics, says", [
    ("accuracy,top0_accuracy", "metric 'top0_accuracy' needs k of at least 1"),
    ("accuracy,top00_accuracy", "metric 'top00_accuracy' needs k of at least 1"),
    # top5_accuracy is a registered name: its k is checked against the classes all the same
    ("accuracy,top5_accuracy", "metric 'top5_accuracy' needs k below the number of classes (3)"),
    ("accuracy,top3_accuracy", "metric 'top3_accuracy' needs k below the number of classes (3)"),
])
def test_top_k_with_an_impossible_k_is_one_error_not_a_traceback(metrics, says):
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    data = from_arrays(x, np.arange(30) % 3)
    with pytest.raises(RunError, match=re.escape(says)):
        make_task(TrainConfig(metrics=metrics), data)
    assert make_task(TrainConfig(metrics="accuracy,top2_accuracy"), data).metrics.keys() >= {"top2_accuracy"}


# -- a regression, end to end --------------------------------------------------------------------------
def test_a_regression_trains_and_reports_its_metrics_and_plots(regression_run, regression):
    from sklearn.metrics import r2_score

    workdir, summary = regression_run
    assert summary["task"] == "values" and summary["monitor"] == "loss" and summary["monitor_mode"] == "min"
    assert {"test_mse", "test_mae", "test_r2", "test_loss", "best_val_loss"} <= set(summary)
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]  # it learns
    assert {"train_r2", "val_r2", "val_mae", "grad_norm"} <= set(rows[0])  # metrics and the training monitor
    best = min(rows, key=lambda r: (r["val_loss"], r["epoch"]))
    assert summary["best_epoch"] == best["epoch"] and summary["best_val_loss"] == pytest.approx(best["val_loss"])
    plots = {p.name for p in (workdir / "plots").iterdir()}
    assert {"predicted_vs_true.png", "residuals.png", "curves.png"} <= plots and "confusion_matrix.png" not in plots
    assert list(workdir.glob("events.out.tfevents.*")) or list(workdir.rglob("events.out.tfevents.*"))
    config = json.loads((workdir / "config.json").read_text())
    assert config["target"] == "values" and config["input_kind"] == "features" and len(config["mean"]) == 10
    # load_run / predict give the values behind the reported R²
    loaded = load_run(workdir)
    values = predict_run(loaded, regression.x_test)
    assert values.shape == (len(regression.y_test),) and values.dtype == np.float32
    assert r2_score(regression.y_test, values) == pytest.approx(summary["test_r2"], abs=1e-4)
    assert predict_run(loaded, regression.x_test[0]).shape == ()
    with pytest.raises(ValueError, match="NaN"):
        predict_run(loaded, np.full((1, 10), np.nan))


def test_an_exported_regression_gives_the_same_values(regression_run, regression, tmp_path):
    workdir, _ = regression_run
    folder = export_run(workdir, tmp_path / "exported")
    exported = load_exported(folder)(regression.x_test.astype(np.float64))
    np.testing.assert_allclose(exported, predict_run(load_run(workdir), regression.x_test), rtol=1e-5, atol=1e-4)


def test_a_resumed_regression_ends_bit_identical(regression_run, regression, tmp_path):
    workdir, summary = regression_run
    config = TrainConfig(epochs=3, **FAST)
    train_and_evaluate(config, tmp_path / "r", regression, stop_after=1, plots=False, **QUIET)
    resumed = train_and_evaluate(config, tmp_path / "r", regression, resume=True, plots=False, **QUIET)
    assert resumed["params_sha256"] == summary["params_sha256"]


def test_the_monitored_metric_chooses_the_best_checkpoint(regression, tmp_path):
    config = TrainConfig(epochs=3, monitor_metric="r2", patience=1, **FAST)
    summary = train_and_evaluate(config, tmp_path / "w", regression, plots=False, **QUIET)
    rows = [json.loads(line) for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda r: (r["val_r2"], -r["epoch"]))
    assert summary["monitor_mode"] == "max" and summary["best_epoch"] == best["epoch"]
    assert load_run(tmp_path / "w").step == best["epoch"] * ((len(regression.y_train) - 35) // 32)


def test_a_regression_population_reports_members_and_ensemble(regression, tmp_path):
    summary = train_and_evaluate(TrainConfig(epochs=2, population=2, **FAST), tmp_path / "pop", regression, **QUIET)
    assert len(summary["members"]) == 2 and {"ensemble_test_r2", "ensemble_test_mse"} <= set(summary)
    assert all("test_r2" in m and "best_val_loss" in m for m in summary["members"])
    loaded = load_run(tmp_path / "pop")
    both = predict_run(loaded, regression.x_test, per_member=True)
    assert both.shape == (2, len(regression.y_test))
    mse = float(np.mean((both.mean(0) - regression.y_test) ** 2))
    assert mse == pytest.approx(summary["ensemble_test_mse"], rel=1e-4)
    assert (tmp_path / "pop" / "plots" / "population_val.png").exists()


# -- images of another shape ----------------------------------------------------------------------------
def test_digits_8x8_train_with_the_cnn_and_plot_the_confusion_matrix(tmp_path):
    data = digits_images(n=400)
    config = TrainConfig(model="cnn", epochs=2, batch_size=32, eval_batch_size=100, lr=3e-3, monitor=False)
    summary = train_and_evaluate(config, tmp_path / "d", data, **QUIET)
    assert summary["task"] == "classes" and summary["monitor"] == "accuracy"
    assert {"confusion_matrix.png", "misclassified.png"} <= {p.name for p in (tmp_path / "d" / "plots").iterdir()}
    loaded = load_run(tmp_path / "d")
    assert loaded.input_shape == (8, 8)
    probs = predict_run(loaded, data.x_test)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert np.mean(probs.argmax(-1) == data.y_test) == pytest.approx(summary["test_accuracy"], abs=1e-6)


def test_without_a_test_split_the_validation_figures_are_reported_as_such(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    data = from_arrays(x, (x[:, 0] > 0).astype(np.int64), class_names=["neg", "pos"])
    summary = train_and_evaluate(TrainConfig(epochs=2, **FAST), tmp_path / "w", data, plots=True, **QUIET)
    assert summary["test_split"] == "validation"
    assert json.loads((tmp_path / "w" / "config.json").read_text())["class_names"] == ["neg", "pos"]
    plots = {p.name for p in (tmp_path / "w" / "plots").iterdir()}
    assert "confusion_matrix.png" in plots and "misclassified.png" not in plots  # features are not images


# -- a model of one's own, by import string, loaded back in a new process --------------------------------
USER_MODULE = '''
import flax.linen as fnn
import jax.numpy as jnp


class Small(fnn.Module):
    width: int
    outputs: int

    @fnn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape((x.shape[0], -1))
        return fnn.Dense(self.outputs)(fnn.tanh(fnn.Dense(self.width)(x)))


def small(input_shape, output_size, width=8):
    return Small(width=width, outputs=output_size)


def pseudo_huber(outputs, targets):
    d = outputs - targets.reshape(targets.shape[0], -1)
    return jnp.mean(jnp.sqrt(1.0 + d * d) - 1.0, axis=-1)
'''


def test_a_user_model_and_loss_by_import_string_come_back_in_a_new_process(regression, tmp_path, monkeypatch):
    (tmp_path / "user_models_any.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = TrainConfig(model="user_models_any:small", model_kwargs='{"width": 16}',
                         loss="user_models_any:pseudo_huber", epochs=2, batch_size=32, lr=3e-3, monitor=False)
    summary = train_and_evaluate(config, tmp_path / "w", regression, plots=False, **QUIET)
    assert summary["loss"] == "user_models_any:pseudo_huber" and summary["n_params"] == 10 * 16 + 16 + 16 + 1
    expected = predict_run(load_run(tmp_path / "w"), regression.x_test[:5])
    code = textwrap.dedent(f"""
        import numpy as np
        from mlwork.train import load_run, predict_run
        x = np.load({str(tmp_path / 'x.npy')!r})
        print(predict_run(load_run({str(tmp_path / 'w')!r}), x).tolist())
    """)
    np.save(tmp_path / "x.npy", regression.x_test[:5])
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": f"{ROOT}:{tmp_path}", "PATH": "/usr/bin:/bin", "MLWORK_OFFLINE": "1",
                              "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-2000:]
    np.testing.assert_allclose(json.loads(out.stdout.strip().splitlines()[-1]), expected, rtol=1e-5)


def test_multi_hot_labels_train_with_sigmoid_cross_entropy_and_predict_label_probabilities(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0, x[:, 0] + x[:, 1] > 0], axis=1)  # booleans: multi-hot
    data = from_arrays(x[:128], y[:128], x_test=x[128:], y_test=y[128:], class_names=["a", "b", "a+b"])
    summary = train_and_evaluate(TrainConfig(epochs=3, **FAST), tmp_path / "w", data, plots=False, **QUIET)
    assert summary["task"] == "multilabel" and summary["loss"] == "sigmoid_binary_cross_entropy"
    probs = predict_run(load_run(tmp_path / "w"), x[128:])
    assert probs.shape == (32, 3) and ((probs > 0) & (probs < 1)).all()
    per_label = np.mean((probs > 0.5) == y[128:])
    assert per_label == pytest.approx(summary["test_accuracy"], abs=1e-6)
