"""What the per-epoch training monitor costs: the trainer's compiled epoch with and without it.

    uv run python -m bench.monitor_overhead [--epochs 7] [--models mlp,cnn] [--n 60000]

For each model: the same compiled epoch (``make_train_epoch`` over ``make_train_step``, Adam,
dropout 0.2, batch 64) built twice — plain, and monitored as the trainer does it
(``monitor_every=10``: gradient norms on every 10th step, plus
:func:`mlwork.train.diagnostics.make_epoch_monitor`: at the end of the epoch the parameter
norms, the update/parameter ratio on a 64-image probe and the dead-ReLU fraction on 256).
Timed epochs alternate between the two programs so both see the same machine load. The table
gives compile times, the median epoch time of each, and two ratios (monitored / plain): of the
medians, and of the fastest epochs, which is the steadier figure on a shared machine. Data:
Fashion-MNIST's training images when ``dataset-fashion-mnist`` is installed, else random uint8
images. Results are appended to ``bench/results.jsonl``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

from bench.common import append_results, print_table
from bench.mnist_epoch import MEAN, MLP_SIZES, STD, load_images
from mlwork import nn, optim
from mlwork.train.diagnostics import MONITOR_EVERY, make_epoch_monitor
from mlwork.train.hardware import compiler_options
from mlwork.train.state import create_train_state
from mlwork.train.step import make_train_epoch, make_train_step


def compiled_epoch(model: nn.Model, tx, state, x, y, batch: int, monitor: bool):
    step = make_train_step(model, tx, mean=MEAN, std=STD, monitor_every=MONITOR_EVERY if monitor else 0)
    hook = make_epoch_monitor(model, mean=MEAN, std=STD, tx=tx) if monitor else None
    fn = jax.jit(make_train_epoch(step, batch, monitor=hook))
    t0 = time.perf_counter()
    compiled = fn.lower(state, x, y).compile(compiler_options=compiler_options())
    return compiled, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=7, help="timed epochs per program")
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--n", type=int, default=60_000, help="training images per epoch")
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args(argv)
    images, labels, source = load_images(args.n)
    x, y = jax.device_put(images), jax.device_put(labels)
    rows = []
    for kind in args.models.split(","):
        model = nn.mlp(list(MLP_SIZES), dropout=0.2) if kind == "mlp" else nn.cnn()
        tx = optim.optimizer("adam", 1e-3)
        state = create_train_state(model, tx, jax.random.key(0), (28, 28), optim.early_stopping(mode="max"))
        programs = {flag: compiled_epoch(model, tx, state, x, y, args.batch, flag) for flag in (False, True)}
        times = {False: [], True: []}
        for i in range(args.epochs + 1):  # the first round pays one-off allocation; not counted
            for flag, (fn, _) in programs.items():
                t = time.perf_counter()
                _, m = fn(state, x, y)
                jax.block_until_ready(m["loss"])
                if i:
                    times[flag].append(time.perf_counter() - t)
        plain, monitored = statistics.median(times[False]), statistics.median(times[True])
        rows.append({"model": kind, "batch": args.batch, "images": args.n,
                     "compile_plain_s": programs[False][1], "compile_monitored_s": programs[True][1],
                     "epoch_plain_s": plain, "epoch_monitored_s": monitored, "ratio_median": monitored / plain,
                     "ratio_fastest": min(times[True]) / min(times[False])})
        print(f"  {kind}: plain {plain:.3f} s, monitored {monitored:.3f} s (medians {monitored / plain:.3f}x, "
              f"fastest {rows[-1]['ratio_fastest']:.3f}x)", flush=True)
    print()
    print_table(rows, ["model", "batch", "images", "compile_plain_s", "compile_monitored_s", "epoch_plain_s",
                       "epoch_monitored_s", "ratio_median", "ratio_fastest"])
    print(f"\n{source}; JAX {jax.__version__} on {jax.devices()[0].device_kind}; {args.epochs} alternating epochs each")
    append_results("monitor_overhead", rows, notes=source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
