import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlwork import nn, optim
from mlwork.train import create_train_state, make_evaluate, make_train_epoch, make_train_step


def _state(model, tx, seed=0):
    return create_train_state(model, tx, jax.random.key(seed), (28, 28), optim.early_stopping(mode="max"))


def test_epoch_visits_a_seeded_permutation_once_and_drops_the_remainder(ids_dataset):
    images, labels = ids_dataset

    def recording_step(state, x, y):  # a stand-in step that reports which examples it was given
        return state._replace(step=state.step + 1), {"loss": jnp.float32(0.0), "correct": jnp.int32(0),
                                                      "ids": x[:, 0, 0]}

    model, tx = nn.mlp([784, 10]), optim.optimizer("sgd", 0.1)
    epoch = jax.jit(make_train_epoch(recording_step, batch_size=32))
    state0 = _state(model, tx)
    state1, m1 = epoch(state0, jnp.asarray(images), jnp.asarray(labels))
    state2, m2 = epoch(state1, jnp.asarray(images), jnp.asarray(labels))
    _, again = epoch(state0, jnp.asarray(images), jnp.asarray(labels))
    ids1, ids2 = np.asarray(m1["steps"]["ids"]), np.asarray(m2["steps"]["ids"])
    assert ids1.shape == (4, 32)                          # 130 // 32 = 4 batches; 2 examples dropped
    assert (int(state1.step), int(state2.step), int(state2.epoch)) == (4, 8, 2)
    for ids in (ids1, ids2):
        assert len(set(ids.ravel().tolist())) == 128      # no example twice within an epoch
    assert not np.array_equal(ids1, ids2)                 # a new order each epoch
    assert not np.array_equal(ids1.ravel(), np.sort(ids1.ravel()))  # shuffled, not in order
    np.testing.assert_array_equal(ids1, np.asarray(again["steps"]["ids"]))  # seeded by the state


def test_train_step_learns_and_reports(small_mnist):
    model = nn.mlp([784, 64, 10])
    tx = optim.optimizer("adam", 1e-3)
    step = jax.jit(make_train_step(model, tx, mean=0.1307, std=0.3081))
    state = _state(model, tx)
    x, y = jnp.asarray(small_mnist.train_images[:64]), jnp.asarray(small_mnist.train_labels[:64], jnp.int32)
    losses = []
    for _ in range(30):
        state, m = step(state, x, y)
        losses.append(float(m["loss"]))
    assert losses[0] == pytest.approx(np.log(10), abs=0.5)
    assert losses[-1] < 0.2 * losses[0]                 # it can overfit one batch
    assert int(state.step) == 30 and int(m["correct"]) >= 60


def test_epoch_compiles_once_over_several_epochs(small_mnist, caplog):
    model = nn.mlp([784, 32, 10], dropout=0.1)
    tx = optim.optimizer("adam", optim.schedule("cosine", init_value=1e-3, total_steps=30))
    epoch = jax.jit(make_train_epoch(make_train_step(model, tx, mean=0.1307, std=0.3081, augment=True), 64),
                    donate_argnums=0)
    state = _state(model, tx)
    x, y = jnp.asarray(small_mnist.train_images), jnp.asarray(small_mnist.train_labels, jnp.int32)
    # Without the persistent cache, so every compilation is a real (logged) one.
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        with caplog.at_level(logging.WARNING, logger="jax._src.dispatch"), jax.log_compiles(True):
            for _ in range(3):
                state, m = epoch(state, x, y)
    finally:
        jax.config.update("jax_enable_compilation_cache", True)
    compiles = [r for r in caplog.records if "Finished XLA compilation" in r.getMessage()
                and "train_chunk" in r.getMessage()]
    assert len(compiles) == 1, [r.getMessage() for r in compiles]
    assert int(state.epoch) == 3 and int(state.step) == 3 * (700 // 64)
    assert m["losses"].shape == (700 // 64,) and int(m["nonfinite_step"]) == -1


def test_nonfinite_loss_is_reported_with_its_step(small_mnist):
    model = nn.mlp([784, 32, 10])
    tx = optim.optimizer("sgd", lambda t: jnp.where(t < 3, 0.01, 1e30).astype(jnp.float32))
    epoch = jax.jit(make_train_epoch(make_train_step(model, tx, mean=0.1307, std=0.3081), 64))
    state = _state(model, tx)
    _, m = epoch(state, jnp.asarray(small_mnist.train_images), jnp.asarray(small_mnist.train_labels, jnp.int32))
    bad = int(m["nonfinite_step"])
    losses = np.asarray(m["losses"])
    assert bad >= 4 and np.all(np.isfinite(losses[:bad])) and not np.isfinite(losses[bad])


def test_evaluate_counts_every_example_with_padding(small_mnist):
    model = nn.mlp([784, 10])
    variables = model.init(jax.random.key(3), (28, 28))
    evaluate = jax.jit(make_evaluate(model, mean=0.1307, std=0.3081, batch_size=64))
    x, y = small_mnist.test_images[:150], small_mnist.test_labels[:150].astype(np.int32)
    got = evaluate(variables["params"], {}, jnp.asarray(x), jnp.asarray(y))
    # Oracle: the whole set at once, in NumPy.
    xf = ((x.reshape(150, -1) / 255.0 - 0.1307) / 0.3081).astype(np.float64)
    W, b = (np.asarray(variables["params"][0][k], np.float64) for k in ("W", "b"))
    logits = xf @ W.T + b
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    # float32 against float64: the same class wherever the top two logits are not tied to float32
    # round-off (there either class is right, and the CPU decides).
    top2 = np.sort(logits, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4 * (1 + np.abs(logits).max(1))
    np.testing.assert_array_equal(np.asarray(got["predictions"])[clear], logits.argmax(1)[clear])
    assert abs(float(got["accuracy"]) - np.mean(logits.argmax(1) == y)) <= np.mean(~clear) + 1e-6
    assert float(got["loss"]) == pytest.approx(-logp[np.arange(150), y].mean(), rel=1e-4)
