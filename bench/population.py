"""Population training: time for K = 1, 4, 16 MLPs in one vmapped program, per member.

    uv run python -m bench.population [--members 1,4,16] [--epochs 3] [--batch 128]

Each configuration compiles the population's epoch (``jax.vmap`` of the trainer's compiled
epoch over K train states; on a CPU in cache-sized blocks of members run one after another,
see :func:`mlwork.train.hardware.member_block`, and for comparison with every member in
lockstep) and times ``--epochs`` epochs on 60,000 MNIST-shaped images
(Fashion-MNIST when installed, else random uint8). Reported: the median epoch time, the time
per member, and ``time(K) / (K · time(1))`` — below 1 means a member trained in a population
costs less than one trained alone (target at K = 16: no more than 1).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

from bench.common import append_results, print_table
from bench.mnist_epoch import load_images
from mlwork.data.sources import Dataset
from mlwork.train import TrainConfig, compile_run, init_state, prepare


def time_population(dataset: Dataset, k: int, batch: int, epochs: int, block: int | None = None,
                    monitor: bool = False) -> tuple[float, float, int]:
    """The trainer's own compiled epoch for K members (K=1: a single model, no member axis)."""
    config = TrainConfig(epochs=epochs, batch_size=batch, schedule="constant", devices=1, population=k,
                         monitor=monitor)
    run = prepare(config, dataset)
    state = init_state(run)
    compiled = compile_run(run, state, block=block)
    epoch_c, compile_s, block = compiled.chunks[compiled.steps_per_call], compiled.compile_time_s, \
        compiled.member_block or 1
    times = []
    for _ in range(epochs + 1):
        t = time.perf_counter()
        state, m = epoch_c(state, *run.train)
        jax.block_until_ready(m["loss"])
        times.append(time.perf_counter() - t)
    return compile_s, statistics.median(times[1:]), block


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--members", default="1,4,16")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--block", default="auto",
                   help="members per vmapped block: 'auto' (mlwork's default) or a number; lockstep (K) is "
                        "always timed too")
    p.add_argument("--monitor", action="store_true", help="with the training monitor (the trainer's default)")
    args = p.parse_args(argv)
    images, labels, source = load_images()
    dataset = Dataset("fashion_mnist", images, labels.astype("uint8"), images[:1000], labels[:1000].astype("uint8"),
                      source=source)
    rows, base = [], None
    for k in (int(v) for v in args.members.split(",")):
        # mlwork's default (cache-sized blocks on a CPU) and, when that differs, every member in lockstep.
        first = None if args.block == "auto" else min(int(args.block), k)
        used = None
        for block in (first, k):
            if block == k and used == k:
                break
            compile_s, epoch_s, used = time_population(dataset, k, args.batch, args.epochs, block,
                                                               args.monitor)
            base = epoch_s if base is None else base
            rows.append({"members": k, "member_block": used, "batch": args.batch, "compile_s": compile_s,
                         "epoch_s": epoch_s, "epoch_s_per_member": epoch_s / k,
                         "ratio_vs_K_alone": epoch_s / (k * base)})
            print(f"  K={k}, blocks of {used}: compile {compile_s:.2f} s, epoch {epoch_s:.3f} s "
                  f"({epoch_s / k:.3f} s per member)", flush=True)
    print()
    print_table(rows)
    print(f"\n{source}; {len(labels) * 0.9:.0f} training images per epoch (10% held out); MLP 784-256-128-10, Adam")
    append_results("population", rows, notes=source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
