"""Steady-state epoch time and compile time on 60,000 MNIST-shaped images, vs the deck's PyTorch.

    uv run --with /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl \\
        python -m bench.mnist_epoch [--epochs 5] [--models mlp,cnn] [--batches 64,128,512]

(any CPU build of torch works in ``--with``; without torch the PyTorch columns are empty and the
table says so). For each model and batch size:

* mlwork: the trainer's own compiled epoch, exactly what ``experiments.mnist`` runs (a
  ``lax.scan`` over a seeded permutation, normalisation on the device, Adam with the step
  schedule, dropout 0.2, the per-epoch monitor), compile time measured separately
  (``lower().compile()``), then the median of ``--epochs`` timed epochs;
* PyTorch: the deck's pipeline — a ``DataLoader`` over pre-normalised tensors with
  ``shuffle=True``, the same architecture, Adam, ``zero_grad → forward → loss → backward →
  step`` with the deck's per-step ``loss.item()`` bookkeeping — median of ``--epochs`` epochs;
* the FLOP floor from DESIGN.md: the MLP's forward+backward FLOPs per epoch divided by this
  machine's float32 matmul peak, measured here (a 2048² product in XLA);
* the MLP's matmuls alone: the step's eight products and an SGD update chained in one
  ``lax.scan`` of an epoch's length (:func:`matmul_chain_epoch_s`) — what XLA needs for the
  matrix work at this batch size, a floor that counts small-matrix efficiency.

The data are the 60,000 Fashion-MNIST training images when ``dataset-fashion-mnist`` is
installed (same shape as MNIST), else random uint8 images of that shape; the table says which.
As in the trainer, 10% are held out for validation, so an epoch is 54,000 images for both
frameworks (PyTorch gets the very same training split).
Results are appended to ``bench/results.jsonl``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from bench.common import append_results, median_time, print_table
from mlwork.data.idx import load_split
from mlwork.data.sources import SYSTEM_PATHS, Dataset
from mlwork.train import TrainConfig, compile_run, init_state, prepare
from mlwork.train.hardware import compiler_options

MLP_SIZES = (784, 256, 128, 10)
MEAN, STD = 0.1307, 0.3081


def mlp_flops_per_example(sizes=MLP_SIZES) -> float:
    """Forward + backward ≈ 3 × the forward pass's 2·MACs (DESIGN.md: ~1.4 MFLOP for 784-256-128-10)."""
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return 3 * 2 * macs


def load_images(n: int = 60_000) -> tuple[np.ndarray, np.ndarray, str]:
    folder = SYSTEM_PATHS["fashion_mnist"]
    if folder.is_dir():
        x, y = load_split(folder, "train")
        return x[:n], y[:n].astype(np.int32), f"Fashion-MNIST train ({folder})"
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32),
            "random uint8 (dataset-fashion-mnist not installed)")


def matmul_peak_gflops(n: int = 2048, repeats: int = 7) -> float:
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(jnp.dot)
    t, _ = median_time(lambda: f(a, b).block_until_ready(), repeats=repeats, warmup=2)
    return 2 * n**3 / t / 1e9


def matmul_chain_epoch_s(batch: int, steps: int, repeats: int = 5) -> float:
    """Seconds for ``steps`` steps of the MLP step's matrix products alone — 3 forward, 3 weight
    gradients, 2 input gradients — plus a plain SGD update, chained in one ``lax.scan`` (each step
    depends on the last, so nothing is hoisted): what XLA on this machine needs for the matmuls
    of an epoch at this batch size, with no activation, dropout, loss, Adam or data handling."""
    keys = jax.random.split(jax.random.key(0), 4)
    ws = [0.01 * jax.random.normal(k, (n_out, n_in), jnp.float32)
          for k, n_in, n_out in zip(keys, MLP_SIZES[:-1], MLP_SIZES[1:], strict=False)]
    xs = jax.random.normal(keys[3], (16, batch, MLP_SIZES[0]), jnp.float32)

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


def jax_epoch(kind: str, dataset: Dataset, batch: int, epochs: int):
    """The trainer's own compiled epoch, exactly as ``experiments.mnist`` runs it (Adam, the step
    schedule, dropout 0.2, on-device normalisation, the per-epoch monitor), compiled ahead of time;
    then the median of ``epochs`` epochs after one untimed warm-up epoch."""
    run = prepare(TrainConfig(model=kind, batch_size=batch, epochs=epochs + 1, devices=1), dataset)
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
    accuracy = float(run.task.finalize(jax.device_get(m["stats"]), examples)["accuracy"])
    return compiled.compile_time_s, statistics.median(times[1:]), accuracy, examples, run


def torch_epoch(kind: str, images: np.ndarray, labels: np.ndarray, batch: int, epochs: int):
    """The deck's PyTorch pipeline (sections 20-21); None when torch is not importable."""
    try:
        import torch
        from torch import nn as tnn
        from torch.utils.data import DataLoader, TensorDataset
    except ImportError:
        return None
    torch.manual_seed(0)
    x = torch.tensor(images, dtype=torch.float32).div_(255).sub_(MEAN).div_(STD).unsqueeze(1)
    loader = DataLoader(TensorDataset(x, torch.tensor(labels, dtype=torch.long)), batch_size=batch, shuffle=True)
    if kind == "mlp":
        model = tnn.Sequential(tnn.Flatten(), tnn.Linear(784, 256), tnn.ReLU(), tnn.Dropout(0.2),
                               tnn.Linear(256, 128), tnn.ReLU(), tnn.Dropout(0.2), tnn.Linear(128, 10))
    else:  # the same architecture as mlwork.nn.cnn()
        def block(cin, c):
            return [tnn.Conv2d(cin, c, 3, padding=1, bias=False), tnn.BatchNorm2d(c), tnn.ReLU(), tnn.MaxPool2d(2)]
        model = tnn.Sequential(*block(1, 32), *block(32, 64), tnn.Flatten(), tnn.Linear(64 * 7 * 7, 128, bias=False),
                               tnn.BatchNorm1d(128), tnn.ReLU(), tnn.Dropout(0.2), tnn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = tnn.CrossEntropyLoss()

    def train_epoch():
        model.train()
        total_loss, correct = 0.0, 0
        for data, target in loader:
            optimizer.zero_grad()
            output = model(data)
            loss = criterion(output, target)
            loss.backward()
            optimizer.step()
            total_loss += loss.item()
            correct += (output.argmax(dim=1) == target).sum().item()
        return correct / len(loader.dataset)

    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        train_epoch()
        times.append(time.perf_counter() - t)
    return statistics.median(times), torch.__version__, torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per configuration (median)")
    p.add_argument("--torch-epochs", type=int, default=3)
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--batches", default="64,128,512", help="MLP batch sizes")
    p.add_argument("--cnn-batch", type=int, default=128)
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args(argv)
    models = args.models.split(",")
    images, labels, source = load_images()
    dataset = Dataset("fashion_mnist", images, labels.astype(np.uint8), images[:1000], labels[:1000].astype(np.uint8),
                      source=source)
    peak = matmul_peak_gflops()
    print(f"data: {source}; {len(labels)} images (90% trained on per epoch); JAX {jax.__version__} on "
          f"{jax.devices()[0].device_kind}; matmul peak {peak:.0f} GFLOP/s", flush=True)

    rows = []
    configs = [("mlp", int(b)) for b in args.batches.split(",")] if "mlp" in models else []
    if "cnn" in models:
        configs.append(("cnn", args.cnn_batch))
    for kind, batch in configs:
        compile_s, epoch_s, acc, examples, run = jax_epoch(kind, dataset, batch, args.epochs)
        train_x, train_y = np.asarray(run.train[0]), np.asarray(run.train[1])
        baseline = None if args.no_torch else torch_epoch(kind, train_x, train_y, batch, args.torch_epochs)
        floor_s = mlp_flops_per_example() * examples / (peak * 1e9) if kind == "mlp" else None
        matmuls_s = matmul_chain_epoch_s(batch, examples // batch) if kind == "mlp" else None
        row = {"model": kind, "batch": batch, "examples_per_epoch": examples, "mlwork_compile_s": compile_s,
               "mlwork_epoch_s": epoch_s, "train_acc_last_epoch": acc,
               "pytorch_epoch_s": baseline[0] if baseline else None,
               "speedup_vs_pytorch": baseline[0] / epoch_s if baseline else None,
               "flop_floor_s": floor_s, "x_floor": epoch_s / floor_s if floor_s else None,
               "matmuls_only_s": matmuls_s, "x_matmuls_only": epoch_s / matmuls_s if matmuls_s else None,
               "matmul_peak_gflops": peak}
        rows.append(row)
        print(f"  {kind} batch {batch}: compile {compile_s:.2f} s, epoch {epoch_s:.3f} s"
              + (f", PyTorch {baseline[0]:.3f} s ({baseline[0] / epoch_s:.1f}x)" if baseline else "")
              + (f", {epoch_s / floor_s:.2f}x the FLOP floor, {epoch_s / matmuls_s:.2f}x its matmuls alone "
                 f"({matmuls_s:.3f} s)" if floor_s else ""), flush=True)
    torch_note = "PyTorch not importable: no baseline" if args.no_torch or rows and rows[0]["pytorch_epoch_s"] is None \
        else "PyTorch baseline in the same process"
    print()
    print_table(rows, ["model", "batch", "mlwork_compile_s", "mlwork_epoch_s", "pytorch_epoch_s", "speedup_vs_pytorch",
                       "flop_floor_s", "x_floor", "matmuls_only_s", "x_matmuls_only"])
    print(f"matmul peak {peak:.0f} GFLOP/s; FLOP floor = {mlp_flops_per_example() / 1e6:.2f} MFLOP per example "
          "× examples per epoch / peak")
    print(f"\n{source}; {torch_note}; threads: XLA default, torch {os.environ.get('OMP_NUM_THREADS', 'default')}")
    options = compiler_options() or "XLA defaults"
    print(f"mlwork compiler options: {options}")
    append_results("mnist_epoch", rows, notes=f"{source}; {torch_note}; peak {peak:.0f} GFLOP/s; "
                                               f"mlwork compiler options: {options}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
