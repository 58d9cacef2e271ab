"""The README's code runs: every ```python block right after a ``<!-- readme-test -->`` line is
executed in a fresh interpreter (offline, in a temporary folder), and must exit cleanly."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"<!-- readme-test -->\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_marks_code_to_run():
    assert len(BLOCKS) >= 1


@pytest.mark.slow  # the walk-through trains seven times (about a minute on 2 cores)
@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_code_runs(code, tmp_path):
    env = {**os.environ, "MLWORK_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MLWORK_DATA_DIR", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
