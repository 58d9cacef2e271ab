"""Tiny finished runs for the tests of what comes after training (load, predict, export,
TensorBoard): trained once per test process, in a temporary folder removed at exit. Tests that
damage a run copy it first (:func:`copy_run`)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import flax.linen as fnn

from mlwork import nn
from mlwork.data import Dataset, from_sample
from mlwork.train import TrainConfig, train_and_evaluate

CONFIG = TrainConfig(epochs=2, batch_size=64, devices=1, seed=3)


@functools.cache
def _base() -> Path:
    base = Path(tempfile.mkdtemp(prefix="mlwork-trained-runs-"))
    atexit.register(shutil.rmtree, base, True)
    return base


@functools.cache
def dataset() -> Dataset:
    """700 real MNIST training images (the embedded sample) and 200 test images."""
    full = from_sample()
    return Dataset("mnist", full.train_images[:700], full.train_labels[:700], full.test_images[:200],
                   full.test_labels[:200], source="test-sample")


class TinyBatchNorm(fnn.Module):
    """Dense -> BatchNorm -> ReLU -> Dense: a model with state (running statistics)."""

    @fnn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape((x.shape[0], -1))
        x = fnn.Dense(32)(x)
        x = fnn.BatchNorm(use_running_average=not train)(x)
        return fnn.Dense(10)(fnn.relu(x))


def batchnorm_model() -> nn.Model:
    return nn.from_flax(TinyBatchNorm())


QUIET = {"progress": False, "log": lambda message: None}


@functools.cache
def single() -> Path:
    """The MLP, 2 epochs (checkpoints at steps 9 and 18)."""
    workdir = _base() / "single"
    train_and_evaluate(CONFIG, workdir, dataset(), plots=False, **QUIET)
    return workdir


@functools.cache
def batchnorm() -> Path:
    """A model with BatchNorm state (a ``model=`` the config cannot name)."""
    workdir = _base() / "batchnorm"
    train_and_evaluate(CONFIG, workdir, dataset(), model=batchnorm_model(), plots=False, **QUIET)
    return workdir


@functools.cache
def population() -> Path:
    """Two MLP members (seeds 3 and 4), 2 epochs."""
    workdir = _base() / "population"
    train_and_evaluate(CONFIG.replace(population=2, devices=None), workdir, dataset(), plots=False, **QUIET)
    return workdir


def copy_run(workdir: Path, to: Path) -> Path:
    shutil.copytree(workdir, to)
    return to


def biggest_file(folder: Path) -> Path:
    return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def tamper(path: Path) -> None:
    """Flip bytes in the middle of ``path`` (same size: only the checksum can tell)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(255 - b for b in data[mid:mid + 64])
    path.write_bytes(bytes(data))

