"""A streamed epoch (Grain over memory-mapped .npy files) against the in-memory epoch, in one process.

    uv run python -m bench.stream_epoch [--repeats 3] [--sizes 60000,240000] [--budget-mb 64]

For each data set size (synthetic uint8 images of MNIST's shape, 28x28, with random labels; 10%
held out for validation, as in the trainer), the MLP (784-256-128-10, Adam, dropout 0.2, the
monitor on: exactly ``experiments.mnist``'s step) trains one epoch:

* ``memory``: the split on the device, the whole epoch one compiled ``lax.scan`` (the default);
* ``memory_chunked``: the split on the device, the epoch in compiled chunks of the streamed
  run's length, each followed by the host's metrics fetch (what chunking alone costs);
* ``streamed``: the split read from memory-mapped ``.npy`` files by the Grain pipeline of
  ``mlwork.data.stream`` (worker threads read and stack the next chunks while the device trains),
  fed to the compiled streamed chunk — the loop ``mlwork.train.train_epochs`` runs.

Compile time is measured separately; each figure is the median of ``--repeats`` epochs after one
warm-up epoch. A size above ``--budget-mb`` is the "larger than the device budget" case (the
trainer would stream it by itself with ``--device-memory-budget-mb``). The table gives the
streamed/in-memory ratio (goal: at most 1.3) and whether the streamed epoch's parameters equal the
in-memory epoch's bit for bit. Results are appended to ``bench/results.jsonl`` with the load
average seen (the machines here are shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from bench.common import append_results, print_table
from mlwork.data import Dataset
from mlwork.train import TrainConfig, compile_run, init_state, params_sha256, prepare
from mlwork.train.loop import _feed, _put_batches


def _epoch(run, compiled, state):
    """One epoch from ``state`` (at an epoch's start) as the trainer's loop runs it; returns the new state."""
    spe, per_call, position = run.steps_per_epoch, compiled.steps_per_call, 0
    feed = None if run.stream is None else _feed(run, state, int(state.epoch), 0, per_call, None)
    while position < spe:
        length = min(per_call, spe - position)
        if feed is None:
            state, m = compiled.chunks[length](state, *run.train)
        else:
            xs, ys = next(feed)
            state, m = compiled.chunks[length](state, *_put_batches(run, xs, ys), *run.train)
        jax.device_get(m["loss_sum"])
        position += length
    return state


def _time(run, repeats: int):
    state = init_state(run)
    compiled = compile_run(run, state)
    state = _epoch(run, compiled, state)  # warm-up (and the first epoch's parameters, compared below)
    first = params_sha256(state.params)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state = _epoch(run, compiled, state)
        times.append(time.perf_counter() - t0)
    return compiled.compile_time_s, statistics.median(times), times, first, compiled.steps_per_call


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sizes", default="60000,240000", help="training set sizes (before the validation split)")
    p.add_argument("--budget-mb", type=float, default=64.0, help="the device budget the larger size exceeds")
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args(argv)
    os.environ.setdefault("MLWORK_CACHE_DIR", tempfile.mkdtemp(prefix="mlwork-stream-bench-"))
    rows = []
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    for n in [int(v) for v in args.sizes.split(",")]:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.int32)
        data = Dataset("mnist", x, y, x[:1000], y[:1000], source="synthetic uint8")
        mib = n * 0.9 * (784 + 4) / 2**20
        base = TrainConfig(batch_size=args.batch, epochs=10)
        results = {}
        for mode, config in [("memory", base), ("streamed", base.replace(stream=True))]:
            results[mode] = _time(prepare(config, data), args.repeats)
        per_call = results["streamed"][4]
        results["memory_chunked"] = _time(prepare(base.replace(steps_per_call=per_call), data), args.repeats)
        mem, chunked, streamed = (results[k][1] for k in ("memory", "memory_chunked", "streamed"))
        rows.append({"examples": int(n * 0.9) // args.batch * args.batch, "train_mib": round(mib, 1),
                     "over_budget": mib > args.budget_mb, "batch": args.batch, "chunk_steps": per_call,
                     "memory_s": round(mem, 4), "memory_chunked_s": round(chunked, 4),
                     "streamed_s": round(streamed, 4), "x_memory": round(streamed / mem, 3),
                     "x_chunked": round(streamed / chunked, 3),
                     "compile_memory_s": round(results["memory"][0], 2),
                     "compile_streamed_s": round(results["streamed"][0], 2),
                     "same_params": results["memory"][3] == results["streamed"][3] == results["memory_chunked"][3],
                     "streamed_times": [round(t, 4) for t in results["streamed"][2]],
                     "memory_times": [round(t, 4) for t in results["memory"][2]]})
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print_table(rows, ["examples", "train_mib", "over_budget", "chunk_steps", "memory_s", "memory_chunked_s",
                       "streamed_s", "x_memory", "x_chunked", "same_params"])
    notes = (f"synthetic uint8 28x28, mlp 784-256-128-10, budget {args.budget_mb:g} MiB, median of {args.repeats}; "
             f"loadavg before {' '.join(load_before)}, after {' '.join(load_after)} (shared 2-core machine)")
    print(notes)
    append_results("stream_epoch", rows, notes=notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
