"""The project's own promises: the layout, the README quickstart, and CI running it verbatim."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_quickstart_is_two_commands_and_ci_runs_the_test_one():
    commands = _quickstart_commands()
    assert len(commands) == 2, commands
    assert commands[0] == "uv run python -m experiments.mnist"
    assert commands[1] == "uv run pytest"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in [line.strip() for line in ci]
    assert "uv sync --frozen" in (ROOT / ".ci" / "run").read_text()


def test_top_level_layout_and_dependencies():
    for name in ("pyproject.toml", "uv.lock", "README.md", "mlwork", "experiments", "tests", ".ci"):
        assert (ROOT / name).exists(), name
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "mlwork"
    deps = " ".join(meta["project"]["dependencies"])
    for dep in ("jax", "flax", "optax", "chex", "orbax-checkpoint", "tensorflow-datasets",
                "tensorflow-cpu", "numpy", "matplotlib", "tqdm", "mlxtend"):
        assert dep in deps, dep
    extras = meta["project"]["optional-dependencies"]
    assert {"cuda12", "cuda13", "tpu"} <= set(extras)
    dev = " ".join(meta["dependency-groups"]["dev"])
    for dep in ("pytest", "hypothesis", "scipy", "scikit-learn", "ruff"):
        assert dep in dev, dep


def test_importing_mlwork_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, mlwork, mlwork.nn, mlwork.optim, mlwork.foundations, mlwork.theory, mlwork.data, "
            "mlwork.train, mlwork.trees; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
