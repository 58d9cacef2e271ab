"""The reproducibility record in config.json: versions, devices, compiler settings, git commit."""

import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path

import jax
import numpy as np

from mlwork.train import reproducibility_record
from mlwork.train.hardware import compiler_options
from mlwork.train.provenance import git_commit
from tests.train import trained_runs as runs

ROOT = Path(__file__).resolve().parents[2]


def test_the_record_names_versions_devices_and_compiler_settings(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    record = reproducibility_record()
    json.dumps(record)  # serialisable as it is
    assert record["python"] == platform.python_version()
    for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy"):
        assert record["packages"][name] == importlib.metadata.version(name)
    assert record["backend"] == jax.default_backend() and record["device_count"] == len(jax.devices())
    assert record["device_kind"] == jax.devices()[0].device_kind
    assert record["xla_flags"] == "--xla_cpu_enable_fast_math=false"
    assert record["compiler_options"] == compiler_options(jax.default_backend())
    assert record["platform"]["machine"] == platform.machine()


def test_devices_come_from_a_mesh_or_a_list():
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    assert reproducibility_record(mesh)["device_count"] == 1
    assert reproducibility_record(jax.devices()[:1])["device_count"] == 1


def test_the_git_commit_inside_a_checkout_and_none_outside(tmp_path):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if head:  # the suite may run from an exported tree
        assert git_commit(ROOT)["commit"] == head
        assert reproducibility_record()["git"]["commit"] == head
    assert git_commit(tmp_path) is None


def test_a_runs_config_json_carries_the_record_and_its_data_description():
    config = json.loads((runs.single() / "config.json").read_text())
    assert config["reproducibility"]["packages"]["jax"] == jax.__version__
    assert config["input_shape"] == [28, 28] and config["num_classes"] == 10
    assert config["class_names"] == list("0123456789") and config["mean"] == 0.1307 and config["std"] == 0.3081
    pop = json.loads((runs.population() / "config.json").read_text())
    assert "reproducibility" in pop and len(pop["members"]) == 2 and pop["input_shape"] == [28, 28]
