"""The training monitor: norms, update ratios and dead units against NumPy oracles, and the
monitored epoch against gradients computed independently."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlwork import nn, optim
from mlwork.train import TrainConfig, create_train_state, fit, make_train_epoch, make_train_step
from mlwork.train import diagnostics as dg
from mlwork.train.diagnostics.plots import plot_gradient_norms

MEAN, STD = 0.1307, 0.3081


def _np_norm(*arrays):
    return math.sqrt(sum(float(np.sum(np.asarray(a, np.float64) ** 2)) for a in arrays))


def test_norms_per_layer_for_the_mlp_list_and_a_flax_dict():
    rng = np.random.default_rng(0)
    mlp_tree = [{"W": rng.normal(size=(4, 3)), "b": rng.normal(size=4)},
                {"W": rng.normal(size=(2, 4)), "b": np.ones(2)}]
    mlp_tree = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), mlp_tree)
    total, layers = dg.norms(mlp_tree)
    assert list(layers) == ["layer_1", "layer_2"]
    assert float(layers["layer_1"]) == pytest.approx(_np_norm(mlp_tree[0]["W"], mlp_tree[0]["b"]), rel=1e-6)
    assert float(layers["layer_2"]) == pytest.approx(_np_norm(mlp_tree[1]["W"], mlp_tree[1]["b"]), rel=1e-6)
    assert float(total) == pytest.approx(_np_norm(*jax.tree.leaves(mlp_tree)), rel=1e-6)

    flax_tree = {"Conv_0": {"kernel": jnp.full((3, 3, 1, 2), 2.0)}, "Dense_0": {"kernel": jnp.ones((5, 3)),
                                                                             "bias": jnp.zeros(3)}}
    _, layers = dg.norms(flax_tree)
    assert float(layers["Conv_0"]) == pytest.approx(math.sqrt(18 * 4.0))
    assert float(layers["Dense_0"]) == pytest.approx(math.sqrt(15.0))


def test_update_ratio_is_update_norm_over_parameter_norm():
    params = [{"W": jnp.full((2, 2), 3.0)}, {"W": jnp.full((1, 4), -1.0)}]
    updates = [{"W": jnp.full((2, 2), 0.003)}, {"W": jnp.zeros((1, 4))}]
    ratio, layers = dg.update_ratios(updates, params)
    assert float(layers["layer_1"]) == pytest.approx(0.001, rel=1e-5)
    assert float(layers["layer_2"]) == 0.0
    assert float(ratio) == pytest.approx(_np_norm(np.full(4, 0.003)) / _np_norm(np.full(4, 3.0), np.ones(4)), rel=1e-5)


def test_dead_relu_fraction_counts_units_zero_on_every_example():
    dense = jnp.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0]])  # units 0 and 3 dead
    conv = jnp.zeros((2, 3, 3, 2)).at[1, 2, 0, 1].set(0.5)                                 # channel 0 dead
    overall, layers = dg.dead_relu_fraction({"a": dense, "b": conv})
    assert float(layers["a"]) == 0.5 and float(layers["b"]) == 0.5
    assert float(overall) == pytest.approx(3 / 6)
    assert math.isnan(float(dg.dead_relu_fraction({})[0]))
    with pytest.raises(ValueError, match=r"activations\['v'\] has shape \(3,\)"):
        dg.dead_relu_fraction({"v": jnp.zeros(3)})


def test_sampled_statistics_and_their_epoch_summary():
    grads = [{"W": jnp.full((2, 2), 0.5)}]
    on = dg.sampled_gradient_statistics(grads, jnp.int32(6), 3)
    off = dg.sampled_gradient_statistics(grads, jnp.int32(7), 3)
    assert float(on["sampled"]) == 1.0 and float(on["grad_norm"]) == pytest.approx(1.0)
    assert float(on["grad_norm_layers"]["layer_1"]) == pytest.approx(1.0)
    assert float(off["sampled"]) == 0.0 and float(off["grad_norm"]) == 0.0
    with pytest.raises(ValueError, match="every must be a positive number"):
        dg.sampled_gradient_statistics(grads, jnp.int32(0), 0)

    stacked = {"grad_norm": jnp.array([1.0, 0.0, 3.0, 0.0]), "grad_norm_layers": {"x": jnp.array([2.0, 0.0, 4.0, 0.0])},
               "sampled": jnp.array([1.0, 0.0, 1.0, 0.0])}
    first = jax.device_get(dg.summarize_steps(stacked))
    assert float(first["grad_norm_sum"]) == 4.0 and float(first["grad_norm_layers_sum"]["x"]) == 6.0
    assert float(first["grad_norm_max"]) == 3.0 and float(first["monitored_steps"]) == 2.0
    second = jax.device_get(dg.summarize_steps(
        {"grad_norm": jnp.array([5.0]), "grad_norm_layers": {"x": jnp.array([1.0])}, "sampled": jnp.array([1.0])}))
    probe = {"done": np.float32(1.0), "param_norm": np.float32(7.0), "param_norm_layers": {"x": np.float32(7.0)}}
    total = dg.accumulate_monitor(None, {"steps": first, "epoch": {**probe, "done": np.float32(0.0)}})
    assert "epoch" not in total                       # a call that did not end the epoch brings no probe
    total = dg.accumulate_monitor(total, {"steps": second, "epoch": probe})
    row = dg.monitor_row(total)
    assert row["grad_norm"] == 3.0 and row["grad_norm_layers"] == {"x": 7.0 / 3}   # (1 + 3 + 5) / 3, (2 + 4 + 1) / 3
    assert row["grad_norm_max"] == 5.0 and row["monitored_steps"] == 3.0 and row["param_norm"] == 7.0
    assert dg.monitor_row(dg.accumulate_monitor(None, {"epoch": {"done": 1.0, "param_norm": np.nan}})) == {
        "param_norm": None}


def test_monitored_epoch_matches_independent_gradients(small_mnist):
    """One step per epoch (the batch is the whole set, so the order does not matter): the
    epoch's gradient norms, the probe's update ratios (plain SGD: η‖g‖/‖θ‖ on the first 64
    images at the end-of-epoch parameters), the parameter norms and the dead units must equal
    what jax.grad and a NumPy forward pass give directly. Two hidden units are killed by a bias
    of -1e3; training cannot revive them."""
    n, lr = 256, 0.1
    model, tx = nn.mlp([784, 32, 16, 10]), optim.optimizer("sgd", lr)
    state = create_train_state(model, tx, jax.random.key(3), (28, 28), optim.early_stopping(mode="max"))
    params = state.params
    params[0]["b"] = params[0]["b"].at[:2].set(-1e3)
    state = state._replace(params=params)
    images = jnp.asarray(small_mnist.train_images[:n])
    labels = jnp.asarray(small_mnist.train_labels[:n], jnp.int32)
    step = make_train_step(model, tx, mean=MEAN, std=STD, monitor_every=1)
    hook = dg.make_epoch_monitor(model, mean=MEAN, std=STD, tx=tx, probe_size=128)
    epoch = jax.jit(make_train_epoch(step, n, monitor=hook))
    plain = jax.jit(make_train_epoch(make_train_step(model, tx, mean=MEAN, std=STD), n))
    new_state, m = epoch(state, images, labels)
    monitor = dg.monitor_row(dg.accumulate_monitor(None, jax.device_get(m["monitor"])))
    end = jax.device_get(new_state.params)

    x = (np.asarray(small_mnist.train_images[:n], np.float32) / 255.0 - MEAN) / STD

    def grad_at(p, k):
        return jax.grad(lambda p: nn.softmax_cross_entropy(model.apply({"params": p, "state": {}}, x[:k])[0],
                                                           labels[:k]))(p)

    g_step, g_probe = grad_at(params, n), grad_at(end, dg.UPDATE_BATCH)
    for l in range(3):
        name = f"layer_{l + 1}"
        assert monitor["grad_norm_layers"][name] == pytest.approx(_np_norm(g_step[l]["W"], g_step[l]["b"]), rel=1e-4)
        theta = _np_norm(end[l]["W"], end[l]["b"])
        assert monitor["param_norm_layers"][name] == pytest.approx(theta, rel=1e-5)
        assert monitor["update_ratio_layers"][name] == pytest.approx(
            lr * _np_norm(g_probe[l]["W"], g_probe[l]["b"]) / theta, rel=1e-4)
    assert monitor["monitored_steps"] == 1.0

    a, dead = x[:128].reshape(128, -1), []
    for layer in end[:2]:  # NumPy forward pass of the hidden layers
        a = np.maximum(a @ layer["W"].T + layer["b"], 0.0)
        dead.append(np.all(a == 0, axis=0))
    assert dead[0][:2].all()
    assert monitor["dead_relu_layers"]["layer_1"] == pytest.approx(dead[0].mean())
    assert monitor["dead_relu_fraction"] == pytest.approx(np.concatenate(dead).mean())
    # Monitoring observes; it does not change training (the monitored epoch is another program,
    # which XLA may fuse and round differently on another CPU: equal to float32 round-off).
    plain_state, _ = plain(state, images, labels)
    for a, b in zip(jax.tree.leaves(plain_state.params), jax.tree.leaves(new_state.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_fit_rows_carry_the_monitor_and_plot(small_mnist, tmp_path):
    whole = fit(TrainConfig(epochs=2, batch_size=64, seed=2), small_mnist)
    steps_per_epoch = int(round(700 * 0.9)) // 64
    for row in whole.history:
        assert set(row["grad_norm_layers"]) == {"layer_1", "layer_2", "layer_3"}
        assert row["monitored_steps"] == math.ceil(steps_per_epoch / min(dg.MONITOR_EVERY, steps_per_epoch))
        assert 0 < row["grad_norm"] <= row["grad_norm_max"]
        assert 1e-5 < row["update_ratio"] < 1e-1 and row["param_norm"] > 1.0
        assert 0.0 <= row["dead_relu_fraction"] < 0.5 and row["learning_rate"] == pytest.approx(1e-3)
    # Epochs split into three compiled calls of 3 steps report the same monitor.
    chunked = fit(TrainConfig(epochs=2, batch_size=64, seed=2, steps_per_call=3), small_mnist)
    for a, b in zip(whole.history, chunked.history, strict=True):
        for key in ("grad_norm", "grad_norm_max", "monitored_steps", "param_norm", "update_ratio",
                    "dead_relu_fraction"):
            assert b[key] == pytest.approx(a[key], rel=1e-5), key
    path = plot_gradient_norms(tmp_path / "gradient_norms.png", whole.history, "mlp")
    assert path.stat().st_size > 5000
