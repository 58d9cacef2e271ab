"""The bfloat16 compute option of the networks: mixed precision with float32 parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from mlwork import nn, optim
from mlwork.nn.losses import softmax_cross_entropy
from mlwork.train.config import TrainConfig
from mlwork.train.programs import build_model

MODELS = {
    "mlp": lambda dtype: nn.mlp([784, 64, 32, 10], dropout=0.2, compute_dtype=dtype),
    "mlp_bn": lambda dtype: nn.mlp([784, 64, 32, 10], batch_norm=True, compute_dtype=dtype),
    "cnn": lambda dtype: nn.cnn(channels=(8, 16), hidden=32, compute_dtype=dtype),
}


def _batch(n=16):
    x = jax.random.uniform(jax.random.key(1), (n, 28, 28), jnp.float32, -1.0, 2.0)
    y = jax.random.randint(jax.random.key(2), (n,), 0, 10)
    return x, y


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bfloat16_outputs_are_float32_and_close_to_float32(name):
    f32, bf16 = MODELS[name]("float32"), MODELS[name]("bfloat16")
    variables = f32.init(jax.random.key(0), (28, 28))
    x, _ = _batch()
    for train in (False, True):
        out32, state32 = f32.apply(variables, x, train=train, key=jax.random.key(3))
        out16, state16 = bf16.apply(variables, x, train=train, key=jax.random.key(3))
        assert out16.dtype == jnp.float32
        # bfloat16 keeps 8 significant bits: relative error ~2^-8 per rounding, a few per layer.
        scale = float(jnp.max(jnp.abs(out32)))
        np.testing.assert_allclose(out16, out32, atol=0.05 * scale)
        assert not np.array_equal(np.asarray(out16), np.asarray(out32)), "bfloat16 changed nothing"
        for a, b in zip(jax.tree.leaves(state32), jax.tree.leaves(state16), strict=True):
            assert b.dtype == a.dtype == jnp.float32  # BatchNorm statistics stay float32


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "cnn" else n for n in sorted(MODELS)])
def test_bfloat16_gradients_and_optimizer_state_stay_float32(name):  # the CNN's compile is the slow tier's
    f32, bf16 = MODELS[name]("float32"), MODELS[name]("bfloat16")
    variables = bf16.init(jax.random.key(0), (28, 28))
    assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
    x, y = _batch()

    def loss(model, params):
        logits, _ = model.apply({"params": params, "state": variables["state"]}, x, train=True, key=jax.random.key(3))
        return softmax_cross_entropy(logits, y)

    l16, g16 = jax.value_and_grad(lambda p: loss(bf16, p))(variables["params"])
    l32, g32 = jax.value_and_grad(lambda p: loss(f32, p))(variables["params"])
    assert l16.dtype == jnp.float32
    assert abs(float(l16) - float(l32)) < 0.05 * abs(float(l32))
    for a, b in zip(jax.tree.leaves(g32), jax.tree.leaves(g16), strict=True):
        assert b.dtype == jnp.float32 and b.shape == a.shape
    v16, v32 = ravel_pytree(g16)[0], ravel_pytree(g32)[0]
    assert float(v16 @ v32 / (jnp.linalg.norm(v16) * jnp.linalg.norm(v32))) > 0.99  # the same direction
    tx = optim.optimizer("adam", 1e-3)  # the trainer's Adam
    opt_state = tx.init(variables["params"])
    updates, opt_state = tx.update(g16, opt_state, variables["params"])
    params = optax.apply_updates(variables["params"], updates)
    assert {leaf.dtype for leaf in jax.tree.leaves((params, opt_state)) if hasattr(leaf, "dtype")} \
        <= {jnp.dtype(jnp.float32), jnp.dtype(jnp.int32)}


def test_compute_dtype_reaches_the_model_through_the_config():
    config = TrainConfig(model="mlp", compute_dtype="bfloat16")
    model = build_model(config)
    variables = model.init(jax.random.key(0), (28, 28))
    x, _ = _batch(4)
    out16, _ = model.apply(variables, x)
    out32, _ = build_model(TrainConfig(model="mlp")).apply(variables, x)
    assert out16.dtype == jnp.float32 and not np.array_equal(np.asarray(out16), np.asarray(out32))


@pytest.mark.parametrize("bad", ["float16", "int8", "fp32", None])
def test_bad_compute_dtype_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="compute_dtype must be one of 'float32', 'bfloat16'; got"):
        nn.mlp([4, 2], compute_dtype=bad)
    with pytest.raises(ValueError, match="compute_dtype must be one of 'float32', 'bfloat16'; got"):
        nn.cnn(compute_dtype=bad)
    with pytest.raises(ValueError, match="compute_dtype"):
        TrainConfig(compute_dtype=str(bad))
