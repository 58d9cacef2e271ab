"""Binning: exact bins, quantile cut points (NumPy oracle), NaN bin, thresholds consistent with bins."""

import jax
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlwork import trees
from mlwork.trees.binning import _sorted_percentiles, apply_bins, fit_bins, split_threshold


def test_exact_bins_are_distinct_values_with_midpoint_edges():
    X = np.array([[1.0, 5.0], [3.0, 5.0], [1.0, 5.0], [2.0, 5.0]], np.float32)
    bins = trees.fit_bins(X, max_bins=None)
    assert bins.max_bins == 3 and list(np.asarray(bins.n_bins)) == [3, 1]
    np.testing.assert_array_equal(np.asarray(bins.edges)[0], [1.5, 2.5])
    assert np.all(np.isinf(np.asarray(bins.edges)[1]))  # a constant feature has no edge
    np.testing.assert_array_equal(trees.apply_bins(bins, X), [[0, 2, 0, 1], [0, 0, 0, 0]])


def test_quantile_bins_follow_numpy_percentiles_and_nan_gets_its_own_bin():
    x = np.arange(1000, dtype=np.float32)
    bins = trees.fit_bins(x[:, None], max_bins=4)
    cuts = np.percentile(x, [25, 50, 75], method="midpoint")
    edges = np.asarray(bins.edges)[0]
    # Each edge lies in the gap of the data around the percentile cut.
    for e, c in zip(edges, cuts, strict=True):
        assert abs(e - c) <= 1.0
    Xn = np.array([[0.0], [np.nan], [999.0]], np.float32)
    binned = trees.apply_bins(bins, Xn)
    assert binned.dtype == np.uint8 and list(binned[0]) == [0, 4, 3]  # 4 = the missing bin


@settings(max_examples=60, deadline=None)
@given(values=hnp.arrays(np.float32, st.integers(1, 400), elements=st.floats(-1e6, 1e6, width=32)),
       max_bins=st.integers(2, 300), repeats=st.integers(1, 4))
def test_sorted_percentiles_equal_numpy_midpoint_percentiles_bit_for_bit(values, max_bins, repeats):
    """The partition-free quantiles of the binning are NumPy's (the oracle), on sorted samples
    with ties (``repeats``) and as order statistics from cumulative counts (the integer path)."""
    a = np.sort(np.repeat(values, repeats))
    p = np.linspace(0, 100, max_bins + 1)[1:-1]
    expected = np.percentile(a, p, method="midpoint")
    got = _sorted_percentiles(a.__getitem__, a.size, p)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    distinct, counts = np.unique(a, return_counts=True)
    cum = np.cumsum(counts)
    from_counts = _sorted_percentiles(lambda k: distinct[np.searchsorted(cum, k, side="right")], a.size, p)
    assert np.array_equal(from_counts, expected)


def test_midpoint_threshold_never_reaches_the_right_value():
    a, b = np.float32(1.0), np.nextafter(np.float32(1.0), np.float32(2.0))
    t = split_threshold(a, b)
    assert a <= t < b
    assert np.isinf(split_threshold(np.float32(3.0), np.float32(np.inf)))


@settings(max_examples=20)
@given(hnp.arrays(np.float32, (40, 2), elements=st.floats(-1e3, 1e3, width=32)),
       st.sampled_from([None, 3, 16]))
def test_raw_thresholds_route_training_data_like_bins(X, max_bins):
    bins = trees.fit_bins(X, max_bins=max_bins)
    binned = trees.apply_bins(bins, X)
    edges = np.asarray(bins.edges)
    for j in range(X.shape[1]):
        for b in range(int(bins.n_bins[j]) - 1):
            np.testing.assert_array_equal(X[:, j] <= edges[j, b], binned[j] <= b)


@settings(max_examples=20, deadline=None)
@given(dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.uint16, np.bool_]), seed=st.integers(0, 2**16),
       max_bins=st.sampled_from([None, 4, 255]))
def test_small_integer_input_bins_as_its_float32_values(dtype, seed, max_bins):
    """The counting / lookup-table path for ≤16-bit integers equals the sorting path."""
    rng = np.random.default_rng(seed)
    info = (0, 2) if dtype == np.bool_ else (np.iinfo(dtype).min, np.iinfo(dtype).max + 1)
    X = rng.integers(*info, size=(300, 3)).astype(dtype)
    a, b = fit_bins(X, max_bins), fit_bins(X.astype(np.float32), max_bins)
    for field in ("lower", "upper", "n_bins"):
        np.testing.assert_array_equal(np.asarray(getattr(a, field)), np.asarray(getattr(b, field)))
    assert a.max_bins == b.max_bins and not a.has_missing
    np.testing.assert_array_equal(apply_bins(a, X), apply_bins(b, X.astype(np.float32)))


def test_zero_weight_rows_set_no_bin_edge():
    # Rows of weight 0 are as if left out of the bins (exact and quantile modes): a zero weight
    # cannot move a threshold (gradient boosting places its thresholds at bin edges).
    rng = np.random.default_rng(18)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    w = rng.integers(0, 3, size=300).astype(np.float32)
    for max_bins in (None, 16):
        ours, without = fit_bins(X, max_bins, sample_weight=w), fit_bins(X[w > 0], max_bins)
        for field in ("lower", "upper", "n_bins"):
            np.testing.assert_array_equal(np.asarray(getattr(ours, field)), np.asarray(getattr(without, field)))
        assert not np.array_equal(np.asarray(fit_bins(X, max_bins).upper), np.asarray(ours.upper))
    # weights are judged as the fit sees them, in float32: a float64 1e-50 is a zero weight there
    tiny = np.where(w > 0, w, 1e-50).astype(np.float64)
    np.testing.assert_array_equal(np.asarray(fit_bins(X, 16, sample_weight=tiny).upper),
                                  np.asarray(fit_bins(X[w > 0], 16).upper))
    # every row still gets a bin, zero-weight ones included
    binned = apply_bins(fit_bins(X, 16, sample_weight=w), X)
    assert binned.shape == (3, 300) and binned.max() < 16


def test_boosting_with_zero_weights_equals_boosting_without_those_rows():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 + 0.1 * rng.normal(size=120)).astype(np.float32)
    w = (rng.uniform(size=120) > 0.3).astype(np.float32)
    kept = w > 0
    a = trees.fit_gradient_boosting(X, y, loss="squared", n_estimators=3, max_depth=2, max_bins=None,
                                    sample_weight=w)
    b = trees.fit_gradient_boosting(X[kept], y[kept], loss="squared", n_estimators=3, max_depth=2, max_bins=None)
    # What the guarantee is about: every tree cuts the training rows into the same leaves, and the
    # model predicts the same there. Which feature makes a cut is not: where two features separate
    # the training rows alike, their gains tie up to float32 round-off and the CPU picks one (the
    # zero-weight rows may then fall on either side, as they would for rows never seen).
    for t in range(3):
        tree_a, tree_b = (jax.tree.map(lambda v, t=t: v[t, 0], m.trees) for m in (a, b))
        leaves_a = np.asarray(trees.tree_leaf(tree_a, X[kept]))
        leaves_b = np.asarray(trees.tree_leaf(tree_b, X[kept]))
        pairs = set(zip(leaves_a.tolist(), leaves_b.tolist(), strict=True))
        assert len(pairs) == len(set(leaves_a.tolist())) == len(set(leaves_b.tolist())), t  # one-to-one
    # leaf values summed in another order (float32 round-off)
    np.testing.assert_allclose(np.asarray(trees.predict(a, X[kept])), np.asarray(trees.predict(b, X[kept])),
                               rtol=1e-5, atol=1e-6)
