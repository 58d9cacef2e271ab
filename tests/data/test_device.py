import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlwork import data


def test_normalize_is_the_deck_formula():
    x = jnp.array([[0, 255], [128, 33]], jnp.uint8)
    got = data.normalize(x, 0.1307, 0.3081)
    np.testing.assert_allclose(got, (np.asarray(x) / 255.0 - 0.1307) / 0.3081, rtol=1e-5)
    assert got.dtype == jnp.float32


def _blob():
    img = np.zeros((28, 28), np.float32)
    img[10:18, 12:16] = 255.0
    return jnp.asarray(img)


def _center(img):
    img = np.asarray(img, np.float64)
    r, c = np.indices(img.shape)
    return np.array([(r * img).sum(), (c * img).sum()]) / img.sum()


def test_augment_without_shift_or_rotation_is_the_identity():
    x = jnp.stack([_blob(), _blob()[::-1]])
    out = data.augment(jax.random.key(0), x, max_shift=0.0, max_rotation_deg=0.0)
    np.testing.assert_allclose(out, x, atol=1e-4)


def test_augment_shifts_by_at_most_two_pixels_and_rotates():
    x = jnp.stack([_blob()] * 32)
    out = data.augment(jax.random.key(1), x, max_shift=2.0, max_rotation_deg=0.0)
    moves = np.array([_center(o) - _center(x[0]) for o in out])
    assert np.all(np.abs(moves) <= 2.0 + 1e-3)
    assert np.abs(moves).max() > 1.0                     # the shifts are actually used
    np.testing.assert_allclose(np.asarray(out).sum((1, 2)), float(x[0].sum()), rtol=1e-3)  # no clipping here
    rot = data.augment(jax.random.key(2), x[:8], max_shift=0.0, max_rotation_deg=10.0)
    assert not np.allclose(rot, x[:8], atol=1.0)
    for o in rot:  # rotation about the centre keeps the blob's centre (it is at the image centre)
        np.testing.assert_allclose(_center(o), _center(x[0]), atol=0.3)


def test_preprocess_needs_a_key_to_augment():
    with pytest.raises(ValueError, match="key"):
        data.preprocess(jnp.zeros((2, 28, 28), jnp.uint8), 0.0, 1.0, augment_data=True)
