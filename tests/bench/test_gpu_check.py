"""The GPU check (bench.gpu_check) in its --quick mode, on the CPU, as a bare machine sees it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.make_gpu_data import write_idx, write_split
from mlwork.data.idx import load_split

ROOT = Path(__file__).resolve().parents[2]
#: What the accelerator machines lack (see bench.gpu_check): blocked for the check's processes.
BLOCKED = ("mlxtend", "tensorflow", "tensorflow_datasets", "tensorboardX", "PIL", "hypothesis", "torch",
           "xgboost", "lightgbm", "xdist")


# The path finder no longer finds these packages: to everything in the process they are not
# installed (``sys.modules[name] = None`` instead trips up libraries that peek into sys.modules;
# a finder that raises trips up ``importlib.util.find_spec`` probes).
BLOCKER = """import importlib.machinery

_find_spec = importlib.machinery.PathFinder.find_spec


def _find_spec_unless_blocked(cls, name, path=None, target=None):
    if name.split(".")[0] in {blocked!r}:
        return None
    return _find_spec(name, path, target)


# A classmethod, as the original: pytest keeps PathFinder.find_spec as a class attribute.
importlib.machinery.PathFinder.find_spec = classmethod(_find_spec_unless_blocked)
"""


def _learnable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images whose class is where a bright 7x7 square sits: learnable within an epoch."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        r, col = 7 * (int(c) // 4), 7 * (int(c) % 4)
        images[i, r:r + 7, col:col + 7] = 230
    return images, labels


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "gpu_data"
    for k, name in enumerate(("fashion_mnist", "mnist")):
        write_split(folder / name, "train", *_learnable(1000, k))
        write_split(folder / name, "test", *_learnable(300, 10 + k))
    return folder


def _check(tmp_path, *args, timeout=3100):
    """Run the check as on the bare machine: ``python -m bench.gpu_check`` with the packages it
    lacks blocked (by a sitecustomize, in every process it starts), JAX on the CPU."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=BLOCKED))
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "JAX_PLATFORMS": "cpu"}
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--out", str(out), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc, json.loads((out / "results.json").read_text()), (out / "results.md").read_text()


def test_write_idx_round_trips_through_the_loader(tmp_path):
    images, labels = _learnable(50, 0)
    write_split(tmp_path, "train", images, labels)
    got_images, got_labels = load_split(tmp_path, "train")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    first = (tmp_path / "train-images-idx3-ubyte.gz").read_bytes()
    write_split(tmp_path, "train", images, labels)
    assert (tmp_path / "train-images-idx3-ubyte.gz").read_bytes() == first  # no time stamp in the gzip header
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "x.gz", images.astype(np.float32))


def test_budget_and_deadline_are_recorded(tmp_path, data):
    # env gets 1 s (importing JAX takes longer): killed and recorded; tests would start after the
    # deadline: recorded as skipped. The report is written either way.
    proc, report, md = _check(tmp_path, "--data", str(data), "--only", "env,tests", "--budget", "env=1",
                              "--deadline", "7", timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert report["sections"]["env"]["status"] == "timeout"
    assert report["sections"]["tests"]["status"] == "skipped"
    assert "| env | timeout |" in md and "| tests | skipped |" in md


@pytest.mark.slow
def test_quick_check_runs_end_to_end_without_the_optional_packages(tmp_path, data):
    proc, report, md = _check(tmp_path, "--quick", "--data", str(data), "--deterministic-resume", "always",
                              "--tests", "tests/data/test_idx.py,tests/foundations/test_numbers.py")
    sections = report["sections"]
    assert {n: s["status"] for n, s in sections.items()} == {n: "ok" for n in sections}, proc.stdout[-3000:]
    assert list(sections) == ["env", "resume", "resume_deterministic", "epochs", "tta", "bf16", "population",
                              "tests", "trees"]
    r = {n: s["result"] for n, s in sections.items()}
    assert r["env"]["backend"] == "cpu" and r["env"]["device_count"] >= 1
    assert not any(r["env"]["importable"][m] for m in ("mlxtend", "hypothesis", "PIL"))
    # Resume is bit-exact on the CPU (the guarantee); the deterministic rerun carries the flag.
    for name in ("resume", "resume_deterministic"):
        assert all(m["identical"] and m["repeat_identical"] for m in r[name]["models"].values())
    assert "xla_gpu_deterministic_ops" in r["resume_deterministic"]["xla_flags"]
    for row in r["epochs"]["rows"]:
        assert row["compile_s"] > 0 and row["epoch_s"] > 0 and row["images_per_s"] > 0
    assert {row["model"] for row in r["epochs"]["rows"]} == {"mlp", "cnn"}
    assert r["tta"]["reached"] and 1 <= r["tta"]["epochs"] <= 2 and r["tta"]["train_s"] > 0
    assert r["tta"]["rows"][-1]["test_accuracy"] >= 0.5
    assert {row["compute_dtype"] for row in r["bf16"]["rows"]} == {"float32", "bfloat16"}
    assert abs(r["bf16"]["compare"]["mlp"]["accuracy_delta"]) < 0.2
    assert r["population"]["compare"]["members"] == 4 and r["population"]["compare"]["ratio"] > 0
    # hypothesis is blocked: its module is not collected, and the counts are pytest's own.
    assert r["tests"]["ignored"] == {"tests/foundations/test_numbers.py": "hypothesis"}
    assert r["tests"]["counts"]["passed"] > 0 and r["tests"]["finished"]
    assert {(x["dataset"], x["model"]) for x in r["trees"]["rows"]} == {
        ("synthetic", "rf"), ("synthetic", "gb"), ("mnist", "rf"), ("mnist", "gb")}
    assert all(0.0 <= x["accuracy"] <= 1.0 and x["fit_s"] > 0 for x in r["trees"]["rows"])
    for name in sections:
        assert f"| {name} | ok |" in md
