"""Each checklist function on its own, with hand-built models and losses whose verdicts are known."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlwork import nn, optim
from mlwork.data import preprocess
from mlwork.train import diagnostics as dg
from mlwork.train.diagnostics import checklist as cl

K = 10


def _scaled_output_layer(model, factor):
    """``model`` with its output layer's weights multiplied by ``factor``."""

    def init(key, shape):
        v = model.init(key, shape)
        params = list(v["params"])
        params[-1] = {**params[-1], "W": params[-1]["W"] * factor}
        return {**v, "params": params}

    return model._replace(init=init)


def test_normalisation_against_known_moments():
    rng = np.random.default_rng(0)
    ok = cl.check_normalization(rng.normal(size=(500, 28, 28)).astype(np.float32))
    assert ok.passed and abs(ok.values["mean"]) < 0.01 and ok.values["std"] == pytest.approx(1.0, abs=0.01)
    raw = cl.check_normalization(rng.uniform(size=(500, 28, 28)).astype(np.float32))   # mean 1/2, std 1/sqrt(12)
    assert not raw.passed and raw.cause == cl.NOT_NORMALISED
    assert raw.values["std"] == pytest.approx(1 / math.sqrt(12), abs=0.01)
    assert not cl.check_normalization(np.array([[0.0, np.nan]])).passed


def test_labels_out_of_range_or_missing_classes():
    x = jax.random.normal(jax.random.key(0), (200, 8))
    bad = cl.check_labels(x, jnp.arange(200, dtype=jnp.int32) % 11, n_classes=K, key=jax.random.key(1))
    assert not bad.passed and "outside [0, 10)" in bad.cause and bad.values["outside_range"] == 18
    missing = cl.check_labels(x, jnp.arange(200, dtype=jnp.int32) % 9, n_classes=K, key=jax.random.key(1))
    assert not missing.passed and "classes [9] never occur" in missing.cause
    with pytest.raises(ValueError, match="integer class indices"):
        cl.check_labels(x, jnp.zeros(200), n_classes=K, key=jax.random.key(1))


def test_loss_probe_tells_cross_entropy_from_mistakes():
    logits_model = nn.mlp([4, K])
    softmax_model = nn.mlp([4, K], output_activation="softmax")
    ce = cl.check_loss_matches_task(logits_model, nn.softmax_cross_entropy, n_classes=K)
    z = 10.0 * np.eye(K)[1]  # confidently wrong for class 0: |softmax(z) - e_0|
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert ce.passed
    assert ce.values["grad_confidently_wrong"] == pytest.approx(np.linalg.norm(p - np.eye(K)[0]), rel=1e-4)
    assert ce.values["loss_uniform"] == pytest.approx(math.log(K), rel=1e-6)

    def mse_on_logits(outputs, labels):
        return nn.mse(outputs, jax.nn.one_hot(labels, K))

    def naive_log_softmax(outputs, labels):  # log of a probability that underflows to 0
        return -jnp.mean(jnp.log(jnp.take_along_axis(jax.nn.softmax(outputs), labels[:, None], axis=1)))

    def categorical_on_probs(probs, labels):
        return nn.categorical_cross_entropy(probs, jax.nn.one_hot(labels, K))

    assert "does not rank" in cl.check_loss_matches_task(logits_model, mse_on_logits, n_classes=K).cause
    assert cl.LOG_OF_ZERO in cl.check_loss_matches_task(logits_model, naive_log_softmax, n_classes=K).cause
    assert cl.check_loss_matches_task(softmax_model, categorical_on_probs, n_classes=K).passed
    declared_wrong = cl.check_loss_matches_task(
        logits_model._replace(apply=softmax_model.apply), n_classes=K, x=jnp.ones((3, 4)),
        variables=logits_model.init(jax.random.key(0), (4,)))
    assert not declared_wrong.passed and "declares logits" in declared_wrong.cause
    with pytest.raises(ValueError, match="n_classes"):
        cl.check_loss_matches_task(logits_model, n_classes=1)


def test_initial_loss_is_ln_k_for_uniform_outputs_and_flags_overconfidence(small_mnist):
    x = preprocess(jnp.asarray(small_mnist.train_images[:256]), 0.1307, 0.3081)
    y = jnp.asarray(small_mnist.train_labels[:256], jnp.int32)
    base = nn.mlp([784, 32, K])
    zero = _scaled_output_layer(base, 0.0)  # logits = b = 0: exactly uniform
    r = cl.check_initial_loss(zero, zero.init(jax.random.key(0), (28, 28)), x, y, n_classes=K)
    assert r.passed and r.values["initial_loss"] == pytest.approx(math.log(K), rel=1e-6)
    hot = _scaled_output_layer(base, 30.0)
    r = cl.check_initial_loss(hot, hot.init(jax.random.key(0), (28, 28)), x, y, n_classes=K)
    assert not r.passed and r.cause == cl.OVERCONFIDENT and r.values["initial_loss"] > 2 * math.log(K)


def test_train_eval_mode_and_shapes():
    x = jax.random.normal(jax.random.key(0), (8, 6))
    y = jnp.arange(8, dtype=jnp.int32) % 3
    plain = nn.mlp([6, 5, 3])
    v = plain.init(jax.random.key(1), (6,))
    assert cl.check_train_eval_mode(plain, v, x, key=jax.random.key(2), expect_mode_difference=False).passed
    assert cl.check_train_eval_mode(plain, v, x, key=jax.random.key(2)).cause == cl.MODE_NO_TRAIN
    dropout = nn.mlp([6, 5, 3], dropout=0.5)
    always_train = dropout._replace(apply=lambda v, x, *, train=False, key=None: dropout.apply(
        v, x, train=True, key=jax.random.key(0) if key is None else key))
    r = cl.check_train_eval_mode(always_train, v, x, key=jax.random.key(2))
    assert not r.passed and r.cause == cl.MODE_RANDOM_EVAL
    assert cl.check_shapes(plain, x, y, key=jax.random.key(3), n_classes=3).passed
    wrong = cl.check_shapes(plain, x, y, key=jax.random.key(3), n_classes=K)
    assert not wrong.passed and wrong.cause == cl.SHAPES and wrong.values["output"] == [8, 3]


@pytest.mark.slow
def test_small_cnn_passes_the_whole_checklist(small_mnist):
    """The CNN path (Flax, BatchNorm, dropout, sown hidden units) at a size a test can train."""
    x = preprocess(jnp.asarray(small_mnist.train_images[:512]), 0.1307, 0.3081)
    y = jnp.asarray(small_mnist.train_labels[:512], jnp.int32)
    model = nn.cnn(channels=(8, 16), hidden=32)
    results = dg.run_checklist(model, x, y, tx=optim.optimizer("adam", 3e-3), key=jax.random.key(0),
                               overfit_steps=60)
    assert [r.number for r in results] == list(range(1, 9))
    assert all(r.passed for r in results), dg.format_table(results)
    assert set(results[3].values["layer_norms"]) >= {"Conv_0", "Conv_1", "Dense_0", "Dense_1", "BatchNorm_0"}


def test_a_changed_loss_closure_is_seen_on_the_next_call():
    """The checklist compiles its probes with the loss as a static argument: a user's loss whose
    closure changed between two calls must be traced again, not served the old program."""
    model = nn.mlp([4, 8, 3])
    variables = model.init(jax.random.key(0), (4,))
    x = jax.random.normal(jax.random.key(1), (16, 4))
    y = x[:, :3].argmax(-1)
    scale = {"s": 1.0}

    def loss(out, labels):
        return scale["s"] * nn.softmax_cross_entropy(out, labels)

    live = dg.check_gradient_flow(model, variables, x, y, key=jax.random.key(0), loss_fn=loss)
    scale["s"] = 0.0  # the same function object, now a loss with no gradient at all
    dead = dg.check_gradient_flow(model, variables, x, y, key=jax.random.key(0), loss_fn=loss)
    assert live.passed and all(v > 0 for v in live.values["layer_norms"].values())
    assert not dead.passed and all(v == 0 for v in dead.values["layer_norms"].values())
