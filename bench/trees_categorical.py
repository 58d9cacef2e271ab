"""Native categorical splits against one-hot and ordinal encodings: accuracy and fit time.

    python -m bench.trees_categorical
    python -m bench.trees_categorical --train 50000 --rounds 100 --repeats 5

Data (seeded): a feature of ``--categories`` categories whose effect on the log-odds is a random
permutation of evenly spaced values, plus ``--numeric`` standard normal features with small
effects; labels drawn from the logistic model (so the Bayes accuracy is below 1). Models:
gradient boosting with the XGBoost objective (``second_order=True``, λ = 1), ``--rounds`` rounds
of depth ``--depth``, learning rate 0.2, on the feature as it is given to each encoding:
``native`` (``categorical_features=[0]``: set splits), ``ordinal`` (the codes as numbers) and
``onehot`` (one 0/1 column per category). scikit-learn's ``HistGradientBoostingClassifier``
with the same settings, native and one-hot, is the reference (run once). "first" is the first
fit (binning, tracing, compilation, run), "fit" the median steady-state fit; the load average
at the start is recorded with every row (the machines here are shared).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=20_000, help="training rows (default 20k; as many test rows)")
    parser.add_argument("--categories", type=int, default=50, help="categories of the categorical feature")
    parser.add_argument("--numeric", type=int, default=4, help="numeric features besides it")
    parser.add_argument("--rounds", type=int, default=50, help="boosting rounds (default 50)")
    parser.add_argument("--depth", type=int, default=3, help="tree depth (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="timed fits after the first (default 3)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    args = parser.parse_args(argv)
    if min(args.train, args.categories, args.rounds, args.depth, args.repeats) < 1 or args.numeric < 0:
        parser.error("sizes must be positive")
    if args.categories > 255:
        parser.error("--categories must be at most 255 (codes below max_bins)")
    return args


def make_data(n: int, k: int, numeric: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    effect = np.random.default_rng(0).permutation(k) / max(k - 1, 1)  # the same permutation for every split
    codes = rng.integers(0, k, n)
    Z = rng.normal(size=(n, numeric))
    logit = 6.0 * (effect[codes] - 0.5) + Z @ np.linspace(0.5, 0.1, numeric)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int32)
    return np.concatenate([codes[:, None], Z], axis=1).astype(np.float32), y


def one_hot(X, k: int):
    import numpy as np

    return np.concatenate([np.eye(k, dtype=np.float32)[X[:, 0].astype(int)], X[:, 1:]], axis=1)


def main(argv=None) -> list[dict]:
    args = _parse(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"] * 3
    import jax
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from bench.common import append_results, median_time, print_table
    from mlwork import trees

    X, y = make_data(args.train, args.categories, args.numeric, 1)
    Xte, yte = make_data(args.train, args.categories, args.numeric, 2)
    inputs = {"native": (X, Xte, {"categorical_features": [0]}), "ordinal": (X, Xte, {}),
              "onehot": (one_hot(X, args.categories), one_hot(Xte, args.categories), {})}
    rows = []
    for name, (A, B, kw) in inputs.items():
        def fit(A=A, kw=kw):
            model = trees.fit_gradient_boosting(A, y, args.rounds, max_depth=args.depth, learning_rate=0.2,
                                                second_order=True, **kw)
            return jax.block_until_ready(model)

        t0 = time.perf_counter()
        model = fit()
        first = time.perf_counter() - t0
        steady, _ = median_time(fit, repeats=args.repeats, warmup=0)
        acc = float(np.mean(np.asarray(trees.predict(model, B)) == yte))
        rows.append({"library": "mlwork", "encoding": name, "features": A.shape[1], "accuracy": acc,
                     "first_s": round(first, 3), "fit_s": round(steady, 3)})
    for name, (A, B, cats) in {"native": (X, Xte, [0]), "onehot": (inputs["onehot"][0], inputs["onehot"][1], None)
                               }.items():
        hgb = HistGradientBoostingClassifier(max_iter=args.rounds, max_depth=args.depth, learning_rate=0.2,
                                             early_stopping=False, categorical_features=cats, random_state=0)
        t0 = time.perf_counter()
        hgb.fit(A, y)
        fit_s = time.perf_counter() - t0
        rows.append({"library": "sklearn-hgb", "encoding": name, "features": A.shape[1],
                     "accuracy": float(np.mean(hgb.predict(B) == yte)), "first_s": round(fit_s, 3),
                     "fit_s": round(fit_s, 3)})
    for r in rows:
        r.update(train=args.train, categories=args.categories, rounds=args.rounds, depth=args.depth,
                 loadavg=" ".join(load))
    print_table(rows, ["library", "encoding", "features", "accuracy", "first_s", "fit_s", "loadavg"])
    if not args.no_record:
        append_results("trees_categorical", rows,
                       notes=f"{args.categories}-category permuted effect + {args.numeric} numeric, "
                             f"{args.train} train/test rows; load average at start {' '.join(load)} "
                             "(shared 2-core machine: times are under contention)")
    return rows


if __name__ == "__main__":
    main()
