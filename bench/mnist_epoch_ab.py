"""A/B of the MNIST path's epoch: this checkout's trainer against another commit's, in one process.

    python -m bench.mnist_epoch_ab --base 2d3d3c2^
    python -m bench.mnist_epoch_ab --base main --models mlp --batches 128 --epochs 9

The base commit is checked out into a temporary ``git worktree``; its ``mlwork`` (and its
``bench.mnist_epoch``) are imported after this checkout's, the modules dropped from
``sys.modules`` in between, so both trainers live in one process. For each model and batch size
both sides build the epoch exactly as :func:`bench.mnist_epoch.jax_epoch` does on their own code
(``prepare`` → ``init_state`` → ``compile_run``, the whole epoch as one compiled program, on the
same 60,000 images), run one untimed warm-up epoch each, then alternate timed epochs — base, new,
new, base, ... — so machine noise hits both alike. The side built first can run a few per cent apart from the
other on the same code (where its buffers land): ``--new-first`` swaps the order, and a
difference that keeps its sign both ways is the code's. Figures: each side's median epoch and compile
time, and ``ratio`` = the median over pairs of ``new / base`` epoch times (below 1: faster),
appended to ``bench/results.jsonl``. It answers "did this change slow the MNIST path?" with the
noise of one process, not the drift between sessions or machines.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", default="main", help="commit to compare against (default: main)")
    p.add_argument("--epochs", type=int, default=6, help="timed epochs per side, alternating (default 6)")
    p.add_argument("--models", default="mlp,cnn", help="models, as bench.mnist_epoch takes them")
    p.add_argument("--batches", default="128,512", help="MLP batch sizes (default 128,512)")
    p.add_argument("--cnn-batch", type=int, default=128, help="the CNN's batch size (default 128)")
    p.add_argument("--new-first", action="store_true",
                   help="build (compile, allocate) this checkout's programs before the base's")
    p.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs must be at least 1, got {args.epochs}")
    return args


def _import_bench(path: Path):
    """``bench.mnist_epoch`` and the ``mlwork`` it imports, from ``path``, independent of any imported before."""
    for name in [m for m in sys.modules if m.split(".")[0] in ("mlwork", "bench")]:
        del sys.modules[name]
    sys.path.insert(0, str(path))
    try:
        import bench.mnist_epoch as module
    finally:
        sys.path.pop(0)
    return module


def _epoch_program(m, kind: str, batch: int, images, labels, source: str, epochs: int):
    """One side's compiled epoch, built as ``m.jax_epoch`` builds it: ``(epoch, state, train, compile_s)``."""
    import numpy as np

    dataset = m.Dataset("fashion_mnist", images, labels.astype(np.uint8), images[:1000],
                        labels[:1000].astype(np.uint8), source=source)
    run = m.prepare(m.TrainConfig(model=kind, batch_size=batch, epochs=epochs + 1, devices=1), dataset)
    state = m.init_state(run)
    compiled = m.compile_run(run, state)
    return compiled.chunks[run.steps_per_epoch], state, run.train, compiled.compile_time_s


def _time_epoch(side: list) -> float:
    """Run one epoch of ``side`` (``[epoch, state, train, compile_s]``, its state advanced in place); its seconds."""
    import jax

    epoch, state, train, _ = side
    t = time.perf_counter()
    side[1], metrics = epoch(state, *train)
    jax.block_until_ready(metrics["loss"])
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    configs = [("mlp", int(b)) for b in args.batches.split(",")] if "mlp" in args.models.split(",") else []
    if "cnn" in args.models.split(","):
        configs.append(("cnn", args.cnn_batch))
    rows = []
    from bench.trees_ab import base_worktree

    with base_worktree(args.base) as base_root:
        base_sha = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=base_root, capture_output=True,
                                  text=True, check=True).stdout.strip()
        images, labels, source = _import_bench(ROOT).load_images()
        for kind, batch in configs:
            # each side is built right after its own import, so its lazy imports find its own modules
            order = (("base", base_root), ("new", ROOT))
            sides = {name: list(_epoch_program(_import_bench(root), kind, batch, images, labels, source, args.epochs))
                     for name, root in (order[::-1] if args.new_first else order)}
            times = {"base": [], "new": []}
            _time_epoch(sides["base"])  # one-off allocations, untimed
            _time_epoch(sides["new"])
            for i in range(args.epochs):
                for name in ("base", "new") if i % 2 == 0 else ("new", "base"):
                    times[name].append(_time_epoch(sides[name]))
            ratios = [n / b for n, b in zip(times["new"], times["base"], strict=True)]
            row = {"model": kind, "batch": batch, "base": base_sha, "epochs": args.epochs,
                   "built_first": "new" if args.new_first else "base",
                   "base_epoch_s": statistics.median(times["base"]), "new_epoch_s": statistics.median(times["new"]),
                   "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                   "base_compile_s": sides["base"][3], "new_compile_s": sides["new"][3]}
            rows.append(row)
            print(f"{kind} batch {batch}: base {row['base_epoch_s']:.3f} s, new {row['new_epoch_s']:.3f} s, "
                  f"new/base {row['ratio']:.3f} (pairs {row['ratio_min']:.3f}-{row['ratio_max']:.3f})", flush=True)
    _import_bench(ROOT)
    from bench.common import append_results, print_table

    print()
    print_table(rows, ["model", "batch", "base_epoch_s", "new_epoch_s", "ratio", "ratio_min", "ratio_max",
                       "base_compile_s", "new_compile_s"])
    notes = (f"{source}; base {args.base} = {base_sha}; one process, epochs alternating, median of "
             f"{args.epochs} pairs")
    print(notes)
    if not args.no_record:
        append_results("mnist_epoch_ab", rows, notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
