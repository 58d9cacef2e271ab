"""Loading an experiment's data set: the shared ``--data-dir``/``--source`` flags, memoised loading
per process, the source's notice, and a one-line error. (A candidate for ``experiments/_common.py``.)"""

from __future__ import annotations

import argparse
import functools
import os
import sys

SOURCE_HELP = ("data source (auto: --data-dir/$MLWORK_DATA_DIR, the download cache, TFDS when TensorFlow is "
               "installed, a download, the system package, the embedded MNIST sample; any other forces that one) "
               "(default: %(default)s)")
# The environment variables the source chain reads: a change in any of them is a different load.
_ENV = ("MLWORK_DATA_DIR", "MLWORK_OFFLINE", "MLWORK_DATA_MIRRORS", "MLWORK_CACHE_DIR", "XDG_CACHE_HOME",
        "TFDS_DATA_DIR")


def add_source_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--source {auto,idx,cache,tfds,download,system,sample}`` (default ``auto``) to a parser
    or argument group; pass ``args.source`` on to :func:`load_or_report`. Imports no JAX: the
    choices are :data:`mlwork.train.config.SOURCES`, kept equal to :data:`mlwork.data.sources.SOURCES`
    by a test."""
    from mlwork.train.config import SOURCES

    parser.add_argument("--source", choices=SOURCES, default="auto", help=SOURCE_HELP)


@functools.lru_cache(maxsize=4)
def _dataset(name: str, data_dir: str | None, source: str, env: tuple[str | None, ...]):
    from mlwork.data import load_dataset

    return load_dataset(name, data_dir, source=source)


def load_or_report(name: str, data_dir: str | None, source: str = "auto"):
    """:func:`mlwork.data.load_dataset` ``(name, data_dir, source=source)``, memoised per process
    (keyed by the environment variables it reads too, so repeated runs — one per planted fault,
    say — parse the data once). load_dataset prints the source's notice to stderr; on a
    :class:`~mlwork.data.DataError` (a forced source unavailable, no source left, a bad file)
    prints ``error: ...`` and returns ``None`` (the caller exits with code 2)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow, should TFDS load it
    from mlwork.data import DataError

    try:
        dataset = _dataset(name, data_dir, source, tuple(os.environ.get(k) for k in _ENV))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return None
    return dataset
