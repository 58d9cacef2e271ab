"""Reading the IDX files that MNIST and Fashion-MNIST ship in (LeCun et al., 1998).

An IDX file is a big-endian header — two zero bytes, a type code (``0x08`` = unsigned byte) and
the number of dimensions — then one 32-bit size per dimension, then the data. Images are
``0x00000803`` (N × 28 × 28), labels ``0x00000801`` (N). Files may be gzip-compressed.
Every check failure raises :class:`DataError` with a one-line message naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


class DataError(ValueError):
    """A data file or folder is missing, truncated or corrupt (one-line message)."""


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path} is not a valid gzip file ({e})") from None
    return raw


def read_idx(path: str | Path, expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into a NumPy array, validating header and size."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path} is truncated: {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if data[:2] == b"\x1f\x8b":  # gzip's own magic, in a file whose name does not end in .gz
        raise DataError(f"{path} looks gzip-compressed (it starts with gzip's bytes 1f 8b) but its name does "
                        f"not end in .gz; rename it to {path.name}.gz or decompress it (gunzip -k)")
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} has magic number 0x{magic:08x}; expected an unsigned-byte IDX file "
                        f"(0x{expected_magic or IMAGES_MAGIC:08x})")
    if expected_magic is not None and magic != expected_magic:
        raise DataError(f"{path} has magic number 0x{magic:08x}; expected 0x{expected_magic:08x}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{path} is truncated: header of {ndim} dimensions is incomplete")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != expected:
        raise DataError(f"{path} holds {len(data) - header} data bytes; its header {shape} says {expected}"
                        + (" (truncated)" if len(data) - header < expected else ""))
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_images(path: str | Path) -> np.ndarray:
    """Images as uint8 ``(N, rows, cols)``."""
    images = read_idx(path, IMAGES_MAGIC)
    if images.ndim != 3:
        raise DataError(f"{path} has shape {images.shape}; expected (N, rows, cols) images")
    return images


def read_labels(path: str | Path, n_classes: int = 10) -> np.ndarray:
    """Labels as uint8 ``(N,)``, each in ``[0, n_classes)``."""
    labels = read_idx(path, LABELS_MAGIC)
    if labels.ndim != 1:
        raise DataError(f"{path} has shape {labels.shape}; expected (N,) labels")
    if labels.size and int(labels.max()) >= n_classes:
        raise DataError(f"{path} has label {int(labels.max())}; expected labels in 0-{n_classes - 1}")
    return labels


SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find_split(folder: str | Path, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) files of ``split`` in ``folder``, ``.gz`` or raw, or None."""
    folder = Path(folder)
    found = []
    for stem in SPLIT_FILES[split]:
        for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
            if (folder / name).is_file():
                found.append(folder / name)
                break
    return (found[0], found[1]) if len(found) == 2 else None


def load_split(folder: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check one split of an IDX folder."""
    files = find_split(folder, split)
    if files is None:
        names = " and ".join(s + "[.gz]" for s in SPLIT_FILES[split])
        raise DataError(f"{folder} does not hold the {split} files {names}")
    images, labels = read_images(files[0]), read_labels(files[1])
    if len(images) != len(labels):
        raise DataError(f"{files[0]} has {len(images)} images but {files[1]} has {len(labels)} labels")
    return images, labels
