import math

import chex
import flax.linen as linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlwork import nn
from mlwork.nn.cnn import Conv, max_pool_2x2

# The deck's worked 3 -> 2 -> 1 network (section 11).
DECK_PARAMS = [
    {"W": jnp.array([[0.2, 0.4, -0.5], [-0.3, 0.1, 0.2]]), "b": jnp.array([0.1, -0.2])},
    {"W": jnp.array([[0.6, -0.4]]), "b": jnp.array([0.3])},
]
DECK_X = jnp.array([0.5, 0.8, -0.3])


def test_deck_forward_pass_numbers():
    model = nn.mlp([3, 2, 1], activation="relu", output_activation="sigmoid")
    y_hat, state = model.apply({"params": DECK_PARAMS, "state": {}}, DECK_X)
    assert state == {}
    assert y_hat.shape == (1,)
    assert float(y_hat[0]) == pytest.approx(0.669, abs=5e-4)
    assert float(y_hat[0]) == pytest.approx(1 / (1 + math.exp(-0.702)), rel=1e-6)
    zs, acts = nn.forward_cache(DECK_PARAMS, DECK_X, "relu", "sigmoid")
    np.testing.assert_allclose(zs[0][0], [0.67, -0.33], atol=1e-6)
    np.testing.assert_allclose(acts[1][0], [0.67, 0.0], atol=1e-6)
    assert float(zs[1][0, 0]) == pytest.approx(0.702, abs=1e-6)


def test_deck_parameter_count():
    model = nn.mlp([4, 5, 4, 2])
    variables = model.init(jax.random.key(0), (4,))
    assert nn.count_params(variables) == 59 == (5 * 4 + 5) + (4 * 5 + 4) + (2 * 4 + 2)
    assert nn.count_params(variables["params"]) == 59
    shapes = [jax.tree.map(jnp.shape, layer) for layer in variables["params"]]
    assert shapes == [{"W": (5, 4), "b": (5,)}, {"W": (4, 5), "b": (4,)}, {"W": (2, 4), "b": (2,)}]
    mnist = nn.mlp([784, 256, 128, 10], dropout=0.2)
    assert nn.count_params(mnist.init(jax.random.key(0), (28, 28))) == 784 * 256 + 256 + 256 * 128 + 128 + 1290


def test_single_example_batch_and_vmap_agree():
    model = nn.mlp([3, 4, 2], activation="tanh", output_activation="softmax")
    variables = model.init(jax.random.key(1), (3,))
    xs = jax.random.normal(jax.random.key(2), (5, 3))
    batch, _ = model.apply(variables, xs)
    chex.assert_shape(batch, (5, 2))
    mapped = jax.vmap(lambda x: model.apply(variables, x)[0])(xs)
    one = jnp.stack([model.apply(variables, x)[0] for x in xs])
    np.testing.assert_allclose(batch, mapped, rtol=1e-6)
    np.testing.assert_allclose(batch, one, rtol=1e-6)
    np.testing.assert_allclose(batch.sum(-1), 1.0, rtol=1e-6)
    # Images are flattened row-major, as the deck says: pixel (i, j) -> 28 i + j.
    mnist = nn.mlp([784, 10])
    v = mnist.init(jax.random.key(0), (28, 28))
    img = jax.random.uniform(jax.random.key(3), (2, 28, 28))
    np.testing.assert_allclose(mnist.apply(v, img)[0], mnist.apply(v, img.reshape(2, 784))[0], rtol=1e-6)


def test_dropout_train_vs_eval():
    model = nn.mlp([20, 64, 64, 3], dropout=0.5)
    variables = model.init(jax.random.key(0), (20,))
    x = jax.random.normal(jax.random.key(1), (8, 20))
    eval1, _ = model.apply(variables, x)
    eval2, _ = model.apply(variables, x, train=False, key=jax.random.key(5))
    np.testing.assert_array_equal(eval1, eval2)
    t1, _ = model.apply(variables, x, train=True, key=jax.random.key(1))
    t2, _ = model.apply(variables, x, train=True, key=jax.random.key(2))
    assert not np.allclose(t1, t2) and not np.allclose(t1, eval1)
    with pytest.raises(ValueError, match="key"):
        model.apply(variables, x, train=True)


def test_inverted_dropout_keeps_the_mean():
    x = jnp.ones((200_000,), jnp.float32)
    y = nn.dropout(x, 0.3, key=jax.random.key(0), train=True)
    assert float(y.mean()) == pytest.approx(1.0, abs=0.01)
    assert float((y == 0).mean()) == pytest.approx(0.3, abs=0.01)
    np.testing.assert_allclose(y[y > 0], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(nn.dropout(x, 0.3, key=None, train=False), x)


def test_perceptron_is_the_deck_weighted_sum():
    model = nn.perceptron(3, activation="identity")
    variables = {"params": {"w": jnp.array([0.4, -0.2, 0.6]), "b": jnp.array(0.1)}, "state": {}}
    z, _ = model.apply(variables, DECK_X)
    assert float(z) == pytest.approx(-0.04, abs=1e-6)  # deck section 9
    sig = nn.perceptron(3)
    assert float(sig.apply(variables, DECK_X)[0]) == pytest.approx(1 / (1 + math.exp(0.04)), rel=1e-6)
    assert sig.apply(variables, jnp.stack([DECK_X] * 4))[0].shape == (4,)
    assert nn.count_params(sig.init(jax.random.key(0), (3,))) == 4


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: nn.mlp([3, 0, 1]), r"sizes\[1\] must be an integer in \[1, 2147483647\]; got 0"),
        (lambda: nn.mlp([3, -2, 1]), r"sizes\[1\]"),
        (lambda: nn.mlp([3]), "at least the input and output"),
        (lambda: nn.mlp([3, 2.5, 1]), r"sizes\[1\]"),
        (lambda: nn.mlp([3, 2], activation="swish"), "activation must be one of .*; got 'swish'"),
        (lambda: nn.mlp([3, 2], output_activation="gelu"), "output_activation must be one of .*; got 'gelu'"),
        (lambda: nn.mlp([3, 2], dropout=1.0), r"dropout must be a finite real number in \[0, 1\); got 1.0"),
        (lambda: nn.mlp([3, 2], dropout=-0.1), "dropout"),
        (lambda: nn.perceptron(0), r"n_inputs must be an integer in \[1, 2147483647\]; got 0"),
        # a width of any integer type keeps its value (no wrap-around), or is refused by name
        (lambda: nn.mlp([np.int64(2**32 + 3), 2]), r"sizes\[0\] must be an integer in \[1, \d+\]; got 4294967299"),
        (lambda: nn.batch_norm_init(2**40), r"n_features must be an integer in \[1, 2147483647\]; got 1099511627776"),
        (lambda: nn.cnn(channels=(np.uint64(2**33),)), r"channels\[0\] must be an integer in \[1, 2147483647\]"),
        (lambda: nn.mlp([3, 2]).init(jax.random.key(0), (4,)),
         r"input_shape must be a shape of 3 features \(sizes\[0\]\); got \(4,\)"),
    ],
)
def test_bad_construction_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_shape_mismatch_in_apply_is_a_clear_error():
    model = nn.mlp([3, 2, 1])
    variables = model.init(jax.random.key(0), (3,))
    with pytest.raises(ValueError, match=r"x must be an array whose trailing axes hold 3 features.*got shape \(5, 4\)"):
        model.apply(variables, jnp.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"x must be an array whose trailing axes hold"):
        jax.jit(lambda v, x: model.apply(v, x)[0])(variables, jnp.zeros((2, 7)))
    wrong = nn.mlp([3, 4, 5, 1]).init(jax.random.key(0), (3,))
    with pytest.raises(ValueError, match=r"variables\['params'\] must be 2 layers for this mlp; got 3 layers"):
        model.apply(wrong, jnp.zeros((3,)))


class _SmallCNN(linen.Module):
    @linen.compact
    def __call__(self, x, train: bool = False):
        x = linen.Conv(4, (3, 3))(x)
        x = linen.BatchNorm(use_running_average=not train)(x)
        x = linen.relu(x).reshape((x.shape[0], -1))
        x = linen.Dropout(0.5, deterministic=not train)(x)
        return linen.Dense(3)(x)


def test_from_flax_runs_a_linen_cnn_through_the_same_pair():
    model = nn.from_flax(_SmallCNN())
    variables = model.init(jax.random.key(0), (6, 6, 1))
    assert set(variables) == {"params", "state"}
    assert set(variables["state"]) == {"batch_stats"}
    # Golden parameter count: conv 3·3·1·4 + 4, BatchNorm 2·4, dense 6·6·4·3 + 3.
    assert nn.count_params(variables) == 40 + 8 + 435
    x = jax.random.normal(jax.random.key(1), (5, 6, 6, 1)) * 3 + 1
    out, new_state = model.apply(variables, x, train=True, key=jax.random.key(2))
    chex.assert_shape(out, (5, 3))
    before = variables["state"]["batch_stats"]["BatchNorm_0"]["mean"]
    after = new_state["batch_stats"]["BatchNorm_0"]["mean"]
    assert not np.allclose(before, after)  # running statistics moved in train mode
    e1, s1 = model.apply(variables, x)
    e2, _ = model.apply(variables, x)
    np.testing.assert_array_equal(e1, e2)  # eval: deterministic, running stats, state unchanged
    assert s1 is variables["state"] or s1 == variables["state"]
    grads = jax.grad(lambda p: nn.softmax_cross_entropy(
        model.apply({"params": p, "state": variables["state"]}, x)[0], jnp.array([0, 1, 2, 0, 1])))(
        variables["params"])
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def test_mlwork_cnn_parameter_count():
    model = nn.cnn(channels=(32, 64), convs_per_block=2, hidden=128)
    variables = model.init(jax.random.key(0), (28, 28, 1))
    bn = lambda c: 2 * c  # noqa: E731  (scale and bias)
    expected = (9 * 1 * 32 + bn(32) + 9 * 32 * 32 + bn(32) + 9 * 32 * 64 + bn(64) + 9 * 64 * 64 + bn(64)
                + 7 * 7 * 64 * 128 + bn(128) + 128 * 10 + 10)
    assert nn.count_params(variables) == expected
    out, _ = model.apply(variables, jnp.zeros((2, 28, 28)))  # grayscale without a channel axis
    chex.assert_shape(out, (2, 10))
    # The default: one convolution per block.
    default = nn.cnn().init(jax.random.key(0), (28, 28, 1))
    assert nn.count_params(default) == (9 * 32 + bn(32) + 9 * 32 * 64 + bn(64) + 7 * 7 * 64 * 128 + bn(128)
                                        + 128 * 10 + 10) == 421_866


@pytest.mark.parametrize("kernel_size", [(3, 3), (2, 2), (1, 3)])
@jax.default_matmul_precision("highest")  # GPUs default to TF32 (10-bit mantissa) for matmul and conv:
# the two algorithms then round differently by ~4e-4 (seen on an H200); the claim is the algorithm's.
def test_matmul_convolution_equals_flax_conv_with_the_same_parameters(kernel_size):
    # The CPU path of the CNN (im2col matmul) against flax.linen.Conv: same parameter tree, same
    # outputs and gradients (SAME padding, stride 1, no bias), odd and even kernels.
    x = jax.random.normal(jax.random.key(1), (3, 7, 6, 4))
    ours = Conv(5, kernel_size, impl="matmul")
    flax_conv = linen.Conv(5, kernel_size, use_bias=False, padding="SAME")
    params = flax_conv.init(jax.random.key(0), x)
    assert jax.tree.structure(ours.init(jax.random.key(0), x)) == jax.tree.structure(params)
    np.testing.assert_allclose(ours.apply(params, x), flax_conv.apply(params, x), rtol=1e-5, atol=1e-5)
    loss = lambda m: lambda p, x: jnp.sum(jnp.tanh(m.apply(p, x)))  # noqa: E731
    g_ours = jax.grad(loss(ours), argnums=(0, 1))(params, x)
    g_flax = jax.grad(loss(flax_conv), argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_flax), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    xla = Conv(5, kernel_size, impl="xla")
    np.testing.assert_allclose(xla.apply(params, x), flax_conv.apply(params, x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="impl"):
        Conv(5, kernel_size, impl="fft").init(jax.random.key(0), x)


@pytest.mark.parametrize("shape", [(3, 8, 6, 4), (2, 7, 5, 3)])  # even, and odd (last row/column dropped)
def test_reshape_max_pool_equals_flax_max_pool(shape):
    x = jax.random.normal(jax.random.key(2), shape)  # continuous values: no ties
    expected = linen.max_pool(x, (2, 2), strides=(2, 2))
    for impl in ("reshape", "xla", "auto"):
        np.testing.assert_array_equal(max_pool_2x2(x, impl), expected)
    # The gradient goes to each window's maximum, as reduce_window's select_and_scatter sends it.
    loss = lambda pool: lambda x: jnp.sum(jnp.sin(pool(x)) * jnp.arange(1.0, 1.0 + expected.size).reshape(  # noqa: E731
        expected.shape))
    g_ours = jax.grad(loss(lambda x: max_pool_2x2(x, "reshape")))(x)
    g_flax = jax.grad(loss(lambda x: linen.max_pool(x, (2, 2), strides=(2, 2))))(x)
    np.testing.assert_allclose(g_ours, g_flax, rtol=1e-6)
    assert int(jnp.sum(g_ours != 0)) == expected.size  # one non-zero per window
    # A tie (an all-zero window after a ReLU) splits the gradient evenly instead of picking one.
    tie = jax.grad(lambda x: jnp.sum(max_pool_2x2(x, "reshape")))(jnp.zeros((1, 2, 2, 1)))
    np.testing.assert_allclose(tie.ravel(), [0.25] * 4)
    with pytest.raises(ValueError, match="impl"):
        max_pool_2x2(x, "avg")


@pytest.mark.parametrize("name", ["mlp", "mlp_bn", "perceptron", "cnn"])
def test_passing_params_where_variables_belong_is_one_line_naming_variables(name):
    model, shape = {
        "mlp": (lambda: nn.mlp([4, 3, 2]), (4,)),
        "mlp_bn": (lambda: nn.mlp([4, 3, 2], batch_norm=True), (4,)),
        "perceptron": (lambda: nn.perceptron(4), (4,)),
        "cnn": (lambda: nn.cnn(n_classes=3, channels=(2,), hidden=4), (8, 8)),
    }[name]
    model = model()
    variables = model.init(jax.random.key(0), shape)
    x = jnp.ones((2, *shape))
    model.apply(variables, x)  # the whole dict works
    for wrong in (variables["params"], {"state": variables["state"]}):
        with pytest.raises(ValueError, match=r"^variables must be the dict init returns.*; got a (list|dict)"):
            model.apply(wrong, x)
        with pytest.raises(ValueError, match=r"^variables must be the dict init returns"):
            jax.jit(lambda v: model.apply(v, x)[0])(wrong)  # the same line under jit, at trace time
    if model.hidden is not None:
        with pytest.raises(ValueError, match=r"^variables must be the dict init returns"):
            model.hidden(variables["params"], x)
