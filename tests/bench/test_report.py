"""bench.report: the tables the docs' benchmarks page renders from bench/results.jsonl."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report

ROOT = Path(__file__).resolve().parents[2]


def _row(benchmark, time, **fields):
    return {"benchmark": benchmark, "time": time, "machine": {"cpu": "X", "cpu_count": 2, "commit": "abc1234"},
            "notes": "n", **fields}


def test_runs_are_grouped_by_their_time_stamp_newest_first():
    rows = [_row("population", "2026-01-01T00:00:00+00:00", members=1, epoch_s=1.0),
            _row("population", "2026-01-02T00:00:00+00:00", members=1, epoch_s=0.5),
            _row("population", "2026-01-02T00:00:00+00:00", members=4, epoch_s=1.5),
            _row("trees", "2026-01-03T00:00:00+00:00", impl="mlwork", fit_s=2.0)]
    found = report.runs(rows, "population")
    assert [len(run) for run in found] == [2, 1]
    assert found[0][0]["epoch_s"] == 0.5
    assert report.benchmarks(rows) == ["population", "trees"]
    headers, body = report.cells(found[0], "population")
    assert headers[0] == "members" and body[1][0] == "4"
    assert body[0][headers.index("epoch")] == "0.5 s"
    assert body[0][headers.index("member block")] == "—"          # a field the run did not record
    text = report.report(rows, "population", all_runs=True)
    assert text.count("| members |") == 2 and "commit abc1234" in text


def test_an_unknown_benchmark_shows_every_scalar_field():
    headers, body = report.cells([_row("new", "t", speed=1.23456, nested={"a": 1})], "new")
    assert headers == ["speed"] and body == [["1.23"]]


def test_the_recorded_results_render_and_bad_input_exits_2(tmp_path):
    text = report.report(report.load(report.RESULTS))
    for name in ("mnist_epoch", "trees", "torture_resume"):
        assert f"## {name}" in text
    bad = tmp_path / "results.jsonl"
    bad.write_text(json.dumps(_row("x", "t")) + "\n{not json\n")
    with pytest.raises(ValueError, match="results.jsonl:2 is not a JSON line"):
        report.load(bad)
    proc = subprocess.run([sys.executable, "-m", "bench.report", "--benchmark", "nope"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "benchmark must be one of" in proc.stderr
