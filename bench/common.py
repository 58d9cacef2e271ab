"""What every benchmark shares: the machine's description, robust timing, the results file.

Timing rules (DESIGN.md): steady-state time and compile time are reported separately; figures
are medians of several runs; comparisons are ratios against a baseline measured in the same
process, because the machines here are noisy.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.jsonl"


def machine_info() -> dict[str, Any]:
    """CPU model, core count, memory, accelerator and library versions."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        info["memory_gib"] = round(mem_kb / 2**20, 1)
    except OSError:
        pass
    try:
        import jax

        info["jax"] = jax.__version__
        info["backend"] = jax.default_backend()
        info["devices"] = [str(d.device_kind) for d in jax.devices()]
    except Exception as e:  # pragma: no cover - reported, not fatal
        info["jax_error"] = repr(e)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5).stdout.strip()
        info["commit"] = commit or None
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs.

    ``fn`` must block until its work is done (call ``jax.block_until_ready`` on JAX outputs).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Render rows as a Markdown table (printed and returned), formatting floats compactly."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    text = "\n".join(lines)
    print(text)
    return text


def append_results(benchmark: str, rows: Sequence[dict[str, Any]], notes: str = "",
                   path: Path = RESULTS) -> None:
    """Append one JSON line per row to ``bench/results.jsonl`` with the machine description."""
    machine = machine_info()
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps({"benchmark": benchmark, "time": stamp, "machine": machine,
                                "notes": notes, **row}, default=str) + "\n")
