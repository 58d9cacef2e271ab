"""The streamed input path: training examples read from memory-mapped ``.npy`` files by a Grain pipeline.

A training split that does not fit the device stays on disk: :func:`write_npy_cache` writes it
once as ``x_train.npy`` / ``y_train.npy`` (a folder named by the arrays' SHA-256, so a second run
reuses it), :class:`NpySource` memory-maps them, and :func:`epoch_chunks` builds one epoch's
seeded, deterministic Grain pipeline: a ``grain.MapDataset`` over the epoch's chunks of ``L``
steps, each element the rows of ``L`` batches read from the memory map and stacked on the host
(``(L, B, *input_shape)``), prefetched by worker threads (``grain.ReadOptions``) so reading
overlaps the device's compute.

The order is the in-memory path's: batch ``i`` of epoch ``e`` holds the rows
``epoch_order(key, e, n, B)[i]`` (:func:`mlwork.train.step.epoch_order`, a permutation drawn from
the run's key folded with the epoch), so a streamed run visits exactly the batches an in-memory
run does, and preprocessing (normalisation, augmentation) happens on the device in the same
compiled step. The pipeline's position is Grain's iterator state (``get_state``/``set_state``),
saved in the run's Orbax checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np


def stream_cache_dir() -> Path:
    """Where :func:`write_npy_cache` puts its folders: ``<cache>/mlwork/stream``, ``<cache>``
    being ``$MLWORK_CACHE_DIR`` or ``$XDG_CACHE_HOME`` when set, else ``~/.cache``."""
    base = os.environ.get("MLWORK_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlwork" / "stream"


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]


def write_npy_cache(x: np.ndarray, y: np.ndarray, folder: str | Path | None = None) -> Path:
    """Write a training split as ``x_train.npy`` and ``y_train.npy`` for :class:`NpySource`, once.

    Each file is written under a temporary name and renamed when complete, so a killed write
    leaves no half file; an existing folder with both files is reused as it is.

    Args:
      x: the inputs ``(n, *input_shape)``, as stored (uint8 images, float features, tokens).
      y: the targets ``(n, ...)``.
      folder: where; ``None``: ``stream_cache_dir() / <16 hex digits of the arrays' SHA-256>``.

    Returns:
      The folder.

    Raises:
      ValueError: ``x`` and ``y`` hold different numbers of examples.

    Example:
      >>> import tempfile
      >>> import numpy as np
      >>> from mlwork.data.stream import NpySource, write_npy_cache
      >>> tmp = tempfile.TemporaryDirectory()
      >>> folder = write_npy_cache(np.arange(12, dtype=np.uint8).reshape(3, 2, 2), np.array([0, 1, 0]), tmp.name)
      >>> source = NpySource(folder)
      >>> len(source), source.x.shape, source.x[2, 1].tolist()
      (3, (3, 2, 2), [10, 11])
      >>> tmp.cleanup()
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x and y must hold the same number of examples; got {len(x)} and {len(y)}")
    folder = Path(folder) if folder is not None else stream_cache_dir() / _digest(x, y)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in (("x_train.npy", x), ("y_train.npy", y)):
        path = folder / name
        if path.exists():
            continue
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array))
        tmp.replace(path)
    return folder


class NpySource:
    """A training split memory-mapped from a folder's ``x_train.npy`` and ``y_train.npy``.

    Args:
      folder: the folder (e.g. from :func:`write_npy_cache`).

    Attributes:
      folder: the folder.
      x: the inputs, a read-only memory map ``(n, *input_shape)``.
      y: the targets, a read-only memory map ``(n, ...)``.

    Raises:
      ValueError: a file is missing, or the two hold different numbers of examples.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        try:
            self.x = np.load(self.folder / "x_train.npy", mmap_mode="r")
            self.y = np.load(self.folder / "y_train.npy", mmap_mode="r")
        except (OSError, ValueError) as e:
            raise ValueError(f"folder must hold x_train.npy and y_train.npy readable by numpy; {e}") from None
        if len(self.x) != len(self.y):
            raise ValueError(f"x_train.npy and y_train.npy must hold the same number of examples; got "
                             f"{len(self.x)} and {len(self.y)} in {self.folder}")

    def __len__(self) -> int:
        return len(self.y)

    def rows(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The examples at ``index`` (any integer shape ``S``): ``(S + input_shape, S + target_shape)``."""
        index = np.asarray(index)
        flat = index.reshape(-1)
        return (self.x[flat].reshape(*index.shape, *self.x.shape[1:]),
                self.y[flat].reshape(*index.shape, *self.y.shape[1:]))


def chunk_starts(steps_per_epoch: int, chunk_steps: int) -> list[int]:
    """The first step of each of an epoch's chunks: ``0, L, 2L, ...`` below ``steps_per_epoch``."""
    return list(range(0, steps_per_epoch, chunk_steps))


def epoch_chunks(source: NpySource, order: np.ndarray, chunk_steps: int, *, threads: int = 2,
                 prefetch: int = 2, state: dict[str, Any] | None = None) -> Any:
    """One epoch's Grain pipeline: its chunks of ``chunk_steps`` batches, read, stacked, prefetched.

    Element ``c`` is the chunk starting at step ``c · L``: ``(xs, ys)`` with ``xs`` of shape
    ``(..., l, B, *input_shape)`` — ``order[..., cL : cL + l, :]``'s rows, ``l = L`` except for
    the epoch's shorter last chunk. A leading member axis of ``order`` (a population, each
    member its own order) comes first.

    Args:
      source: the memory-mapped split.
      order: the epoch's example indices, ``(S, B)`` or ``(M, S, B)`` (:func:`mlwork.train.step.epoch_order`).
      chunk_steps: ``L``, steps per chunk, >= 1.
      threads: Grain's reading threads.
      prefetch: chunks read ahead.
      state: a Grain iterator state saved from this epoch's iterator (``get_state()``) to continue
        from; ``None``: the epoch's start.

    Returns:
      A Grain ``DatasetIterator``: ``next()`` gives the chunks in order, ``get_state()`` its position.

    Raises:
      ValueError: ``chunk_steps < 1``.

    Example:
      >>> import tempfile
      >>> import numpy as np
      >>> from mlwork.data.stream import NpySource, epoch_chunks, write_npy_cache
      >>> tmp = tempfile.TemporaryDirectory()
      >>> source = NpySource(write_npy_cache(np.arange(10, dtype=np.uint8)[:, None], np.arange(10), tmp.name))
      >>> order = np.array([[3, 1], [0, 9], [4, 2]])           # 3 steps of 2 examples
      >>> it = epoch_chunks(source, order, chunk_steps=2)
      >>> [ys.tolist() for _, ys in it]                        # a chunk of 2 steps, then the last step
      [[[3, 1], [0, 9]], [[4, 2]]]
      >>> again = epoch_chunks(source, order, 2, state={"next_index": 1})
      >>> next(again)[1].tolist()
      [[4, 2]]
      >>> tmp.cleanup()
    """
    import grain

    if chunk_steps < 1:
        raise ValueError(f"chunk_steps must be >= 1, got {chunk_steps}")
    order = np.asarray(order)
    starts = chunk_starts(order.shape[-2], chunk_steps)

    def read(c: int) -> tuple[np.ndarray, np.ndarray]:
        return source.rows(order[..., starts[c]:starts[c] + chunk_steps, :])

    dataset = grain.MapDataset.range(len(starts)).map(read)
    it = iter(dataset.to_iter_dataset(grain.ReadOptions(num_threads=max(1, threads), prefetch_buffer_size=prefetch)))
    if state is not None:
        it.set_state(state)
    return it
