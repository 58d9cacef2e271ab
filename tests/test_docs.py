"""The docs site's promises that hold without building it.

* Every public name (each public namespace's ``__all__``) has an entry in the API reference
  (``docs/api/*.rst``), so a name added to ``__all__`` without a reference entry fails here.
* Every ```python block of the docs' guides (``docs/**/*.md``, notebooks excluded: the docs build
  executes those) runs: a page's blocks run in order in one fresh interpreter, offline, in a
  temporary folder. A page may first run experiments, with lines
  ``<!-- docs-test-setup: python -m experiments.<name> <flags> -->``: the reader runs those
  commands in the shell (the page shows them), the test runs them before the page's Python.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: The public namespaces whose ``__all__`` the API reference covers.
PUBLIC = ("mlwork.foundations", "mlwork.nn", "mlwork.optim", "mlwork.data", "mlwork.train",
          "mlwork.train.diagnostics", "mlwork.trees", "mlwork.trees.sklearn", "mlwork.theory",
          "mlwork.theory.information", "mlwork.theory.bounds")

_DIRECTIVE = re.compile(r"^\.\. (auto(?:function|class|data|exception)|py:data|currentmodule|automodule):: (\S+)",
                        re.M)


def documented_entries() -> dict[str, set[str]]:
    """Full names of the API reference's entries, by page."""
    pages = {}
    for page in sorted((DOCS / "api").glob("*.rst")):
        module, names = None, set()
        for kind, arg in _DIRECTIVE.findall(page.read_text()):
            if kind in ("currentmodule", "automodule"):
                module = arg
            else:
                names.add(arg if arg.startswith("mlwork.") else f"{module}.{arg}")
        pages[page.name] = names
    return pages


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_every_public_name_has_an_api_reference_entry():
    entries = set().union(*documented_entries().values())
    objects = {}
    for name in entries:
        obj = _resolve(name)  # an entry naming nothing is a stale entry
        objects.setdefault(id(obj), name)
    missing = []
    for namespace in PUBLIC:
        module = importlib.import_module(namespace)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue
            full = f"{namespace}.{name}"
            # Functions and classes may be documented under another public path (the same object);
            # a constant under its own name, in this namespace or one that re-exports it.
            if full in entries or (callable(obj) and id(obj) in objects):
                continue
            if any(e.rsplit(".", 1)[1] == name and _resolve(e) is obj for e in entries):
                continue
            missing.append(full)
    assert not missing, f"public names without an entry in docs/api/*.rst: {missing}"


def test_no_public_name_is_documented_twice():
    seen: dict[int, str] = {}
    twice = []
    for name in sorted(set().union(*documented_entries().values())):
        obj = _resolve(name)
        if callable(obj) and id(obj) in seen:
            twice.append((seen[id(obj)], name))
        seen.setdefault(id(obj), name)
    assert not twice, twice


# --- the guides' examples ---

_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
_SETUP = re.compile(r"<!-- docs-test-setup: (.*?) -->")
GUIDES = sorted(p for p in DOCS.rglob("*.md") if "notebooks" not in p.parts and "_build" not in p.parts)


def page_code(page: Path) -> tuple[list[str], str]:
    text = page.read_text()
    return _SETUP.findall(text), "\n".join(_BLOCK.findall(text))


def test_the_guides_have_examples_and_setups_run_only_experiments():
    pages = [p for p in GUIDES if page_code(p)[1].strip()]
    assert len(pages) >= 5, pages
    for page in GUIDES:
        for command in page_code(page)[0]:
            assert command.startswith("python -m experiments."), (page, command)


@pytest.mark.slow  # a fresh interpreter per page; several pages train a model for an epoch or two
@pytest.mark.parametrize("page", [p for p in GUIDES if page_code(p)[1].strip()],
                         ids=lambda p: str(p.relative_to(DOCS)))
def test_guide_examples_run(page, tmp_path):
    setups, code = page_code(page)
    env = {**os.environ, "MLWORK_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
           "MPLBACKEND": "Agg"}
    env.pop("MLWORK_DATA_DIR", None)
    for command in setups:
        argv = command.split()
        proc = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
