"""Issue 29: gradient-boosting fits that are not padded give the models of the commit before the
row buckets and chunked rounds, bit for bit; padded fits differ by float32 rounding, measured here.

    # 1. with the checkout of the older commit first on the path: save its models
    PYTHONPATH=/path/to/old/checkout python bench/trees_unpadded_identity.py save /tmp/before.npz
    # 2. in this checkout: compare (unpadded: bit-equal), and padded against unpadded
    python -m bench.trees_unpadded_identity compare /tmp/before.npz

Every configuration fits small data (300 rows) with bucketing switched off
(``_padding.BUCKET_MAX_ROWS = 0``, the code path of data above the threshold), plus one fit of
``BUCKET_MAX_ROWS + 1000`` rows that is above it by itself. ``compare`` prints, per
configuration, whether every array of the model (trees, F0, loss curves) is bit-equal to the
saved one, then the largest difference of a padded fit's scores from the unpadded fit's.
"""

from __future__ import annotations

import sys

import jax
import numpy as np

from mlwork import trees
from mlwork.trees import boosting


def _data(n, seed=0, d=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[rng.uniform(size=(n, d)) < 0.05] = np.nan
    X[:, 5] = rng.integers(0, 7, n)  # a categorical feature (codes 0..6)
    signal = np.nan_to_num(X[:, 0] + X[:, 1] * X[:, 2]) + 0.5 * (X[:, 5] % 3 == 1)
    return X, signal


def configs(n_big: int):
    X, s = _data(300)
    y2 = (s > 0).astype(np.int64)
    y3 = np.digitize(s, [-0.5, 0.5])
    yr = s.astype(np.float32)
    Xv, sv = _data(120, seed=1)
    mono = [1, 0, 0, 0, 0, 0]
    base = dict(max_depth=3)
    return {
        "logistic": (X, y2, 30, base),
        "squared": (X, yr, 30, dict(base, loss="squared", min_samples_leaf=3)),
        "softmax": (X, y3, 20, base),
        "second_order": (X, y2, 30, dict(base, second_order=True, reg_lambda=2.0, gamma=0.1, min_child_weight=0.5)),
        "second_order_lambda0": (X, y2, 30, dict(base, second_order=True, reg_lambda=0.0)),
        "subsample": (X, y2, 30, dict(base, subsample=0.7, key=jax.random.key(3))),
        "no_line_search": (X, y2, 20, dict(base, line_search=False, learning_rate=0.3)),
        "early_stopping": (X, y2, 200, dict(base, validation_fraction=0.2, n_iter_no_change=5, learning_rate=0.5)),
        "eval_set_curves": (X, y2, 40, dict(base, eval_set=(Xv, (sv > 0).astype(np.int64)))),
        "early_stopping_patience_60": (X, yr, 100, dict(base, loss="squared", eval_set=(Xv, sv.astype(np.float32)),
                                                        n_iter_no_change=60, learning_rate=0.5)),
        "monotonic": (X, y2, 30, dict(base, monotonic_cst=mono)),
        "categorical": (X, y2, 30, dict(base, categorical_features=[5])),
        "monotonic_categorical_early_stopping": (X, yr, 120, dict(base, loss="squared", monotonic_cst=mono,
                                                                  categorical_features=[5], second_order=True,
                                                                  validation_fraction=0.2, n_iter_no_change=4)),
        "above_threshold": (*_data(n_big, seed=2)[:1], (_data(n_big, seed=2)[1] > 0).astype(np.int64), 40, base),
    }


def _arrays(model, X) -> dict[str, np.ndarray]:
    """Every array of the model, and its raw scores on ``X`` (prediction is compared too)."""
    leaves = jax.tree_util.tree_leaves_with_path(model)
    out = {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves if hasattr(v, "shape")}
    out["scores"] = np.asarray(boosting.boosting_scores(model, X))
    return out


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    try:
        from mlwork.trees import _padding
    except ImportError:  # the older commit: no buckets
        _padding = None
    n_big = 9192 if _padding is None else _padding.BUCKET_MAX_ROWS + 1000
    cases = configs(n_big)
    if mode == "save":
        out = {}
        for name, (X, y, t, kw) in cases.items():
            for key, a in _arrays(trees.fit_gradient_boosting(X, y, t, **kw), X).items():
                out[f"{name}|{key}"] = a
        np.savez(path, **out)
        return
    saved = np.load(path)
    limit = _padding.BUCKET_MAX_ROWS
    print(f"BUCKET_MAX_ROWS = {limit}")
    for name, (X, y, t, kw) in cases.items():
        _padding.BUCKET_MAX_ROWS = 0
        unpadded = trees.fit_gradient_boosting(X, y, t, **kw)
        _padding.BUCKET_MAX_ROWS = limit
        arrays = _arrays(unpadded, X)
        equal = all(np.array_equal(a, saved[f"{name}|{k}"], equal_nan=True) for k, a in arrays.items())
        equal &= {k.split("|", 1)[1] for k in saved.files if k.startswith(name + "|")} == set(arrays)
        line = f"{name:40s} unpadded bit-equal to before: {equal}"
        if X.shape[0] <= limit:
            padded = trees.fit_gradient_boosting(X, y, t, **kw)
            a = np.asarray(boosting.boosting_scores(padded, X), np.float64)
            b = np.asarray(boosting.boosting_scores(unpadded, X), np.float64)
            same_shape = padded.trees.feature.shape == unpadded.trees.feature.shape
            structure = same_shape and np.array_equal(np.asarray(padded.trees.feature),
                                                      np.asarray(unpadded.trees.feature))
            rel = np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))) if a.shape == b.shape else np.inf
            line += (f"; padded ({padded.trees.feature.shape[0]} vs {unpadded.trees.feature.shape[0]} rounds) "
                     f"same split features: {structure}, max |dF|/max(1,|F|) = {rel:.2e}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
