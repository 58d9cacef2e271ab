"""Two non-MNIST problems, both offline (scikit-learn's bundled data): diabetes as a regression
(10 float features, one float target) and the 8x8 digits as uint8 images of another shape."""

from __future__ import annotations

import numpy as np

from mlwork.data import from_arrays


def diabetes(n_test: int = 88):
    """Diabetes: 442 patients, 10 standardised features, disease progression (25-346); the last
    ``n_test`` (after a seeded shuffle) are the test split."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order].astype(np.float32)
    return from_arrays(x[:-n_test], y[:-n_test], x_test=x[-n_test:], y_test=y[-n_test:], name="diabetes")


def digits_images(n: int | None = None):
    """The 8x8 digits (levels 0-16) as uint8 images (0-255), 10 classes; the last 297 test."""
    from sklearn.datasets import load_digits

    ds = load_digits()
    images = np.round(ds.images * (255.0 / 16.0)).astype(np.uint8)
    labels = ds.target.astype(np.int64)
    if n is not None:
        images, labels = np.concatenate([images[:n], images[-297:]]), np.concatenate([labels[:n], labels[-297:]])
    return from_arrays(images[:-297], labels[:-297], x_test=images[-297:], y_test=labels[-297:], name="digits")


def save_npz(path, data) -> None:
    """``data`` (an ArrayDataset) as the .npz file the command line reads."""
    arrays = {"x_train": data.x_train, "y_train": data.y_train}
    if data.x_test is not None:
        arrays.update(x_test=data.x_test, y_test=data.y_test)
    if data.x_val is not None:
        arrays.update(x_val=data.x_val, y_val=data.y_val)
    np.savez(path, **arrays)


def tokens(n: int = 600, length: int = 12, vocab: int = 20, n_test: int = 150):
    """Integer token sequences ``(N, length)`` int32 over ``vocab`` ids; the label says whether at
    least 3 of the tokens are "rare" (ids below 5) — a rule a bag of embeddings can learn. The last
    ``n_test`` are the test split."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab, size=(n, length)).astype(np.int32)
    y = (np.sum(x < 5, axis=1) >= 3).astype(np.int64)
    return from_arrays(x[:-n_test], y[:-n_test], x_test=x[-n_test:], y_test=y[-n_test:], name="tokens")


def bag_of_embeddings(input_shape, output_size, vocab: int = 20, dim: int = 8):
    """A user's model by import string (``tests.train.problems:bag_of_embeddings``): the mean of
    the tokens' embeddings (Flax ``Embed``), then a dense layer."""
    import flax.linen as fnn
    import jax.numpy as jnp

    class BagOfEmbeddings(fnn.Module):
        @fnn.compact
        def __call__(self, x, train: bool = False):
            return fnn.Dense(output_size)(jnp.mean(fnn.Embed(vocab, dim)(x), axis=1))

    del input_shape  # any sequence length
    return BagOfEmbeddings()
