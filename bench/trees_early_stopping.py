"""Early stopping of gradient boosting: mlwork against XGBoost's ``early_stopping_rounds``.

    uv run --no-sync python -m bench.trees_early_stopping                       # XGBoost if importable
    uv run --no-sync python -m bench.trees_early_stopping --xgboost-python /tmp/xgbvenv/bin/python

XGBoost is not a dependency of mlwork: ``--xgboost-python`` runs it in another environment
(e.g. ``python3.11 -m venv /tmp/xgbvenv && /tmp/xgbvenv/bin/pip install xgboost-cpu numpy``),
on the very same rows, passed through a temporary ``.npz``.

Data: ``make_classification(20000, 20, n_informative=10, flip_y=0.1, random_state=0)``, split
once (mlwork's seeded stratified split, key 0, 20% validation); both libraries train on the same
16,000 rows and watch the same 4,000. Models: up to ``--rounds`` (500) rounds of depth 6 at
learning rate 0.3 (XGBoost's defaults), second-order trees with λ = 1, 255 bins
(``max_bin=256`` in XGBoost: 255 value bins + missing), patience 10 on the validation log loss,
2 threads. The stop rules differ: mlwork's is scikit-learn's (no loss of the last 10 below the one
10 rounds earlier, ``tol=0`` here), XGBoost's counts rounds since the best so far; both keep the
rounds up to the best validation loss.

Reported: rounds computed and kept, validation log loss of the kept model (computed here from
``predict_proba`` in float64, the same formula for both), the fit time (first call including
compilation, then the median of ``--repeats`` steady calls), and for mlwork the time of the full
``--rounds`` without early stopping in the same process (the saving).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

XGB_PARAMS = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.3, "lambda": 1.0, "max_bin": 256,
              "tree_method": "hist", "nthread": 2, "eval_metric": "logloss"}


def _logloss(y, p1):
    import numpy as np

    p1 = np.clip(np.asarray(p1, np.float64), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p1) + (1 - y) * np.log1p(-p1)))


def _xgboost_worker(path: str, rounds: int, repeats: int) -> dict:
    """Fit XGBoost on the arrays of ``path``; runs in whichever environment has xgboost."""
    import numpy as np
    import xgboost

    d = np.load(path)
    times = []
    for _ in range(1 + repeats):
        t0 = time.perf_counter()  # the DMatrix (XGBoost's binning) counts, as mlwork's binning does
        train, val = xgboost.DMatrix(d["X"], d["y"]), xgboost.DMatrix(d["X_val"], d["y_val"])
        curves: dict = {}
        booster = xgboost.train(XGB_PARAMS, train, num_boost_round=rounds, evals=[(val, "validation")],
                                early_stopping_rounds=10, evals_result=curves, verbose_eval=False)
        times.append(time.perf_counter() - t0)
    kept = int(booster.best_iteration) + 1
    p1 = booster.predict(val, iteration_range=(0, kept))
    return {"library": f"xgboost {xgboost.__version__}", "rounds_computed": len(curves["validation"]["logloss"]),
            "rounds_kept": kept, "val_logloss": _logloss(d["y_val"], p1),
            "first_s": round(times[0], 3), "fit_s": round(float(np.median(times[1:])), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3, help="steady fits after the first (median)")
    parser.add_argument("--xgboost-python", default=None, help="python of an environment with xgboost")
    parser.add_argument("--xgboost-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    args = parser.parse_args(argv)
    if args.xgboost_worker:
        print(json.dumps(_xgboost_worker(args.xgboost_worker, args.rounds, args.repeats)))
        return 0

    import jax
    import numpy as np
    from sklearn.datasets import make_classification

    from bench.common import append_results, median_time, print_table
    from mlwork import trees
    from mlwork.trees import _early_stopping

    X, y = make_classification(20000, 20, n_informative=10, flip_y=0.1, random_state=0)
    X, y = X.astype(np.float32), y.astype(np.int32)
    train, val = _early_stopping.split(jax.random.key(0), len(y), 0.2, y)
    X_tr, y_tr, X_val, y_val = X[train], y[train], X[val], y[val]
    settings = {"max_depth": 6, "learning_rate": 0.3, "second_order": True, "reg_lambda": 1.0, "max_bins": 255}

    def fit_es():
        m = trees.fit_gradient_boosting(X_tr, y_tr, args.rounds, eval_set=(X_val, y_val), n_iter_no_change=10,
                                        tol=0.0, **settings)
        return jax.block_until_ready(m)

    def fit_full():
        return jax.block_until_ready(trees.fit_gradient_boosting(X_tr, y_tr, args.rounds, **settings))

    t0 = time.perf_counter()
    model = fit_es()
    first = time.perf_counter() - t0
    es_s, _ = median_time(fit_es, repeats=args.repeats, warmup=0)
    t0 = time.perf_counter()
    fit_full()
    full_first = time.perf_counter() - t0
    full_s, _ = median_time(fit_full, repeats=max(1, args.repeats // 2), warmup=0)
    p1 = np.asarray(trees.predict_proba(model, X_val))[:, 1]
    rows = [{"library": "mlwork", "rounds_computed": model.n_iter, "rounds_kept": model.best_iteration,
             "val_logloss": _logloss(y_val, p1), "first_s": round(first, 3), "fit_s": round(es_s, 3),
             "full_rounds_s": round(full_s, 3), "full_first_s": round(full_first, 3),
             "es_over_full": round(es_s / full_s, 3)}]

    xgb = None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, X=X_tr, y=y_tr, X_val=X_val, y_val=y_val)
        python = args.xgboost_python
        if python is None:
            try:
                import xgboost  # noqa: F401
                python = sys.executable
            except ImportError:
                print("xgboost not importable here and no --xgboost-python: XGBoost skipped")
        if python is not None:
            out = subprocess.run([python, str(Path(__file__).resolve()), "--xgboost-worker", path,
                                  "--rounds", str(args.rounds), "--repeats", str(args.repeats)],
                                 capture_output=True, text=True, check=True)
            xgb = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(xgb)
    if xgb is not None:
        rows[0]["logloss_vs_xgboost"] = round(rows[0]["val_logloss"] / xgb["val_logloss"], 4)
        rows[0]["time_vs_xgboost"] = round(rows[0]["fit_s"] / xgb["fit_s"], 2)
    print_table(rows)
    load = Path("/proc/loadavg").read_text().split()[:3]
    notes = (f"make_classification 20000x20 (16000 train / 4000 validation, stratified), depth 6, lr 0.3, "
             f"patience 10, up to {args.rounds} rounds, 2 threads; loadavg {' '.join(load)} at the end "
             "(shared 2-core machine: times are under contention)")
    print(notes)
    if not args.no_record:
        append_results("trees_early_stopping", rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
