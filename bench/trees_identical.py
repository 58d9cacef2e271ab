"""Bit-identity check of the tree grower across a change: fit every variant, save or compare.

    python -m bench.trees_identical --save /tmp/before.npz     # on the old code
    python -m bench.trees_identical --compare /tmp/before.npz  # on the new code

Fits trees, forests and boosting (classification and regression; monotonic constraints,
categorical features, early stopping, NaN, sample weights, feature sampling, uint8 pixels,
exact bins) on small seeded data sets and flattens every array of every fitted model (and
its predictions, and the :func:`~mlwork.trees.fit_bins` / :func:`~mlwork.trees.apply_bins`
results) into one ``.npz``; ``--compare`` checks each array with ``np.array_equal`` (NaN equal
to NaN) and exits 1 on any difference. Not a benchmark: nothing goes to ``results.jsonl``.
"""

from __future__ import annotations

import argparse
import sys


def models():
    import jax
    import numpy as np
    from sklearn.datasets import make_classification, make_regression

    import mlwork.trees as trees

    rng = np.random.default_rng(0)
    Xc, yc = make_classification(n_samples=3000, n_features=12, n_informative=6, random_state=0)
    Xc = Xc.astype(np.float32)
    Xn = Xc.copy()
    Xn[rng.random(Xn.shape) < 0.05] = np.nan
    Xr, yr = make_regression(n_samples=3000, n_features=12, n_informative=6, noise=1.0, random_state=1)
    Xr, yr = Xr.astype(np.float32), (yr + 1000.0).astype(np.float32)
    Xcat = Xr.copy()
    Xcat[:, 0] = rng.integers(0, 30, len(Xcat))
    ycat = (yr + 40.0 * np.sin(Xcat[:, 0])).astype(np.float32)
    pix = rng.integers(0, 256, (2000, 20), dtype=np.uint8)
    pix[rng.random(pix.shape) < 0.5] = 0
    ypix = (pix[:, :5].astype(np.int32).sum(1) % 3).astype(np.int32)
    big = rng.normal(size=(250_000, 2)).astype(np.float32)  # past QUANTILE_SUBSAMPLE
    w = rng.integers(0, 3, len(Xc)).astype(np.float32)
    mono = [1, -1] + [0] * 10
    key = jax.random.key(3)
    # n·d past tree.UNROLL_MIN_VALUES: the deep levels unrolled, blocks of features per step.
    Xb, yb = make_classification(n_samples=22_000, n_features=50, n_informative=10, random_state=2)
    Xb = Xb.astype(np.float32)
    Xbn = Xb.copy()
    Xbn[rng.random(Xb.shape) < 0.03] = np.nan
    Xbc = Xb.copy()
    Xbc[:, 3] = rng.integers(0, 40, len(Xbc))
    ybr = (Xb[:, :5].sum(1) + np.cos(Xbc[:, 3])).astype(np.float32)
    out = {
        "bins_float": lambda: (trees.fit_bins(Xn), trees.apply_bins(trees.fit_bins(Xn), Xn)),
        "bins_float_w": lambda: trees.fit_bins(Xc, sample_weight=w),
        "bins_float_few": lambda: trees.fit_bins(Xc, max_bins=16),
        "bins_exact": lambda: trees.fit_bins(np.round(Xc, 1), max_bins=None),
        "bins_pix": lambda: (trees.fit_bins(pix), trees.apply_bins(trees.fit_bins(pix), pix)),
        "bins_pix_few": lambda: trees.fit_bins(pix, max_bins=7),
        "bins_pix16": lambda: trees.fit_bins(pix.astype(np.int16) - 100, max_bins=32),
        "bins_big": lambda: trees.fit_bins(big),
        "tree_gini": lambda: trees.fit_tree(Xn, yc, max_depth=6),
        "tree_entropy_w": lambda: trees.fit_tree(Xc, yc, max_depth=5, criterion="entropy", sample_weight=w),
        "tree_reg": lambda: trees.fit_tree(Xr, yr, task="regression", max_depth=7, min_samples_leaf=5),
        "tree_mono": lambda: trees.fit_tree(Xr, yr, task="regression", max_depth=6, monotonic_cst=mono),
        "tree_cat": lambda: trees.fit_tree(Xcat, ycat, task="regression", max_depth=6, categorical_features=[0]),
        "tree_pix": lambda: trees.fit_tree(pix, ypix, max_depth=6),
        "tree_exact": lambda: trees.fit_tree(np.round(Xc, 1), yc, max_depth=4, max_bins=None),
        "rf_clf": lambda: trees.fit_random_forest(Xn, yc, 6, key=key, max_depth=6),
        "rf_reg": lambda: trees.fit_random_forest(Xr, yr, 5, key=key, task="regression", max_depth=6),
        "gb_newton": lambda: trees.fit_gradient_boosting(Xr, yr, 8, max_depth=5, second_order=True),
        "gb_first": lambda: trees.fit_gradient_boosting(Xr, yr, 8, max_depth=4, subsample=0.7, key=key),
        "gb_clf": lambda: trees.fit_gradient_boosting(Xn, yc, 8, max_depth=4, second_order=True),
        "gb_multi": lambda: trees.fit_gradient_boosting(pix, ypix, 5, max_depth=3, second_order=True),
        "gb_mono_cat_es": lambda: trees.fit_gradient_boosting(
            Xcat, ycat, 40, max_depth=4, second_order=True, monotonic_cst=[0, 1] + [0] * 10,
            categorical_features=[0], validation_fraction=0.2, n_iter_no_change=3, key=key),
        "big_tree_nan": lambda: trees.fit_tree(Xbn, yb, max_depth=7),
        "big_rf_clf": lambda: trees.fit_random_forest(Xb, yb, 2, key=key, max_depth=7),
        "big_gb_mono_cat": lambda: trees.fit_gradient_boosting(
            Xbc, ybr, 3, max_depth=6, second_order=True, monotonic_cst=[1, 0, -1] + [0] * 47,
            categorical_features=[3]),
        "big_gb_clf": lambda: trees.fit_gradient_boosting(Xbn, yb, 3, max_depth=6, second_order=True),
    }
    preds = {"big_tree_nan": Xbn, "big_rf_clf": Xb, "big_gb_mono_cat": Xbc, "big_gb_clf": Xbn,
             "tree_gini": Xn, "tree_reg": Xr, "tree_mono": Xr, "tree_cat": Xcat, "tree_pix": pix, "rf_clf": Xn,
             "rf_reg": Xr, "gb_newton": Xr, "gb_first": Xr, "gb_clf": Xn, "gb_multi": pix, "gb_mono_cat_es": Xcat}
    return out, preds


def flatten() -> dict:
    import jax
    import numpy as np

    import mlwork.trees as trees

    fits, preds = models()
    arrays = {}
    for name, fit in fits.items():
        model = fit()
        leaves = jax.tree_util.tree_flatten_with_path(model)[0]
        for path, leaf in leaves:
            arrays[f"{name}{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
        if name in preds:
            arrays[f"{name}.predict"] = np.asarray(trees.predict(model, preds[name]))
        print(f"  {name}: {len(leaves)} arrays", flush=True)
    return arrays


def main(argv=None) -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", help="write the arrays to this .npz")
    group.add_argument("--compare", help="compare with the arrays in this .npz")
    args = parser.parse_args(argv)
    arrays = flatten()
    if args.save:
        np.savez(args.save, **arrays)
        print(f"saved {len(arrays)} arrays to {args.save}")
        return 0
    ref = np.load(args.compare)
    bad = sorted(set(ref.files) ^ set(arrays))
    for k in sorted(set(ref.files) & set(arrays)):
        a, b = ref[k], arrays[k]
        same = a.shape == b.shape and a.dtype == b.dtype and np.array_equal(
            a, b, equal_nan=a.dtype.kind in "fc")
        if not same:
            bad.append(k)
    print(f"compared {len(arrays)} arrays: {len(bad)} differ" + (f": {bad}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
