import json

import jax.numpy as jnp
import numpy as np
import pytest

from mlwork import optim
from mlwork.train import NonFiniteLossError, RunError, TrainConfig, checkpoint, train_and_evaluate

CONFIG = TrainConfig(epochs=4, batch_size=64, seed=1)
QUIET = {"progress": False, "log": lambda msg: None, "plots": False}


def _sha(workdir):
    return json.loads((workdir / "summary.json").read_text())["params_sha256"]


def test_resume_is_bit_exact(tmp_path, small_mnist):
    full = train_and_evaluate(CONFIG, tmp_path / "full", small_mnist, **QUIET)
    assert full["epochs_run"] == 4 and full["finished"]

    # Interrupted after 2 epochs of a 4-epoch run, then resumed.
    part = train_and_evaluate(CONFIG, tmp_path / "split", small_mnist, stop_after=2, **QUIET)
    assert part["epochs_run"] == 2 and not part["finished"]
    resumed = train_and_evaluate(CONFIG, tmp_path / "split", small_mnist, resume=True, **QUIET)
    assert resumed["params_sha256"] == full["params_sha256"]

    # "Train 2 epochs, stop, resume to 4" with the deck's step schedule (its position is in steps).
    two = TrainConfig(epochs=2, batch_size=64, seed=1)
    train_and_evaluate(two, tmp_path / "extend", small_mnist, **QUIET)
    extended = train_and_evaluate(CONFIG, tmp_path / "extend", small_mnist, resume=True, **QUIET)
    assert extended["params_sha256"] == full["params_sha256"]

    lines = (tmp_path / "extend" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    assert full["test_accuracy"] > 0.7
    # The test evaluation used the best checkpoint.
    history = [json.loads(line) for line in lines]
    assert full["best_val_accuracy"] == pytest.approx(max(r["val_accuracy"] for r in history))


def test_workdir_protections_touch_nothing(tmp_path, small_mnist):
    config = TrainConfig(epochs=1, batch_size=64)
    workdir = tmp_path / "run"
    with pytest.raises(RunError, match="--resume: no checkpoint"):
        train_and_evaluate(config, workdir, small_mnist, resume=True, **QUIET)
    train_and_evaluate(config, workdir, small_mnist, **QUIET)
    before = {p: p.read_bytes() for p in (workdir / "checkpoints").rglob("*") if p.is_file()}
    with pytest.raises(RunError, match="already holds a run; pass --resume"):
        train_and_evaluate(config, workdir, small_mnist, **QUIET)
    with pytest.raises(RunError, match="holds a run with model='mlp', not 'cnn'"):
        train_and_evaluate(TrainConfig(model="cnn", epochs=1), workdir, small_mnist, resume=True, **QUIET)
    after = {p: p.read_bytes() for p in (workdir / "checkpoints").rglob("*") if p.is_file()}
    assert before == after


def test_nonfinite_loss_stops_without_saving_and_resume_continues(tmp_path, small_mnist):
    steps_per_epoch = 630 // 64
    exploding = optim.optimizer(
        "sgd", lambda t: jnp.where(t < steps_per_epoch + 2, 0.01, 1e30).astype(jnp.float32))
    workdir = tmp_path / "run"
    config = TrainConfig(epochs=3, batch_size=64, optimizer="sgd", lr=0.01)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 1[0-9]") as e:
        train_and_evaluate(config, workdir, small_mnist, tx=exploding, **QUIET)
    assert e.value.epoch == 2 and e.value.step >= steps_per_epoch + 2
    manager = checkpoint.checkpoint_manager(workdir, read_only=True)
    assert manager.all_steps() == [steps_per_epoch]  # checkpoints are numbered by optimizer step
    manager.close()
    # Resuming with a sane optimizer continues from the good epoch-1 checkpoint.
    summary = train_and_evaluate(config, workdir, small_mnist, resume=True, **QUIET)
    assert summary["epochs_run"] == 3 and np.isfinite(summary["test_loss"])


def test_keeps_latest_n_and_the_best(tmp_path):
    manager = checkpoint.checkpoint_manager(tmp_path, keep=2, async_save=False)
    state = {"epoch": jnp.zeros((), jnp.int32), "w": jnp.zeros(3)}
    accuracies = [0.5, 0.9, 0.7, 0.9, 0.6, 0.65]
    for epoch, acc in enumerate(accuracies, start=1):
        s = {"epoch": jnp.asarray(epoch, jnp.int32), "w": jnp.full(3, float(epoch))}
        manager.save(epoch, args=checkpoint.ocp.args.Composite(
            state=checkpoint.ocp.args.StandardSave(s), record=checkpoint.ocp.args.JsonSave({"e": epoch})),
            metrics={"val_accuracy": acc, "epoch": epoch})
    manager.wait_until_finished()
    assert manager.all_steps() == [2, 5, 6]          # latest two, and the best (earliest of the ties)
    assert checkpoint.best_step(manager) == 2
    restored, record = checkpoint.restore(manager, state, 2)
    np.testing.assert_array_equal(restored["w"], [2.0, 2.0, 2.0])
    assert record == {"e": 2}
    manager.close()


@pytest.mark.parametrize(("keep", "keep_best", "kept"), [(1, 1, [2, 6]), (1, 3, [2, 3, 4, 6]), (2, 2, [2, 4, 5, 6])])
def test_keeps_latest_n_and_the_best_k(tmp_path, keep, keep_best, kept):
    manager = checkpoint.checkpoint_manager(tmp_path, keep=keep, keep_best=keep_best, async_save=False)
    for epoch, acc in enumerate([0.5, 0.9, 0.7, 0.9, 0.6, 0.65], start=1):
        checkpoint.save(manager, epoch, {"w": np.full(3, float(epoch), np.float32)}, {}, val_accuracy=acc, epoch=epoch)
    manager.wait_until_finished()
    assert manager.all_steps() == kept            # the latest `keep`, and the `keep_best` best (0.9, 0.9, 0.7)
    assert checkpoint.best_step(manager) == 2     # the earliest of the ties
    manager.close()


def test_keep_best_is_checked_and_reaches_the_run(tmp_path, small_mnist):
    with pytest.raises(ValueError, match=r"keep_best must be >= 1"):
        checkpoint.checkpoint_manager(tmp_path / "x", keep_best=0)
    with pytest.raises(RunError, match=r"keep_best must be >= 1, got 0"):
        train_and_evaluate(TrainConfig(keep_best=0), tmp_path / "refused", small_mnist, **QUIET)
    assert not (tmp_path / "refused").exists()
    config = TrainConfig(epochs=4, batch_size=64, seed=1, keep_checkpoints=1, keep_best=4)
    train_and_evaluate(config, tmp_path / "run", small_mnist, **QUIET)
    steps = [p.name for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.isdigit()]
    assert len(steps) == 4  # every epoch's checkpoint is among the best 4 (the default keeps at most 2)


def test_fit_in_memory_matches_train_and_evaluate(tmp_path, small_mnist):
    from mlwork import nn
    from mlwork.train import fit, make_evaluator, params_sha256

    config = TrainConfig(epochs=2, batch_size=64, seed=1)
    result = fit(config, small_mnist)
    assert [r["epoch"] for r in result.history] == [1, 2] and int(result.state.step) == 2 * (630 // 64)
    on_disk = train_and_evaluate(config, tmp_path / "run", small_mnist, **QUIET)
    assert params_sha256(result.state.params) == on_disk["params_sha256"]   # same compiled epochs
    test = make_evaluator(result.run)(result.state.params, result.state.model_state, *result.run.test)
    assert 0.7 < float(test["accuracy"]) <= 1.0
    linear = fit(TrainConfig(epochs=1, batch_size=64), small_mnist, model=nn.mlp([784, 10]))
    assert nn.count_params(linear.state.params) == 7850


def test_early_stopping_stops_and_a_resumed_run_stays_stopped(tmp_path, small_mnist):
    # patience=1 with a learning rate so small that validation accuracy cannot improve by much:
    # the run stops at the first epoch without improvement; resuming does not train further.
    config = TrainConfig(epochs=8, batch_size=64, patience=1, lr=1e-7, optimizer="sgd", schedule="constant")
    logs = []
    summary = train_and_evaluate(config, tmp_path / "run", small_mnist, progress=False, plots=False,
                                 log=logs.append)
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    accs = [r["val_accuracy"] for r in history]
    first_flat = next(i for i in range(1, len(accs)) if accs[i] <= accs[i - 1])
    assert summary["stopped_early"] and summary["epochs_run"] == first_flat + 1 < 8
    assert any("early stopping after epoch" in m for m in logs)
    again = train_and_evaluate(config, tmp_path / "run", small_mnist, resume=True, **QUIET)
    assert again["epochs_run"] == summary["epochs_run"] and again["params_sha256"] == summary["params_sha256"]
