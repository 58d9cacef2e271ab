"""bias_variance_decomposition on problems whose answer is known in closed form."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlwork.theory import bias_variance_decomposition

SIGMA2 = 0.25
X_DESIGN = np.linspace(-1.0, 1.0, 12).astype(np.float32)
X_TEST = np.linspace(-0.9, 0.9, 9).astype(np.float32)


def f_true(x):
    return np.sin(np.pi * x)


def features(x, degree=2):
    return jnp.stack([x**k for k in range(degree + 1)], axis=-1)


def least_squares(key, x, y):
    """fit_fn: ordinary least squares on (1, x, x²) (via the pseudo-inverse); returns the predictor."""
    del key
    beta = jnp.linalg.pinv(features(x)) @ y
    return lambda x_new: features(x_new) @ beta


def test_fixed_design_least_squares_matches_the_closed_form():
    # Fixed design, fresh noise every round (resample="stacked"): the textbook decomposition.
    # Mean fit = projection of f on the features; Var f̂(x) = σ² φ(x)ᵀ (ΦᵀΦ)⁻¹ φ(x).
    phi = np.stack([X_DESIGN.astype(np.float64) ** k for k in range(3)], -1)
    phi_t = np.stack([X_TEST.astype(np.float64) ** k for k in range(3)], -1)
    gram_inv = np.linalg.inv(phi.T @ phi)
    mean_fit = phi_t @ gram_inv @ phi.T @ f_true(X_DESIGN.astype(np.float64))
    bias2 = np.mean((f_true(X_TEST.astype(np.float64)) - mean_fit) ** 2)
    variance = SIGMA2 * np.mean(np.einsum("ti,ij,tj->t", phi_t, gram_inv, phi_t))

    rounds = 3000
    rng = np.random.default_rng(0)
    x_sets = np.broadcast_to(X_DESIGN, (rounds, X_DESIGN.size)).astype(np.float32)
    y_sets = (f_true(x_sets) + math.sqrt(SIGMA2) * rng.normal(size=x_sets.shape)).astype(np.float32)
    y_test = f_true(X_TEST).astype(np.float32)
    out = bias_variance_decomposition(least_squares, jax.random.key(1), x_sets, y_sets, X_TEST, y_test,
                                      SIGMA2, rounds, resample="stacked")
    assert float(out.bias2) == pytest.approx(bias2, rel=0.02)
    assert float(out.variance) == pytest.approx(variance, rel=0.06)  # ~2.5 standard errors (√(2/R) ≈ 2.6%)
    assert float(out.noise) == SIGMA2
    np.testing.assert_allclose(out.main_prediction, mean_fit, atol=0.03)
    # The measured error on fresh noisy test labels matches bias² + variance + noise.
    assert float(out.expected_error) == pytest.approx(bias2 + variance + SIGMA2, rel=0.03)
    assert float(out.total) == pytest.approx(float(out.bias2 + out.variance) + SIGMA2, rel=1e-6)


@jax.default_matmul_precision("highest")  # GPUs default to TF32 matmuls, and the chunked and vmapped
# least-squares fits below then round differently (4e-4 on an H200); the identities are float32's.
def test_noiseless_error_equals_bias2_plus_variance_exactly():
    # Over the rounds, mean (f − f̂)² = (f − f̄)² + mean (f̂ − f̄)² is an algebraic identity.
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=30).astype(np.float32)
    y = (f_true(x) + 0.5 * rng.normal(size=30)).astype(np.float32)
    out = bias_variance_decomposition(least_squares, jax.random.key(2), x, y, X_TEST,
                                      f_true(X_TEST).astype(np.float32), 0.0, 64)
    assert float(out.expected_error) == pytest.approx(float(out.bias2 + out.variance), rel=1e-5)
    # All rounds are one vmapped program: fit_fn is traced once, not once per model.
    traces = []

    def counted(key, x, y):
        traces.append(1)
        return least_squares(key, x, y)

    bias_variance_decomposition(counted, jax.random.key(2), x, y, X_TEST, f_true(X_TEST).astype(np.float32),
                                0.0, 64)
    assert len(traces) == 1
    # Training in chunks with lax.map gives the same models as one vmap.
    chunked = bias_variance_decomposition(least_squares, jax.random.key(2), x, y, X_TEST,
                                          f_true(X_TEST).astype(np.float32), 0.0, 64, batch_size=16)
    np.testing.assert_allclose(chunked.main_prediction, out.main_prediction, rtol=1e-5, atol=1e-6)


def test_bootstrap_variance_of_the_mean():
    # The constant model ŷ = mean(y): the bootstrap variance of a sample mean is σ̂²/n (ddof 0).
    rng = np.random.default_rng(3)
    y = rng.normal(size=10).astype(np.float32)
    x = np.zeros(10, np.float32)

    def mean_model(key, x, y):
        del key, x
        return lambda x_new: jnp.broadcast_to(jnp.mean(y), x_new.shape)

    target = np.zeros(4, np.float32)
    out = bias_variance_decomposition(mean_model, jax.random.key(4), x, y, np.zeros(4, np.float32),
                                      target, 1.0, 4000)
    assert float(out.variance) == pytest.approx(np.var(y.astype(np.float64)) / 10, rel=0.1)
    assert float(out.bias2) == pytest.approx(float(np.mean(y)) ** 2, abs=0.01)


def test_zero_one_decomposition_against_a_direct_count():
    # Each "training set" carries the predictions of its model, so the predictions are known.
    rounds, n_test, k = 200, 30, 3
    rng = np.random.default_rng(5)
    y_star = rng.integers(0, k, size=n_test).astype(np.int32)
    p_right = rng.uniform(0.2, 0.9, size=n_test)
    right = rng.uniform(size=(rounds, n_test)) < p_right
    wrong = (y_star + rng.integers(1, k, size=(rounds, n_test))) % k
    preds = np.where(right, y_star, wrong).astype(np.int32)

    def replay(key, x, y):
        del key, x
        return lambda x_new: jax.nn.one_hot(y, k)

    x_dummy = np.zeros((rounds, n_test), np.float32)
    out = bias_variance_decomposition(replay, jax.random.key(6), x_dummy, preds, np.zeros(n_test),
                                      y_star, 0.0, rounds, loss="zero_one", resample="stacked")
    # Domingos (2000) by direct counting.
    counts = np.stack([np.bincount(preds[:, t], minlength=k) for t in range(n_test)])
    y_main = counts.argmax(1)
    bias = (y_main != y_star).astype(float)
    var = 1 - counts[np.arange(n_test), y_main] / rounds
    p_star = counts[np.arange(n_test), y_star] / rounds
    net = np.where(bias == 1, -p_star, var)
    np.testing.assert_array_equal(out.main_prediction, y_main)
    assert float(out.bias2) == pytest.approx(bias.mean(), abs=1e-6)
    assert float(out.variance) == pytest.approx(var.mean(), abs=1e-6)
    assert float(out.net_variance) == pytest.approx(net.mean(), abs=1e-6)
    # Noiseless: the decomposition is exact.
    assert float(out.expected_error) == pytest.approx(np.mean(preds != y_star[None]), abs=1e-6)
    assert float(out.total) == pytest.approx(np.mean(preds != y_star[None]), abs=1e-6)
    # With label noise N the measured error matches c1 N + B + c2 V (Monte Carlo over labels).
    noisy = bias_variance_decomposition(replay, jax.random.key(7), x_dummy, preds, np.zeros(n_test),
                                        y_star, 0.3, rounds, loss="zero_one", resample="stacked")
    c1 = p_star - (1 - p_star) / (k - 1)
    assert float(noisy.noise) == pytest.approx(np.mean(c1 * 0.3), abs=1e-6)
    assert float(noisy.expected_error) == pytest.approx(float(noisy.total), abs=0.02)


def test_bad_arguments_raise():
    x = np.zeros(5, np.float32)
    args = (least_squares, jax.random.key(0), x, x, x, x)
    with pytest.raises(ValueError, match=r"n_rounds must be an integer in \[2, 2147483647\]; got 1"):
        bias_variance_decomposition(*args, 0.1, 1)
    with pytest.raises(ValueError, match="noise_var must be a finite real number >= 0"):
        bias_variance_decomposition(*args, -0.1, 4)
    with pytest.raises(ValueError, match="loss must be one of"):
        bias_variance_decomposition(*args, 0.1, 4, loss="hinge")
    with pytest.raises(ValueError, match=r"y_train must be one target per example of x_train \(5\); got 4 targets"):
        bias_variance_decomposition(least_squares, jax.random.key(0), x, x[:4], x, x, 0.1, 4)
    with pytest.raises(ValueError, match=r"y_test_noiseless must be one target per example of x_test \(5\); got 3"):
        bias_variance_decomposition(least_squares, jax.random.key(0), x, x, x, x[:3], 0.1, 4)
    with pytest.raises(ValueError, match="leading axis of n_rounds=4"):
        bias_variance_decomposition(*args, 0.1, 4, resample="stacked")
    # Counts of every integer type keep their value (a NumPy int64 above 2**31 is not wrapped).
    with pytest.raises(ValueError, match=r"n_rounds must be an integer in \[2, 2147483647\]; got 4294967296"):
        bias_variance_decomposition(*args, 0.1, np.int64(2**32))
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1, 2147483647\]; got 0"):
        bias_variance_decomposition(*args, 0.1, 4, batch_size=np.int64(0))
    with pytest.raises(ValueError, match=r"fit_fn must be a predict\(x_test\) of the shape .*shape \(5, 1\)"):
        bias_variance_decomposition(lambda k, x, y: (lambda xt: xt[:, None]), jax.random.key(0),
                                    x, x, x, x, 0.1, 2)
