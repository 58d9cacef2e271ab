"""Data: any arrays (:mod:`~mlwork.data.arrays`), the MNIST family (IDX files, the source chain, downloads),
validation splits, on-device preprocessing."""

from mlwork.data.arrays import (
    INPUT_KINDS,
    NPZ_KEYS,
    TARGETS,
    ArrayDataset,
    as_arrays,
    from_arrays,
    input_kind,
    load_npz,
)
from mlwork.data.device import augment, normalize, preprocess
from mlwork.data.download import cache_dir
from mlwork.data.idx import DataError, load_split, read_idx, read_images, read_labels
from mlwork.data.sources import (
    DATASETS,
    MNIST_MEAN,
    MNIST_STD,
    SOURCES,
    Dataset,
    from_idx_dir,
    from_sample,
    from_tfds,
    load_dataset,
    split_validation,
    tensorflow_importable,
    tfds_status,
)

__all__ = [
    "INPUT_KINDS", "NPZ_KEYS", "TARGETS", "ArrayDataset", "as_arrays", "from_arrays", "input_kind", "load_npz",
    "DATASETS", "MNIST_MEAN", "MNIST_STD", "SOURCES", "DataError", "Dataset", "augment", "cache_dir",
    "from_idx_dir", "from_sample", "from_tfds", "load_dataset", "load_split", "normalize", "preprocess",
    "read_idx", "read_images", "read_labels", "split_validation", "tensorflow_importable", "tfds_status",
]
