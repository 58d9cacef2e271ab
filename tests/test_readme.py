"""The README's code runs: every ```python block is executed in a fresh interpreter (offline, in a
temporary folder), and must exit cleanly. (The docs' guides are run the same way by
tests/test_docs.py.)"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, re.M | re.S)


def test_the_readme_has_examples_and_stays_short():
    assert len(BLOCKS) >= 3
    assert len(README.splitlines()) <= 200


def test_the_readme_names_no_folder_a_run_does_not_create():
    # Without --workdir a run goes to a timestamped folder: an example must not name runs/mnist-mlp.
    assert not re.search(r"runs/mnist-mlp(?!-<time>)", README)


def test_the_readme_links_only_to_files_that_exist():
    for target in re.findall(r"\]\(((?:docs/|CHANGELOG)[^)#]*)\)", README):
        assert (ROOT / target).exists(), target


@pytest.mark.slow  # each block imports JAX in a fresh interpreter; one trains twice (about a minute)
@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_code_runs(code, tmp_path):
    env = {**os.environ, "MLWORK_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MLWORK_DATA_DIR", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
