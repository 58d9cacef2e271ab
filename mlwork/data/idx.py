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
    """A data file or folder is missing, truncated or corrupt; the message is one line naming the file.

    A subclass of :class:`ValueError`, so ``except ValueError`` catches it too. Every reader in
    :mod:`mlwork.data` raises it; the experiments' command lines map it to exit code 2
    (:data:`mlwork.train.EXIT_BAD_INPUT`).

    Example:
      >>> from mlwork.data import DataError, load_dataset
      >>> try:
      ...     load_dataset("cifar10")
      ... except DataError as e:
      ...     print(e)
      unknown dataset 'cifar10'; expected one of: mnist, fashion_mnist
    """


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
    r"""Read one IDX file (gzip-compressed ``.gz`` or raw) into a NumPy array, validating its header and size.

    The format (LeCun et al., 1998): two zero bytes, the type code ``0x08`` (unsigned byte), the
    number of dimensions :math:`d`, then :math:`d` big-endian 32-bit sizes, then
    :math:`\prod_i n_i` bytes of data, row-major.

    Args:
      path: the file; a name ending in ``.gz`` is decompressed first.
      expected_magic: the 32-bit magic number the file must have (``0x00000803`` for images,
        ``0x00000801`` for labels), or ``None`` for any unsigned-byte IDX file.

    Returns:
      A read-only uint8 array of the header's shape ``(n_1, ..., n_d)`` (a view of the file's bytes).

    Raises:
      DataError: the file cannot be read, is not valid gzip (``.gz``) or looks gzip-compressed
        without the ``.gz`` name, has another magic number or type code, or holds more or fewer data
        bytes than its header says (truncated).

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from mlwork.data import read_idx
      >>> tmp = tempfile.TemporaryDirectory()
      >>> path = Path(tmp.name) / "x-idx2-ubyte"
      >>> header = bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
      >>> _ = path.write_bytes(header + bytes(range(6)))
      >>> read_idx(path).tolist()
      [[0, 1, 2], [3, 4, 5]]
      >>> tmp.cleanup()
    """
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
    """Read an IDX image file (magic ``0x00000803``) as uint8 pixels.

    Args:
      path: the file (``.gz`` or raw), e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
      uint8 ``(N, rows, cols)``, pixel intensities in ``[0, 255]`` (MNIST: ``rows = cols = 28``).

    Raises:
      DataError: as :func:`read_idx`, or the file is not three-dimensional.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from mlwork.data import read_images
      >>> tmp = tempfile.TemporaryDirectory()
      >>> path = Path(tmp.name) / "images-idx3-ubyte"
      >>> sizes = b"".join(n.to_bytes(4, "big") for n in (1, 2, 2))
      >>> _ = path.write_bytes(bytes([0, 0, 0x08, 3]) + sizes + bytes([0, 255, 128, 7]))
      >>> images = read_images(path)
      >>> images.shape, images.dtype.name, images[0, 0].tolist()
      ((1, 2, 2), 'uint8', [0, 255])
      >>> tmp.cleanup()
    """
    images = read_idx(path, IMAGES_MAGIC)
    if images.ndim != 3:
        raise DataError(f"{path} has shape {images.shape}; expected (N, rows, cols) images")
    return images


def read_labels(path: str | Path, n_classes: int = 10) -> np.ndarray:
    """Read an IDX label file (magic ``0x00000801``) as uint8 class indices.

    Args:
      path: the file (``.gz`` or raw), e.g. ``train-labels-idx1-ubyte.gz``.
      n_classes: the number of classes; every label must lie in ``[0, n_classes)``.

    Returns:
      uint8 ``(N,)``, each in ``[0, n_classes)``.

    Raises:
      DataError: as :func:`read_idx`, the file is not one-dimensional, or a label is
        ``>= n_classes``.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from mlwork.data import DataError, read_labels
      >>> tmp = tempfile.TemporaryDirectory()
      >>> path = Path(tmp.name) / "labels-idx1-ubyte"
      >>> _ = path.write_bytes(bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big") + bytes([7, 0, 9]))
      >>> read_labels(path).tolist()
      [7, 0, 9]
      >>> try:
      ...     read_labels(path, n_classes=8)
      ... except DataError as e:
      ...     print(str(e).split(" has ")[1])
      label 9; expected labels in 0-7
      >>> tmp.cleanup()
    """
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
    """Read and cross-check one split of a folder of IDX files.

    The files are found under their MNIST names, ``.gz`` or raw (``train-images-idx3-ubyte[.gz]``
    and ``train-labels-idx1-ubyte[.gz]`` for ``"train"``, ``t10k-*`` for ``"test"``; the
    ``train-images.idx3-ubyte`` spelling is accepted too).

    Args:
      folder: the folder holding the files.
      split: ``"train"`` or ``"test"``.

    Returns:
      ``(images, labels)``: uint8 ``(N, rows, cols)`` and uint8 ``(N,)``, labels in ``[0, 10)``.

    Raises:
      DataError: the folder does not hold both files of ``split``, either file is invalid (see
        :func:`read_images`, :func:`read_labels`), or their counts :math:`N` differ.
      KeyError: ``split`` is neither ``"train"`` nor ``"test"``.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from mlwork.data import load_split
      >>> tmp = tempfile.TemporaryDirectory()
      >>> folder = Path(tmp.name)
      >>> sizes = b"".join(n.to_bytes(4, "big") for n in (2, 28, 28))
      >>> _ = (folder / "t10k-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + sizes + bytes(2 * 784))
      >>> _ = (folder / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 3, 1]))
      >>> images, labels = load_split(folder, "test")
      >>> images.shape, labels.tolist()
      ((2, 28, 28), [3, 1])
      >>> tmp.cleanup()
    """
    files = find_split(folder, split)
    if files is None:
        names = " and ".join(s + "[.gz]" for s in SPLIT_FILES[split])
        raise DataError(f"{folder} does not hold the {split} files {names}")
    images, labels = read_images(files[0]), read_labels(files[1])
    if len(images) != len(labels):
        raise DataError(f"{files[0]} has {len(images)} images but {files[1]} has {len(labels)} labels")
    return images, labels
