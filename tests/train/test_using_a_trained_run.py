"""The docs' "Using a trained run" guide runs as written (on a tiny trained run).

The slow tier runs every guide from scratch (tests/test_docs.py, training its own run first);
this runs the same code in the fast tier on the session's tiny trained run."""

import re
import shutil
from pathlib import Path

from tests.train import trained_runs as runs

ROOT = Path(__file__).resolve().parents[2]


GUIDE = ROOT / "docs" / "guides" / "trained_runs.md"


def _section_code(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", GUIDE.read_text(), re.S | re.M)


def test_the_readme_python_runs_on_a_trained_run(tmp_path, monkeypatch, capsys):
    (code,) = _section_code("python")
    shutil.copytree(runs.single(), tmp_path / "runs" / "demo")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/guides/trained_runs.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("test-sample 18 0.")
    assert (tmp_path / "demo-export" / "load_exported.py").exists()


def test_the_readme_commands_name_real_flags():
    from experiments import predict

    lines = [line for block in _section_code("bash") for line in block.splitlines() if "experiments.predict" in line]
    assert lines
    for line in lines:
        argv = line.split("experiments.predict", 1)[1].split()
        args = predict.parse_args(argv)
        assert args.workdir.startswith("runs/") and args.inputs, line
