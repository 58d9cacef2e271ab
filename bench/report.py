"""Tables of the recorded benchmark runs, rendered from ``bench/results.jsonl``.

    uv run python -m bench.report [--benchmark NAME] [--all-runs]

Prints one Markdown table per benchmark: its newest run (every row that run appended, with the
machine, commit and notes), or every run with ``--all-runs``. The docs site's benchmarks page is
built from the same functions at build time (``docs/_ext/mlwork_docs.py``), so no figure is ever
copied by hand: a benchmark run appends its rows, the next docs build shows them.

A *run* is the set of rows one invocation appended: they share the ``time`` stamp that
:func:`bench.common.append_results` writes. Nothing here imports JAX.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.jsonl"

Column = tuple[str, str, Callable[[dict[str, Any]], Any]]


def _field(name: str, fmt: str = "{:.3g}") -> Callable[[dict[str, Any]], Any]:
    def get(row: dict[str, Any]) -> str:
        value = row.get(name)
        if value is None:
            return "—"
        if isinstance(value, float):
            return fmt.format(value)
        return str(value)

    return get


def _seconds(name: str) -> Callable[[dict[str, Any]], Any]:
    return _field(name, "{:.3g} s")


def _ratio(name: str) -> Callable[[dict[str, Any]], Any]:
    return _field(name, "{:.2f}×")


#: What each benchmark's table shows: (key, header, formatter). Benchmarks not listed here show
#: every scalar field of their rows.
COLUMNS: dict[str, list[tuple[str, Callable[[dict[str, Any]], Any]]]] = {
    "mnist_epoch": [
        ("model", _field("model")), ("batch", _field("batch")),
        ("mlwork epoch", _seconds("mlwork_epoch_s")), ("compile", _seconds("mlwork_compile_s")),
        ("PyTorch epoch", _seconds("pytorch_epoch_s")), ("speed-up", _ratio("speedup_vs_pytorch")),
        ("× FLOP floor", _ratio("x_floor")), ("examples/epoch", _field("examples_per_epoch")),
    ],
    "tabular_epoch": [
        ("batch", _field("batch")), ("examples/epoch", _field("examples")), ("epoch", _seconds("epoch_s")),
        ("compile", _seconds("compile_s")), ("FLOP floor", _seconds("floor_s")), ("× FLOP floor", _ratio("x_floor")),
        ("matmuls alone", _seconds("matmuls_s")), ("× matmuls", _ratio("x_matmuls")),
    ],
    "population": [
        ("members", _field("members")), ("member block", _field("member_block")), ("batch", _field("batch")),
        ("epoch", _seconds("epoch_s")), ("per member", _seconds("epoch_s_per_member")),
        ("per member / one model", _ratio("ratio_vs_K_alone")), ("compile", _seconds("compile_s")),
    ],
    "compile_cache": [
        ("model", _field("model")), ("cold compile", _seconds("cold_compile_s")),
        ("warm compile", _seconds("warm_compile_s")), ("cold process", _seconds("cold_process_s")),
        ("warm process", _seconds("warm_process_s")), ("speed-up", _ratio("speedup")),
    ],
    "monitor_overhead": [
        ("model", _field("model")), ("batch", _field("batch")), ("plain epoch", _seconds("epoch_plain_s")),
        ("monitored epoch", _seconds("epoch_monitored_s")), ("monitored / plain (median)", _ratio("ratio_median")),
    ],
    "torture_resume": [
        ("trials", _field("trials")), ("identical", _field("identical")), ("trials killed", _field("trials_killed")),
        ("SIGKILLs", _field("kills")), ("unrestorable checkpoints", _field("unrestorable_checkpoints")),
        ("epochs", _field("epochs")),
    ],
    "trees": [
        ("data", _field("data")), ("model", _field("model")), ("implementation", _field("impl")),
        ("fit", _seconds("fit_s")), ("compile", _seconds("compile_s")), ("predict", _seconds("predict_s")),
        ("accuracy", _field("accuracy", "{:.4f}")), ("fit / baseline", _ratio("ratio_vs_baseline")),
    ],
    "trees_hist_subtraction": [
        ("n × d", lambda r: f"{r.get('n')} × {r.get('d')}"), ("level", _field("level")), ("levels", _field("levels")),
        ("full search", _seconds("full_s")), ("histogram share", _field("hist_share", "{:.0%}")),
        ("subtraction", _seconds("subtract_s")), ("compaction", _seconds("compact_s")),
        ("full / subtraction", _ratio("ratio_full_over_subtract")), ("max rel. diff", _field("max_rel_diff")),
        ("boosting round", _seconds("round_s")), ("fixed", _seconds("fixed_s")),
        ("search share of a round", _field("search_share_of_round", "{:.0%}")), ("load average", _field("loadavg")),
    ],
    "trees_categorical": [
        ("library", _field("library")), ("encoding", _field("encoding")), ("features", _field("features")),
        ("accuracy", _field("accuracy", "{:.4f}")), ("first fit", _seconds("first_s")), ("fit", _seconds("fit_s")),
        ("load average", _field("loadavg")),
    ],
    "trees_small_data": [
        ("run", _field("run")), ("mlwork first search", _seconds("mlwork_first_s")),
        ("mlwork steady", _seconds("mlwork_s")), ("scikit-learn", _seconds("sklearn_s")),
        ("first / scikit-learn", _ratio("first_vs_sklearn")), ("steady / scikit-learn", _ratio("steady_vs_sklearn")),
        ("compilations", _field("compiles")), ("cache reads", _field("cache_hits")),
        ("tracing (first)", _seconds("trace_s")), ("lowering (first)", _seconds("lower_s")),
        ("XLA compile (first)", _seconds("xla_compile_s")),
        ("CV accuracy (mlwork)", _field("mlwork_best_score", "{:.4f}")),
        ("CV accuracy (scikit-learn)", _field("sklearn_best_score", "{:.4f}")),
    ],
}

_MACHINE_KEYS = ("cpu", "cpu_count", "memory_gib", "python", "jax", "backend", "commit")


def load(path: Path | str = RESULTS) -> list[dict[str, Any]]:
    """Every row of a results file, in the order written (blank lines skipped)."""
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number} is not a JSON line: {e}") from None
    return rows


def runs(rows: Sequence[dict[str, Any]], benchmark: str) -> list[list[dict[str, Any]]]:
    """The runs of one benchmark, newest first; each run is its rows in the order written."""
    by_time: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("benchmark") == benchmark:
            by_time.setdefault(row["time"], []).append(row)
    return [by_time[t] for t in sorted(by_time, reverse=True)]


def benchmarks(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The benchmark names in the file, in order of first appearance."""
    return list(dict.fromkeys(row["benchmark"] for row in rows))


def describe_run(run: Sequence[dict[str, Any]]) -> str:
    """One line: when, on what, at which commit, and the run's notes."""
    first = run[0]
    machine = first.get("machine", {})
    parts = [first["time"].replace("T", " ").replace("+00:00", " UTC")]
    what = ", ".join(f"{k} {machine[k]}" for k in _MACHINE_KEYS if machine.get(k) not in (None, ""))
    if what:
        parts.append(what)
    if first.get("notes"):
        parts.append(str(first["notes"]))
    return "; ".join(parts)


def cells(run: Sequence[dict[str, Any]], benchmark: str) -> tuple[list[str], list[list[str]]]:
    """The headers and the formatted cells of one run's table."""
    columns = COLUMNS.get(benchmark)
    if columns is None:
        keys = [k for k in run[0] if k not in ("benchmark", "time", "machine", "notes")
                and not isinstance(run[0][k], (dict, list))]
        columns = [(k, _field(k)) for k in keys]
    return [h for h, _ in columns], [[str(get(row)) for _, get in columns] for row in run]


def markdown_table(run: Sequence[dict[str, Any]], benchmark: str) -> str:
    """A Markdown table of one run's rows."""
    headers, body = cells(run, benchmark)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    return "\n".join(lines)


def report(rows: Sequence[dict[str, Any]], benchmark: str | None = None, all_runs: bool = False) -> str:
    """Markdown for every benchmark (or one): its newest run, or all its runs."""
    out = []
    for name in [benchmark] if benchmark else benchmarks(rows):
        found = runs(rows, name)
        if not found:
            raise ValueError(f"benchmark must be one of {', '.join(benchmarks(rows))}; got {name!r}")
        out.append(f"## {name}\n")
        for run in found if all_runs else found[:1]:
            out.append(f"{describe_run(run)}\n\n{markdown_table(run, name)}\n")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", help="one benchmark (default: every benchmark in the file)")
    parser.add_argument("--all-runs", action="store_true", help="every recorded run, not only the newest")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results file (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        print(report(load(args.results), args.benchmark, args.all_runs))
    except (OSError, ValueError) as e:
        parser.exit(2, f"error: {e}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
