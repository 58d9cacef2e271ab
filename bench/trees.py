"""Fit and predict times of mlwork.trees against scikit-learn, XGBoost and LightGBM.

    python -m bench.trees                                        # scikit-learn baselines only
    uv run --with xgboost --with lightgbm python -m bench.trees  # with the boosting libraries

Data: a seeded ``make_classification`` (100k train + 20k test, 50 features) and MNIST-shaped
60k x 784 uint8 data — Fashion-MNIST from ``/usr/share/datasets/fashion-mnist`` when present,
else random uint8 pixels with random labels (timing only; the accuracy is then chance).
Models: a random forest of 100 trees of depth 10 (``sqrt`` features per node; scikit-learn with
``n_jobs=2``) and gradient boosting of 100 rounds of depth 6 (learning rate 0.1; ours with the
XGBoost objective, ``second_order=True``, λ = 1; XGBoost ``tree_method="hist"``; LightGBM with
64 leaves; all with 2 threads).

JAX runs on as many CPU devices as ``--devices`` (default: the core count) through
``XLA_FLAGS=--xla_force_host_platform_device_count``, set before JAX is imported: forests
split their trees over the devices, boosting splits each tree's feature search. "first" is the
first call (host binning + tracing + compilation + run), "compile" the tracing, lowering and
XLA compilation inside it (from ``jax.monitoring``), "fit" the median steady-state call (the
baselines run once). Prediction is on the test set; ratios are fit time over the baseline's
(scikit-learn for forests, XGBoost for boosting).
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=os.cpu_count() or 1,
                        help="JAX CPU devices (default: the number of cores)")
    parser.add_argument("--threads", type=int, default=2, help="threads for the baselines (default 2)")
    parser.add_argument("--datasets", default="synthetic,mnist",
                        help="comma-separated subset of: synthetic, mnist")
    parser.add_argument("--models", default="rf,gb", help="comma-separated subset of: rf, gb")
    parser.add_argument("--estimators", type=int, default=100, help="trees / rounds (default 100)")
    parser.add_argument("--repeats", type=int, default=1, help="steady-state fits after the first")
    parser.add_argument("--subsample", type=int, default=0,
                        help="use only this many training rows (0: all; for quick checks)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.threads < 1 or args.estimators < 1 or args.repeats < 1:
        parser.error("--devices, --threads, --estimators and --repeats must be positive")
    bad = set(args.datasets.split(",")) - {"synthetic", "mnist"} | set(args.models.split(",")) - {"rf", "gb"}
    if bad:
        parser.error(f"unknown dataset/model names: {sorted(bad)}")
    return args


def _idx(path: Path):
    import numpy as np

    with gzip.open(path) as f:
        data = f.read()
    offset = 16 if data[3] == 3 else 8
    return np.frombuffer(data, np.uint8, offset=offset)


def load_mnist_shaped():
    """Fashion-MNIST (60k/10k) if installed, else random uint8 data of the same shape."""
    import numpy as np

    if FASHION.exists():
        Xtr = _idx(FASHION / "train-images-idx3-ubyte.gz").reshape(-1, 784)
        ytr = _idx(FASHION / "train-labels-idx1-ubyte.gz").astype(np.int32)
        Xte = _idx(FASHION / "t10k-images-idx3-ubyte.gz").reshape(-1, 784)
        yte = _idx(FASHION / "t10k-labels-idx1-ubyte.gz").astype(np.int32)
        return "fashion-mnist 60k x 784 uint8", Xtr, ytr, Xte, yte
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (70_000, 784), dtype=np.uint8)
    y = rng.integers(0, 10, 70_000).astype(np.int32)
    name = "random uint8 60k x 784 (no Fashion-MNIST found; accuracy is chance)"
    return name, X[:60_000], y[:60_000], X[60_000:], y[60_000:]


def load_synthetic():
    import numpy as np
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=120_000, n_features=50, n_informative=20, n_redundant=10,
                               random_state=0)
    X = X.astype(np.float32)
    return "make_classification 100k x 50", X[:100_000], y[:100_000].astype(np.int32), X[100_000:], y[100_000:]


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_compile_seconds = [0.0]


def _on_duration(event: str, duration: float, **_) -> None:
    if event in _COMPILE_EVENTS:
        _compile_seconds[0] += duration


def bench_dataset(args, ds: str, Xtr, ytr, Xte, yte) -> list[dict]:
    """Time every requested model on one data set; one row per implementation."""
    import jax
    import numpy as np

    from bench.common import median_time
    from mlwork import trees

    rows, n_est, k = [], args.estimators, int(ytr.max()) + 1

    def measure(label, model, fit, predict, baseline=False):
        _compile_seconds[0] = 0.0
        m, first = _timed(fit)
        compile_s = _compile_seconds[0]  # tracing + lowering + XLA compilation in the first call
        steady = first if baseline else median_time(fit, repeats=args.repeats, warmup=0)[0]
        pred = np.asarray(predict(m))
        t_pred = median_time(lambda: np.asarray(predict(m)), repeats=3, warmup=0)[0]
        acc = float(np.mean(pred == yte))
        row = dict(dataset=ds, model=model, impl=label, fit_s=steady, first_s=first,
                   compile_s=None if baseline else compile_s, predict_s=t_pred, accuracy=acc)
        print(f"  {model:>2} {label:<22} fit {steady:8.2f}s  first {first:8.2f}s  "
              f"predict {t_pred:6.3f}s  acc {acc:.4f}", flush=True)
        rows.append(row)
        return row

    if "rf" in args.models:
        from sklearn.ensemble import RandomForestClassifier

        ours = measure("mlwork", "rf", lambda: jax.block_until_ready(trees.fit_random_forest(
            Xtr, ytr, n_est, key=jax.random.key(0), max_depth=10, compute_oob=False)),
            lambda m: trees.predict(m, Xte))
        sk = measure(f"sklearn n_jobs={args.threads}", "rf", lambda: RandomForestClassifier(
            n_est, max_depth=10, n_jobs=args.threads, random_state=0).fit(Xtr, ytr),
            lambda m: m.predict(Xte), baseline=True)
        ours["ratio_vs_baseline"] = ours["fit_s"] / sk["fit_s"]
    if "gb" in args.models:
        loss = "logistic" if k == 2 else "softmax"
        ours = measure("mlwork second_order", "gb", lambda: jax.block_until_ready(trees.fit_gradient_boosting(
            Xtr, ytr, loss=loss, n_estimators=n_est, learning_rate=0.1, max_depth=6, second_order=True,
            reg_lambda=1.0, min_child_weight=1.0)), lambda m: trees.predict(m, Xte))
        base = None
        try:
            import xgboost

            base = measure("xgboost hist", "gb", lambda: xgboost.XGBClassifier(
                n_estimators=n_est, max_depth=6, learning_rate=0.1, tree_method="hist", max_bin=256,
                n_jobs=args.threads, random_state=0).fit(Xtr, ytr), lambda m: m.predict(Xte), baseline=True)
        except ImportError:
            print("  xgboost not importable: skipped (uv run --with xgboost ...)")
        try:
            import lightgbm

            measure("lightgbm", "gb", lambda: lightgbm.LGBMClassifier(
                n_estimators=n_est, max_depth=6, num_leaves=64, learning_rate=0.1, max_bin=255,
                n_jobs=args.threads, verbose=-1, random_state=0).fit(Xtr, ytr),
                lambda m: m.predict(Xte), baseline=True)
        except ImportError:
            print("  lightgbm not importable: skipped (uv run --with lightgbm ...)")
        if base is not None:
            ours["ratio_vs_baseline"] = ours["fit_s"] / base["fit_s"]
    return rows


def run(args) -> list[dict]:
    rows = []
    loaders = {"synthetic": load_synthetic, "mnist": load_mnist_shaped}
    for ds in args.datasets.split(","):
        name, Xtr, ytr, Xte, yte = loaders[ds]()
        if args.subsample:
            Xtr, ytr = Xtr[: args.subsample], ytr[: args.subsample]
        print(f"\n## {name} ({Xtr.shape[0]} train, {Xte.shape[0]} test, {int(ytr.max()) + 1} classes)",
              flush=True)
        for row in bench_dataset(args, ds, Xtr, ytr, Xte, yte):
            rows.append({**row, "data": name})
    return rows


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if "jax" not in sys.modules and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
    import jax

    from bench.common import append_results, machine_info, print_table

    jax.monitoring.register_event_duration_secs_listener(_on_duration)
    print(f"JAX devices: {jax.devices()}")
    rows = run(args)
    print()
    print_table(rows, ["dataset", "model", "impl", "fit_s", "compile_s", "first_s", "predict_s", "accuracy",
                       "ratio_vs_baseline"])
    info = machine_info()
    print(f"\n{info.get('cpu')} x{info.get('cpu_count')}, jax {info.get('jax')}, {len(jax.devices())} devices")
    if not args.no_record:
        append_results("trees", rows, notes=f"devices={len(jax.devices())} threads={args.threads}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
