"""Data parallelism on 4 simulated CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=4),
in a subprocess because the device count is fixed when JAX starts."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mlwork.train import parallel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def four_devices():
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"
    env = {**os.environ, "XLA_FLAGS": flags, "PYTHONPATH": str(ROOT), "MLWORK_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("_parallel_script.py"))], env=env,
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_four_devices_match_one_to_float32_tolerance(four_devices):
    r = four_devices
    assert r["n_devices"] == 4
    # Same global batch and seed: only the order of the gradient sums differs.
    assert r["max_abs_diff"] < 1e-4 * max(1.0, r["max_abs_param"])
    np.testing.assert_allclose(r["history_4"], r["history_1"], rtol=1e-3, atol=2e-3)
    assert "spec=P()" in r["params_sharding"]  # parameters replicated on every device


@pytest.mark.slow
def test_checkpoint_from_four_devices_restores_on_one(four_devices):
    r = four_devices
    assert r["resumed_epochs"] == 2 and r["resumed_device_count"] == 1
    assert r["resumed_max_abs_diff"] < 1e-4 * max(1.0, r["max_abs_param"])


@pytest.mark.slow
def test_sigusr1_on_four_devices_saves_exits_75_and_resumes_exactly(four_devices):
    assert four_devices["usr1"] == ["SIGUSR1", 75, 6]
    assert four_devices["usr1_exact"]


@pytest.mark.slow
def test_indivisible_batch_is_a_clear_error_before_compiling(four_devices):
    assert "batch_size 62 is not divisible by the 4 devices" in four_devices["indivisible_error"]


def test_mesh_arguments():
    mesh = parallel.make_mesh()
    assert mesh.axis_names == ("data",) and mesh.size >= 1
    with pytest.raises(ValueError, match="devices must be an integer in \\[1, "):
        parallel.make_mesh(10_000)
    parallel.check_batch(64, mesh)
    with pytest.raises(ValueError, match="batch_size 62 is not divisible by the 4 devices"):
        parallel.check_batch(62, SimpleNamespace(shape={parallel.DATA_AXIS: 4}))  # 4 devices in a subprocess: slow tier
    assert parallel.maybe_initialize_distributed() is False  # no cluster environment here
