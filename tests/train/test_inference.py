"""predict: class probabilities from a loaded run, normalisation included, any batch shape."""

import numpy as np
import pytest
import scipy.special
from hypothesis import given
from hypothesis import strategies as st

from mlwork.train import load_run, predict_run
from tests.train import trained_runs as runs


@pytest.fixture(scope="module")
def run():
    return load_run(runs.single())


def _oracle(run, images_u8):
    """The deck's MLP in NumPy (float64): a = relu(W a + b), softmax of the last layer."""
    mean, std = run.mean_std
    a = (images_u8.reshape(len(images_u8), -1).astype(np.float64) / 255.0 - mean) / std
    layers = run.variables["params"]
    for i, layer in enumerate(layers):
        a = a @ np.asarray(layer["W"], np.float64).T + np.asarray(layer["b"], np.float64)
        if i < len(layers) - 1:
            a = np.maximum(a, 0.0)
    return scipy.special.softmax(a, axis=-1)


def test_probabilities_match_an_independent_numpy_forward_pass(run):
    images = runs.dataset().test_images[:50]
    probs = predict_run(run, images)
    assert probs.shape == (50, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, _oracle(run, images), atol=2e-6)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)


def test_uint8_levels_and_float_intensities_agree(run):
    images = runs.dataset().test_images[:20]
    np.testing.assert_allclose(predict_run(run, images), predict_run(run, images.astype(np.float32) / np.float32(255)),
                               atol=1e-6)
    np.testing.assert_array_equal(predict_run(run, images), predict_run(run, images.astype(np.int64)))


@given(batch=st.lists(st.integers(0, 3), min_size=0, max_size=2), channel=st.booleans())
def test_any_batch_shape_gives_the_same_probabilities_per_image(run, batch, channel):
    images = runs.dataset().test_images
    n = int(np.prod(batch)) if batch else 1
    x = images[:n].reshape(*batch, 28, 28)
    if channel:
        x = x[..., None]
    probs = predict_run(run, x)
    assert probs.shape == (*batch, 10)
    np.testing.assert_allclose(probs.reshape(n, 10), predict_run(run, images[:n]).reshape(n, 10), atol=1e-6)


def test_a_single_image_gives_one_probability_vector(run):
    image = runs.dataset().test_images[3]
    probs = predict_run(run, image)
    assert probs.shape == (10,)
    np.testing.assert_allclose(probs, predict_run(run, image[None])[0], atol=1e-7)


def test_batches_beyond_a_chunk_match(run, monkeypatch):
    from mlwork.train import inference

    images = runs.dataset().test_images[:23]
    whole = predict_run(run, images)
    monkeypatch.setattr(inference, "CHUNK", 5)  # 5 chunks, the last one padded
    np.testing.assert_allclose(predict_run(run, images), whole, atol=1e-6)


@pytest.mark.parametrize("images, message", [
    (np.full((2, 28, 28), 255.0, np.float32), r"float images must be intensities in \[0, 1\]"),
    (np.full((2, 28, 28), np.nan, np.float32), "NaN"),
    (np.full((2, 28, 28), 256, np.int32), r"integer pixel levels must be in \[0, 255\]"),
    (np.full((2, 28, 28), -1, np.int32), r"integer pixel levels must be in \[0, 255\]"),
    (np.zeros((2, 28, 28), bool), "dtype bool"),
    (np.zeros((2, 27, 28), np.uint8), r"shape \(2, 27, 28\); expected \(\.\.\., 28, 28\)"),
    (np.zeros((784,), np.uint8), r"shape \(784,\)"),
])
def test_bad_images_raise_one_line_value_errors(run, images, message):
    with pytest.raises(ValueError, match=message):
        predict_run(run, images)


def test_population_predicts_the_mean_softmax_and_each_member_on_request():
    pop = load_run(runs.population())
    images = runs.dataset().test_images[:30]
    members = predict_run(pop, images, per_member=True)
    assert members.shape == (2, 30, 10)
    np.testing.assert_allclose(predict_run(pop, images), members.mean(0), atol=1e-7)
    for k in range(2):
        np.testing.assert_allclose(members[k], predict_run(pop.member(k), images), atol=1e-6)
    assert predict_run(pop, images[0]).shape == (10,) and predict_run(pop, images[0], per_member=True).shape == (2, 10)
    with pytest.raises(ValueError, match="per_member needs a population"):
        predict_run(pop.member(0), images, per_member=True)


def test_the_old_name_predict_warns_and_is_predict_run():
    import mlwork.train as train

    with pytest.warns(DeprecationWarning, match=r"mlwork.train.predict is deprecated.*use mlwork.train.predict_run"):
        old = train.predict
    assert old is train.predict_run and "predict" not in train.__all__
