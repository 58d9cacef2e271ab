"""bench.mnist_epoch_ab: both trainers in one process, epochs alternating; bad input is one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import mnist_epoch_ab

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv, says", [(["--epochs", "0"], "--epochs must be at least 1, got 0"),
                                        (["--base", "no-such-commit-xyz"], "--base: 'no-such-commit-xyz' is not a "
                                                                          "commit of this repository")])
def test_bad_arguments_are_one_line(argv, says, capsys):
    with pytest.raises(SystemExit) as raised:
        mnist_epoch_ab.main(argv)
    assert says in str(raised.value.code) + capsys.readouterr().err


@pytest.mark.slow
def test_a_commit_against_itself_runs_both_sides_and_records_nothing(tmp_path):
    before = (ROOT / "bench" / "results.jsonl").read_bytes()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLWORK_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench.mnist_epoch_ab", "--base", "HEAD", "--models", "mlp",
                           "--batches", "512", "--epochs", "2", "--no-record"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("mlp batch 512:"))
    ratio = float(line.split("new/base ")[1].split()[0])
    assert 0.2 < ratio < 5.0  # the same code on both sides: a ratio near 1, loosely (a loaded machine)
    assert (ROOT / "bench" / "results.jsonl").read_bytes() == before
    worktrees = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    assert "bench_ab_" not in worktrees.stdout  # the base's worktree is removed
