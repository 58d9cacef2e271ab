"""Loading an experiment's data set: memoised per process, with the source's notice and a
one-line error. (A candidate for ``experiments/_common.py``.)"""

from __future__ import annotations

import functools
import os
import sys


@functools.lru_cache(maxsize=4)
def _dataset(name: str, data_dir: str | None, env_dir: str | None, offline: str | None):
    from mlwork.data import load_dataset

    return load_dataset(name, data_dir)


def load_or_report(name: str, data_dir: str | None):
    """:func:`mlwork.data.load_dataset` ``(name, data_dir)``, memoised per process (keyed by the
    environment variables it reads too, so repeated runs — one per planted fault, say — parse
    the data once). Prints the source's notice to stderr; on a :class:`~mlwork.data.DataError`
    prints ``error: ...`` and returns ``None`` (the caller exits with code 2)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow, should TFDS load it
    from mlwork.data import DataError

    try:
        dataset = _dataset(name, data_dir, os.environ.get("MLWORK_DATA_DIR"), os.environ.get("MLWORK_OFFLINE"))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return None
    if dataset.notice:
        print(dataset.notice, file=sys.stderr, flush=True)
    return dataset
