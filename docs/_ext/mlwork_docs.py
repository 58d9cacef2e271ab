"""Sphinx extension of the mlwork docs: benchmark tables and references to a name's defining module.

* ``.. bench-runs:: NAME`` (``{bench-runs} NAME`` in MyST) renders the runs of benchmark NAME
  recorded in ``bench/results.jsonl`` at build time, newest first, with ``bench.report`` (the
  same code as ``python -m bench.report``): the figures on the site are never copied by hand.
  Options: ``:latest:`` (the newest run only).
* A reference to a public object through the module that defines it
  (``:func:`mlwork.train.programs.prepare```) resolves to its entry in the API reference, which
  documents it where users import it (``mlwork.train.prepare``). A name that does not exist stays
  an unresolved reference, which ``nitpicky`` turns into a build error.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

from bench import report

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results.jsonl"


class BenchRuns(SphinxDirective):
    required_arguments = 1
    option_spec = {"latest": directives.flag}

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        self.env.note_dependency(str(RESULTS))
        found = report.runs(report.load(RESULTS), name)
        if not found:
            raise self.error(f"bench-runs: no run of benchmark {name!r} in {RESULTS.name}")
        container = nodes.container(classes=["bench-runs"])
        for i, run in enumerate(found[:1] if "latest" in self.options else found):
            headers, body = report.cells(run, name)
            title = ("Newest run: " if i == 0 else "Earlier run: ") + report.describe_run(run)
            container += _table(title, headers, body)
        return [container]


def _table(title: str, headers: list[str], body: list[list[str]]) -> nodes.table:
    """A docutils table (built as nodes: the page may be MyST markdown, which would not parse
    reST directives in a nested parse)."""
    table = nodes.table(classes=["bench-table"])
    table += nodes.title(text=title)
    group = nodes.tgroup(cols=len(headers))
    table += group
    group.extend(nodes.colspec(colwidth=1) for _ in headers)

    def row(cells: list[str]) -> nodes.row:
        r = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += nodes.paragraph(text=cell)
            r += entry
        return r

    head, tbody = nodes.thead(), nodes.tbody()
    head += row(headers)
    tbody.extend(row(cells) for cells in body)
    group += head
    group += tbody
    return table


def _resolve(dotted: str):
    """The object a dotted ``mlwork.…`` path names, or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


_DOCUMENTED: dict[int, str] | None = None  # filled once all documents are read, per build


def _documented(env) -> dict[int, str]:
    """id(object) -> the full name of its entry, for every documented mlwork object."""
    global _DOCUMENTED
    cache = _DOCUMENTED
    if cache is None:
        cache = {}
        for name, entry in env.get_domain("py").objects.items():
            if entry.objtype in ("function", "class", "exception", "method", "attribute", "data", "module") \
                    and name.startswith("mlwork.") and not entry.aliased:
                obj = _resolve(name)
                if obj is not None and not isinstance(obj, (int, float, str, bool)):  # interned values share ids
                    cache.setdefault(id(obj), name)
        _DOCUMENTED = cache
    return cache


def _candidates(target: str, module: str | None, cls: str | None) -> list[str]:
    """Dotted paths a reference may mean: as written (``mlwork.…``), else in the scope of the
    docstring's class and module and their parents (a bare name in a module's docstring)."""
    target = target.lstrip(".~")
    if target.startswith("mlwork."):
        return [target]
    scopes = []
    if module:
        if cls:
            scopes.append(f"{module}.{cls}")
        parts = module.split(".")
        scopes += [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
    return [f"{scope}.{target}" for scope in scopes if scope.startswith("mlwork")]


def missing_reference(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    documented = _documented(env)
    for candidate in _candidates(node.get("reftarget", ""), node.get("py:module"), node.get("py:class")):
        obj = _resolve(candidate)
        if obj is None:
            continue
        name = documented.get(id(obj))
        if name is not None:
            return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, "obj", name, node, contnode)
    return None


def skip_foreign_member(app, what, name, obj, skip, options):
    """Members a class inherits or gets from another library (scikit-learn's ``set_*_request``)
    are not mlwork's to document."""
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and callable(obj) and not module.startswith("mlwork"):
        return True
    return None


def _reset(*args):
    global _DOCUMENTED
    _DOCUMENTED = None


def setup(app):
    app.add_directive("bench-runs", BenchRuns)
    app.connect("missing-reference", missing_reference)
    app.connect("env-before-read-docs", _reset)
    app.connect("autodoc-skip-member", skip_foreign_member)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
