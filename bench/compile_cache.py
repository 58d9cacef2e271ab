"""Cold vs warm compile time of the trainer's epoch with JAX's persistent compilation cache.

    uv run python -m bench.compile_cache [--repeats 3]

Each measurement is a fresh Python process (as a second run of ``experiments.mnist`` would be)
that builds the MLP's and the CNN's compiled epoch and evaluation exactly as the trainer does and
times ``lower().compile()``. "cold": an empty cache folder; "warm": the folder the cold run
filled. Target: warm under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import append_results, print_table

CHILD = r"""
import json, sys, time
t_start = time.perf_counter()
from mlwork.train.compile_cache import enable_compilation_cache
enable_compilation_cache(sys.argv[2])
import numpy as np
from mlwork.data.sources import Dataset
from mlwork.train import TrainConfig, compile_run, init_state, prepare
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (2000, 28, 28), dtype=np.uint8); y = rng.integers(0, 10, 2000).astype(np.uint8)
data = Dataset("mnist", x, y, x[:500], y[:500], "random")
run = prepare(TrainConfig(model=sys.argv[1], batch_size=64, devices=1), data)
seconds = compile_run(run, init_state(run)).compile_time_s
print(json.dumps({"compile_s": seconds, "process_s": time.perf_counter() - t_start}))
"""


def measure(model: str, cache: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, model, str(cache)], capture_output=True, text=True, check=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", default="mlp,cnn")
    args = p.parse_args(argv)
    rows = []
    for model in args.models.split(","):
        cold, warm = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as cache:
                cold.append(measure(model, Path(cache)))
                warm.append(measure(model, Path(cache)))
        row = {"model": model, "cold_compile_s": statistics.median(r["compile_s"] for r in cold),
               "warm_compile_s": statistics.median(r["compile_s"] for r in warm),
               "cold_process_s": statistics.median(r["process_s"] for r in cold),
               "warm_process_s": statistics.median(r["process_s"] for r in warm)}
        row["speedup"] = row["cold_compile_s"] / row["warm_compile_s"]
        rows.append(row)
        print(f"  {model}: cold {row['cold_compile_s']:.2f} s, warm {row['warm_compile_s']:.2f} s", flush=True)
    print()
    print_table(rows)
    append_results("compile_cache", rows, notes=f"median of {args.repeats} fresh processes each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
