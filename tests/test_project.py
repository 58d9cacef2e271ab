"""The project's own promises: the layout, the README quickstart, and CI running it verbatim."""

import re
import tomllib
from pathlib import Path

from packaging.markers import Marker

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
    # What the code imports at run time is declared (scikit-learn: experiments.trees, mlwork.trees).
    for dep in ("jax", "flax", "optax", "chex", "orbax-checkpoint", "tensorflow-datasets", "pooch", "numpy",
                "flatbuffers", "scipy", "scikit-learn", "matplotlib", "tqdm", "tensorboardX", "pillow", "mlxtend"):
        assert dep in deps, dep
    # TensorFlow (~1.2 GiB) is the `tfds` extra, never a default dependency.
    assert "tensorflow-cpu" not in deps and "tensorflow>" not in deps
    extras = meta["project"]["optional-dependencies"]
    assert {"tfds", "cuda12", "cuda13", "tpu"} <= set(extras)
    assert any(d.startswith("tensorflow-cpu") for d in extras["tfds"])
    dev = " ".join(meta["dependency-groups"]["dev"])
    for dep in ("pytest", "hypothesis", "ruff"):
        assert dep in dev, dep


def test_lock_admits_jax_0_10_on_python_3_11_and_the_current_jax_on_3_12():
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    jax = {p["version"]: p.get("resolution-markers", []) for p in lock["package"] if p["name"] == "jax"}
    assert len(jax) == 2, jax  # one fork per Python line
    old, new = sorted(jax, key=lambda v: tuple(int(x) for x in v.split(".")))

    def admits(version: str, python: str) -> bool:  # does a marker of this jax hold on that Python?
        env = {"python_full_version": python, "python_version": python.rsplit(".", 1)[0], "sys_platform": "linux"}
        return any(Marker(m).evaluate(env) for m in jax[version])

    assert old.startswith("0.10.") and admits(old, "3.11.0") and admits(old, "3.11.9")
    assert not admits(old, "3.12.0")
    assert int(new.split(".")[1]) >= 12 and admits(new, "3.12.0") and not admits(new, "3.11.9")


def test_importing_mlwork_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, mlwork, mlwork.nn, mlwork.optim, mlwork.foundations, mlwork.theory, mlwork.data, "
            "mlwork.train, mlwork.trees; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_package_metadata_version_license_and_typing_marker():
    import mlwork

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert mlwork.__version__ == meta["version"]
    assert meta["license"] == "Apache-2.0"
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert (ROOT / "mlwork" / "py.typed").is_file()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"\n## {mlwork.__version__}\n" in changelog, "CHANGELOG.md has no section for this version"
