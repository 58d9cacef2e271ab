"""The README's "Using a trained run" section runs as written (on a tiny trained run)."""

import re
import shutil
from pathlib import Path

from tests.train import trained_runs as runs

ROOT = Path(__file__).resolve().parents[2]


def _section_code(lang: str) -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Using a trained run", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def test_the_readme_python_runs_on_a_trained_run(tmp_path, monkeypatch, capsys):
    (code,) = _section_code("python")
    shutil.copytree(runs.single(), tmp_path / "runs" / "mnist-mlp")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md#using-a-trained-run", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("test-sample 18 0.")
    assert (tmp_path / "mnist-mlp-export" / "load_exported.py").exists()


def test_the_readme_commands_name_real_flags():
    from experiments import predict

    (commands,) = _section_code("bash")
    for line in commands.strip().splitlines():
        argv = line.split("experiments.predict", 1)[1].split()
        args = predict.parse_args(argv)
        assert args.workdir == "runs/mnist-mlp" and args.inputs
