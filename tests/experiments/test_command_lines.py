"""Every experiment's command line, held to experiments.mnist's standard (issue 27 item 8): ``--help``
answers without importing JAX or matplotlib, under one program name style, in plain text (no reST),
every option with help text and every value option with its default, and an epilog of exit codes
that the docs' one exit-code table agrees with."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ("backprop", "checklist", "forward_pass", "foundations", "landscape", "mnist", "optimizers",
               "predict", "theory", "train", "trees")
ENV = {**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT)}


def _help(name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"experiments.{name}", "--help"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)


def _options(help_text: str) -> dict[str, str]:
    """``--help``'s argument entries (between the first argument section and the epilog) -> their help text."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("options:", "positional arguments:"))
    end = lines.index("exit codes:")
    entries: dict[str, str] = {}
    current = None
    for line in lines[start:end]:
        if not line.strip() or not line.startswith(" "):  # a blank line or a section title
            current = None
        elif re.match(r"  \S", line):  # an entry: its invocation, then (after 2+ spaces) its help
            current, _, text = line.strip().partition("  ")
            entries[current] = text.strip()
        elif current is not None:  # a continuation of the entry's help
            entries[current] = f"{entries[current]} {line.strip()}".strip()
    return entries


def _exit_codes(help_text: str) -> dict[int, str]:
    lines = help_text.splitlines()
    rows = lines[lines.index("exit codes:") + 1:]
    return {int(m[1]): m[2] for m in (re.match(r"\s+(\d+)\s{2,}(.*)", row) for row in rows) if m}


def _docs_table() -> dict[int, str]:
    """docs/guides/reliability.md's exit-code table: code -> its experiments column."""
    text = (ROOT / "docs" / "guides" / "reliability.md").read_text()
    return {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \|.*\| ([^|]+) \|$", text, re.MULTILINE)}


def test_every_experiment_module_is_covered():
    found = sorted(p.stem for p in (ROOT / "experiments").glob("*.py") if not p.stem.startswith("_"))
    assert tuple(found) == EXPERIMENTS


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_help_is_plain_complete_and_names_its_exit_codes(name):
    proc = _help(name)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.startswith(f"usage: python -m experiments.{name} ")
    assert "``" not in out and not re.search(r":(func|mod|class|meth|data|attr|math):", out), out
    options = _options(out)
    assert "-h, --help" in options
    for invocation, text in options.items():
        assert text, f"{invocation}: no help text"
        takes_value = invocation.startswith("-") and " " in invocation.split(", ")[-1]
        if takes_value:
            assert "default" in text or "required" in text, f"{invocation}: its help does not say its default"
    codes = _exit_codes(out)
    assert codes.get(0) and codes.get(2), f"the exit codes in --help: {codes}"
    table = _docs_table()
    for code in codes:  # the docs' one table names this experiment for every code it can return
        assert code in table, f"exit code {code} of experiments.{name} is not in the reliability guide's table"
        names = {n.strip() for n in table[code].split(",")}
        assert "all" in names or name in names, f"the reliability guide's row {code} does not name {name}"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_help_imports_neither_jax_nor_matplotlib(name):
    code = ("import json, runpy, sys\n"
            f"sys.argv = ['{name}', '--help']\n"
            "try:\n"
            f"    runpy.run_module('experiments.{name}', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as e:\n"
            "    status = e.code\n"
            "print(json.dumps({'status': status, 'loaded': [m for m in ('jax', 'matplotlib') if m in sys.modules]}),"
            " file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report == {"status": 0, "loaded": []}


def test_choices_taken_without_jax_equal_the_librarys():
    from mlwork import optim
    from mlwork.data.sources import SOURCES

    for name in ("checklist", "landscape"):
        out = subprocess.run([sys.executable, "-m", f"experiments.{name}", "--help"], cwd=ROOT,
                             env={**ENV, "COLUMNS": "300"}, capture_output=True, text=True, timeout=120).stdout
        assert "--source {" + ",".join(SOURCES) + "}" in out
    out = subprocess.run([sys.executable, "-m", "experiments.checklist", "--help"], cwd=ROOT,
                         env={**ENV, "COLUMNS": "300"}, capture_output=True, text=True, timeout=120).stdout
    assert "--optimizer {" + ",".join(optim.OPTIMIZERS) + "}" in out


def test_the_loss_names_taken_without_jax_are_the_registrys():
    from mlwork.train import config, task

    assert set(config.LOSSES) <= set(task.TASK_LOSSES) and set(config.TASKS) == set(task.TASKS)
