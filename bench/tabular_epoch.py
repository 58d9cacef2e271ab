"""A tabular problem through the trainer: steady-state epoch time, compile time, and the distance to the matmul floor.

    uv run python -m bench.tabular_epoch [--examples 200000] [--features 64] [--batches 128,512] [--epochs 5]

A regression (scikit-learn's ``make_regression``: float features, one float target) goes through
exactly what ``experiments.train --data`` runs: features standardised on the device inside the
compiled epoch (one ``lax.scan`` per epoch), an MLP ``D-256-128-1`` (``--hidden``), Adam with the
step schedule, dropout 0.2, the squared-error loss and its metrics' sufficient statistics (MSE,
MAE, R²) accumulated in the same program. Reported per batch size:

* compile time (``lower().compile()``) and the median of ``--epochs`` timed epochs (after one
  untimed epoch);
* the FLOP floor: forward + backward FLOPs of the MLP's matrix products per epoch over this
  machine's float32 matmul peak (a 2048² product in XLA), and the ratio epoch / floor;
* the matmuls alone: the step's products and an SGD update chained in one ``lax.scan`` of an
  epoch's length (:func:`bench.mnist_epoch.matmul_chain_epoch_s`'s method, for these sizes).

Results are appended to ``bench/results.jsonl``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from bench.common import append_results, median_time, print_table
from bench.mnist_epoch import matmul_peak_gflops
from mlwork.data import from_arrays
from mlwork.train import TrainConfig, compile_run, init_state, prepare
from mlwork.train.hardware import compiler_options


def chain_epoch_s(sizes: tuple[int, ...], batch: int, steps: int, repeats: int = 5) -> float:
    """The MLP's matrix products (forward, weight and input gradients) and an SGD update, ``steps``
    dependent steps in one ``lax.scan``: the matmul work of an epoch at this batch size."""
    keys = jax.random.split(jax.random.key(0), len(sizes))
    ws = [0.01 * jax.random.normal(k, (n_out, n_in), jnp.float32)
          for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=False)]
    xs = jax.random.normal(keys[-1], (16, batch, sizes[0]), jnp.float32)

    def step(ws, i):
        acts = [jax.lax.dynamic_index_in_dim(xs, i % 16, keepdims=False)]
        for w in ws:
            acts.append(acts[-1] @ w.T)
        delta, grads = acts[-1], []
        for layer in reversed(range(len(ws))):
            grads.append(delta.T @ acts[layer])
            if layer:
                delta = delta @ ws[layer]
        return [w - 1e-6 * g for w, g in zip(ws, grads[::-1], strict=True)], None

    run = jax.jit(lambda ws: jax.lax.scan(step, ws, jnp.arange(steps))[0]).lower(ws).compile(
        compiler_options=compiler_options())
    t, _ = median_time(lambda: jax.block_until_ready(run(ws)), repeats=repeats, warmup=1)
    return t


def trainer_epoch(data, batch: int, epochs: int, hidden: str):
    run = prepare(TrainConfig(batch_size=batch, epochs=epochs + 1, devices=1, hidden=hidden), data)
    state = init_state(run)
    compiled = compile_run(run, state)
    train_epoch = compiled.chunks[run.steps_per_epoch]
    times = []
    for _ in range(epochs + 1):  # the first call pays one-off allocation; it is not counted
        t = time.perf_counter()
        state, m = train_epoch(state, *run.train)
        jax.block_until_ready(m["loss"])
        times.append(time.perf_counter() - t)
    examples = run.steps_per_epoch * batch
    r2 = float(run.task.finalize(jax.device_get(m["stats"]), examples)["r2"])
    return compiled.compile_time_s, statistics.median(times[1:]), r2, run.steps_per_epoch, examples


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--examples", type=int, default=200_000, help="rows of the synthetic regression")
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--hidden", default="256,128")
    p.add_argument("--batches", default="128,512")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per batch size (median)")
    args = p.parse_args(argv)
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=args.examples, n_features=args.features, n_informative=args.features // 2,
                           noise=1.0, random_state=0)
    data = from_arrays(x.astype(np.float32), y.astype(np.float32), name="make_regression")
    sizes = (args.features, *(int(h) for h in args.hidden.split(",")), 1)
    flops_per_example = 6 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    peak = matmul_peak_gflops()
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        compile_s, epoch_s, r2, steps, examples = trainer_epoch(data, batch, args.epochs, args.hidden)
        floor_s = flops_per_example * examples / (peak * 1e9)
        chain_s = chain_epoch_s(sizes, batch, steps)
        rows.append({"batch": batch, "examples": examples, "features": args.features,
                     "hidden": args.hidden, "compile_s": round(compile_s, 3), "epoch_s": round(epoch_s, 4),
                     "floor_s": round(floor_s, 4), "x_floor": round(epoch_s / floor_s, 2),
                     "matmuls_s": round(chain_s, 4), "x_matmuls": round(epoch_s / chain_s, 2),
                     "peak_gflops": round(peak, 1), "train_r2_last_epoch": round(r2, 4)})
    print_table(rows, ["batch", "examples", "compile_s", "epoch_s", "floor_s", "x_floor", "matmuls_s", "x_matmuls",
                       "train_r2_last_epoch"])
    append_results("tabular_epoch", rows, notes=f"make_regression {args.examples}x{args.features}, mlp {args.hidden}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
