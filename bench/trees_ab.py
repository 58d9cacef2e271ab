"""A/B fit times of the tree grower: this checkout against another commit, in one process.

    python -m bench.trees_ab                     # against main
    python -m bench.trees_ab --base ea34687 --repeats 7 --subsample 20000

The base commit is checked out into a temporary ``git worktree`` and its ``mlwork`` imported
after this checkout's (the ``mlwork`` modules are dropped from ``sys.modules`` in between), so
both run in the same process on the same data, alternating fit by fit: machine noise then hits
both alike. Data as in :mod:`bench.trees`: a seeded ``make_classification`` (100k x 50) for the
classification forest, and the same shape from ``make_regression`` (plus an offset of 1000,
which the per-node centring is about) for the regression tree, forest and boosting. JAX runs
on ``--devices`` CPU devices as in :mod:`bench.trees`. The ``bins_table`` and ``bins_pixels`` cases time
the host binning alone (:func:`~mlwork.trees.fit_bins` then :func:`~mlwork.trees.apply_bins`) on
the classification data and on 60k x 784 uint8 pixels (half of them 0, the rest uniform, like an
MNIST-shaped image set); ``gb_pixels`` fits 10-class boosting (depth 6) to those pixels, the
wide case where the deep levels' split search weighs most. Figures: the median steady-state fit of
each side (the first call, with its compilation, is left out), and the ratio ``new / base``
(below 1: faster).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="main", help="commit to compare against (default: main)")
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per side (default 5)")
    parser.add_argument("--subsample", type=int, default=100_000, help="training rows (default 100k)")
    parser.add_argument("--estimators", type=int, default=10, help="trees / rounds (default 10)")
    parser.add_argument("--cases", default="tree,rf_reg,gb_newton,rf_clf",
                        help="comma-separated subset of: tree, rf_reg, gb_newton, gb_first, rf_clf, "
                             "bins_table, bins_pixels, gb_pixels")
    parser.add_argument("--devices", type=int, default=os.cpu_count() or 1,
                        help="JAX CPU devices, as in bench.trees (default: the number of cores)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    args = parser.parse_args(argv)
    if min(args.repeats, args.subsample, args.estimators, args.devices) < 1:
        parser.error("--repeats, --subsample, --estimators and --devices must be positive")
    return args


@contextlib.contextmanager
def base_worktree(commit: str):
    """A temporary ``git worktree`` of ``commit`` (removed afterwards); ``SystemExit`` with one
    line when ``commit`` names no commit of this repository."""
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True,
                         text=True)
    if sha.returncode != 0:
        raise SystemExit(f"--base: {commit!r} is not a commit of this repository")
    with tempfile.TemporaryDirectory(prefix="bench_ab_") as tmp:
        path = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), sha.stdout.strip()], cwd=ROOT,
                       check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def import_trees(path: Path | None):
    """``mlwork.trees`` from ``path`` (None: this checkout), independent of any imported before."""
    for name in [m for m in sys.modules if m == "mlwork" or m.startswith("mlwork.")]:
        del sys.modules[name]
    sys.path.insert(0, str(path or ROOT))
    try:
        import mlwork.trees as trees
    finally:
        sys.path.pop(0)
    return trees


def data(n: int):
    import numpy as np
    from sklearn.datasets import make_classification, make_regression

    Xc, yc = make_classification(n_samples=n, n_features=50, n_informative=20, n_redundant=10, random_state=0)
    Xr, yr = make_regression(n_samples=n, n_features=50, n_informative=20, noise=1.0, random_state=0)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (min(n, 60_000), 784), dtype=np.uint8)
    pixels[rng.random(pixels.shape) < 0.5] = 0
    y_pixels = (pixels[:, ::97].astype(np.int32).sum(1) // 64 % 10).astype(np.int32)
    return (Xc.astype(np.float32), yc.astype(np.int32), Xr.astype(np.float32), (yr + 1000.0).astype(np.float32),
            pixels, y_pixels)


def cases(trees, d, n_est: int):
    import jax

    Xc, yc, Xr, yr, pixels, y_pixels = d
    key = jax.random.key(0)

    def binned(X):
        bins = trees.fit_bins(X)
        return bins, trees.apply_bins(bins, X)

    return {
        "bins_table": lambda: binned(Xc),
        "bins_pixels": lambda: binned(pixels),
        "gb_pixels": lambda: trees.fit_gradient_boosting(pixels, y_pixels, n_est, max_depth=6, second_order=True),
        "tree": lambda: trees.fit_tree(Xr, yr, task="regression", max_depth=10),
        "rf_reg": lambda: trees.fit_random_forest(Xr, yr, n_est, key=key, task="regression", max_depth=10,
                                                  compute_oob=False),
        "gb_newton": lambda: trees.fit_gradient_boosting(Xr, yr, n_estimators=n_est, max_depth=6,
                                                         second_order=True),
        "gb_first": lambda: trees.fit_gradient_boosting(Xr, yr, n_estimators=n_est, max_depth=6),
        "rf_clf": lambda: trees.fit_random_forest(Xc, yc, n_est, key=key, max_depth=10, compute_oob=False),
    }


def train_mse(trees, model, X, y) -> float:
    import numpy as np

    return float(np.mean((np.asarray(trees.predict(model, X), np.float64) - y) ** 2))


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if "jax" not in sys.modules and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
    d = data(args.subsample)
    new = import_trees(None)
    with base_worktree(args.base) as path:  # kept while the base runs (lazy imports)
        old = import_trees(path)
        rows = run(args, d, old, new)
    return report(args, rows)


def run(args, d, old, new) -> list[dict]:
    import jax
    import numpy as np

    impls = {"base": cases(old, d, args.estimators), "new": cases(new, d, args.estimators)}
    rows = []
    for case in args.cases.split(","):
        times = {"base": [], "new": [], "first_base": None, "first_new": None}
        models = {}
        for side, fns in impls.items():  # first calls: tracing and compilation
            t0 = time.perf_counter()
            models[side] = jax.block_until_ready(fns[case]())
            times[f"first_{side}"] = time.perf_counter() - t0
        for _ in range(args.repeats):  # alternate, so the machine's load hits both alike
            for side, fns in impls.items():
                t0 = time.perf_counter()
                jax.block_until_ready(fns[case]())
                times[side].append(time.perf_counter() - t0)
        X, y = {"rf_clf": (d[0], d[1]), "gb_pixels": (d[4], d[5])}.get(case, (d[2], d[3]))
        binning = case.startswith("bins_")
        base_s, new_s = statistics.median(times["base"]), statistics.median(times["new"])
        row = dict(case=case, base_s=base_s, new_s=new_s, ratio=new_s / base_s,
                   base_first_s=times["first_base"], new_first_s=times["first_new"],
                   base_spread=(min(times["base"]), max(times["base"])),
                   new_spread=(min(times["new"]), max(times["new"])),
                   base_train_mse=float("nan") if binning else train_mse(old, models["base"], X, y),
                   new_train_mse=float("nan") if binning else train_mse(new, models["new"], X, y))
        if binning:  # the same bins, bit for bit
            (b_old, x_old), (b_new, x_new) = models["base"], models["new"]
            row["identical"] = bool(np.array_equal(x_old, x_new) and all(
                np.array_equal(np.asarray(getattr(b_old, f)), np.asarray(getattr(b_new, f)))
                for f in ("lower", "upper", "n_bins")))
        print(f"  {case:<10} base {base_s:7.3f}s  new {new_s:7.3f}s  ratio {row['ratio']:.3f}  "
              f"(ranges {row['base_spread'][0]:.3f}-{row['base_spread'][1]:.3f} / "
              f"{row['new_spread'][0]:.3f}-{row['new_spread'][1]:.3f})"
              + (f"  identical={row['identical']}" if binning else ""), flush=True)
        rows.append(row)
    return rows


def report(args, rows) -> int:
    from bench.common import append_results, machine_info, print_table

    print()
    print_table(rows, ["case", "base_s", "new_s", "ratio", "base_first_s", "new_first_s", "base_train_mse",
                       "new_train_mse"])
    info = machine_info()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    notes = (f"base={args.base} n={args.subsample} estimators={args.estimators} repeats={args.repeats} "
             f"load1={load:.2f}")
    print(f"\n{info.get('cpu')} x{info.get('cpu_count')}, jax {info.get('jax')}; {notes}")
    if not args.no_record:
        append_results("trees_ab", rows, notes=notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
