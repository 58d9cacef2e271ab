r"""Feature binning: the "hist" representation that makes split search a histogram.

Each feature :math:`j` is cut into at most ``max_bins`` ordered bins. Bin :math:`b` holds the
training values :math:`x` with :math:`e_{j,b-1} < x \le e_{j,b}`, where the edges :math:`e` lie
half-way between the largest training value of one bin and the smallest of the next. A split
"bin :math:`\le b`" is then the same partition of the training data as the threshold test
:math:`x \le t` for any :math:`t` in the gap between those two values, which is how a fitted tree
stores it (a float threshold on the raw feature).

* ``max_bins=None`` (**exact**): every distinct value gets its own bin, so every midpoint between
  consecutive distinct values is a candidate threshold — the search scikit-learn's
  ``DecisionTreeClassifier`` does. Meant for small data (the bin count is the largest number of
  distinct values of any feature).
* ``max_bins=B`` (**hist**, default 255): features with more than ``B`` distinct values are cut
  at ``B − 1`` quantiles (midpoints between order statistics), as XGBoost's and LightGBM's
  ``hist`` methods and scikit-learn's ``HistGradientBoosting*`` do.

Missing values (NaN) go to one extra bin with index ``B`` (the number of value bins), so a
binned matrix fits in ``uint8`` for ``B ≤ 255``. Split search tries sending that bin left and
right and remembers the better side per node (scikit-learn's HistGradientBoosting rule).

Binning runs once, on the host in NumPy (float64), before anything is compiled: it needs the
data's values, exactly like the quantile sketches of XGBoost/LightGBM. The binned matrix is
stored **feature-major** (``(n_features, n_samples)``) because histogram building loops over
features and reads one contiguous row per feature.

Reference: Ke et al., "LightGBM", NeurIPS 2017, section 2 (histogram-based split finding);
Chen & Guestrin, "XGBoost", KDD 2016, section 3.3.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import check_int

Array = jax.Array

#: Rows used to find quantile cut points (scikit-learn's HistGradientBoosting uses 2e5 too).
QUANTILE_SUBSAMPLE = 200_000


@flax.struct.dataclass
class Bins:
    """Per-feature bins of the training data.

    Attributes:
      lower: ``(d, B)`` smallest training value in each bin (``+inf`` for unused bins).
      upper: ``(d, B)`` largest training value in each bin (``+inf`` for unused bins).
      n_bins: ``(d,)`` number of value bins each feature uses (1 for a constant feature).
      max_bins: ``B``, the number of value bins (static); NaN goes to bin ``B``.
      has_missing: whether the training data had any NaN (static).

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> bins = trees.fit_bins(np.array([[0.0], [1.0], [1.0], [3.0], [np.nan]]), max_bins=None)
      >>> bins.n_bins.tolist(), bins.edges.tolist(), bins.missing_bin, bins.has_missing
      ([3], [[0.5, 2.0]], 3, True)
    """

    lower: Array
    upper: Array
    n_bins: Array
    max_bins: int = flax.struct.field(pytree_node=False)
    has_missing: bool = flax.struct.field(pytree_node=False)

    @property
    def edges(self) -> np.ndarray:
        """``(d, B − 1)`` thresholds between consecutive bins (``+inf`` past the last bin), NumPy."""
        return split_threshold(np.asarray(self.upper)[:, :-1], np.asarray(self.lower)[:, 1:])

    @property
    def missing_bin(self) -> int:
        """The bin index of NaN, ``B`` (one past the value bins)."""
        return self.max_bins


def split_threshold(left_max, right_min):
    r"""The threshold between two sorted values :math:`a < b`: :math:`t = (a + b)/2` in float32,
    or :math:`a` when rounding would make :math:`t = b` (scikit-learn's rule), so that
    :math:`a \le t < b`. ``+inf`` when :math:`b` is ``+inf`` (no value on the right)."""
    xp = jnp if isinstance(left_max, jax.Array) else np
    a = xp.asarray(left_max, dtype=xp.float32)
    b = xp.asarray(right_min, dtype=xp.float32)
    mid = a / 2 + b / 2
    mid = xp.where(mid >= b, a, mid)
    return xp.where(xp.isinf(b), xp.float32(np.inf), mid)


def _small_int(X: np.ndarray) -> bool:
    """Integers of at most 16 bits (e.g. uint8 pixels): binned through a lookup table."""
    return X.dtype.kind in "biu" and X.dtype.itemsize <= 2


def _sorted_percentiles(at, n: int, percentiles: np.ndarray) -> np.ndarray:
    r"""``np.percentile(a, percentiles, method="midpoint")`` of a sorted sample ``a`` of size
    ``n`` whose order statistics ``a[k]`` (``k`` an index array) ``at`` gives, without the
    partition ``np.percentile`` runs even on sorted input (most of the binning time of wide
    data). The same float64 arithmetic as NumPy's: with :math:`v = \tfrac12(\lfloor (n-1)q
    \rfloor + \lceil (n-1)q \rceil)`, the result is :math:`a_{\lfloor v \rfloor}` where
    :math:`v` is whole and :math:`b - (b - a)/2` (:math:`a, b` the neighbours) where it is not
    (Hyndman & Fan 1996; ``test_binning`` checks it equals ``np.percentile`` bit for bit)."""
    q = np.true_divide(percentiles, 100)
    v = 0.5 * (np.floor((n - 1) * q) + np.ceil((n - 1) * q))
    prev = np.floor(v)
    nxt = prev + 1
    above = v >= n - 1
    prev[above] = n - 1
    nxt[above] = n - 1
    a, b = at(prev.astype(np.intp)), at(nxt.astype(np.intp))
    gamma = np.where(v % 1 == 0, 0.0, 0.5)
    diff = b - a
    out = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5, casting="unsafe")
    return out


def _feature_cuts(col: np.ndarray, max_bins: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of one column grouped into bins: (lower, upper) per bin."""
    if _small_int(col):  # counting, not sorting: the sorted column is the values repeated
        low = int(col.min())
        counts = np.bincount(col.astype(np.int64) - low)
        present = np.flatnonzero(counts)
        values = (present + low).astype(np.float32)
        ordered = None
    else:
        ordered = np.sort(col)  # NaN sorts last
        if ordered.size and np.isnan(ordered[-1]):
            ordered = ordered[: np.searchsorted(ordered, np.nan)]
        if ordered.size == 0:
            return np.zeros(1), np.zeros(1)
        distinct = np.empty(ordered.size, bool)
        distinct[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=distinct[1:])
        values = ordered[distinct]
    if max_bins is None or values.size <= max_bins:
        return values, values
    percentiles = np.linspace(0, 100, max_bins + 1)[1:-1]
    if ordered is None:  # small integers: the order statistics from the cumulative counts
        cum = np.cumsum(counts[present])
        cuts = _sorted_percentiles(lambda k: values[np.searchsorted(cum, k, side="right")], int(cum[-1]),
                                   percentiles)
    elif ordered.size > QUANTILE_SUBSAMPLE:
        col = col.astype(np.float32)
        sample = np.sort(np.random.default_rng(0).choice(col[~np.isnan(col)], QUANTILE_SUBSAMPLE, replace=False))
        cuts = _sorted_percentiles(sample.__getitem__, sample.size, percentiles)
    else:
        cuts = _sorted_percentiles(ordered.__getitem__, ordered.size, percentiles)
    cuts = np.unique(cuts)
    # Bin of each distinct value: the number of cut points strictly below it.
    which = np.searchsorted(cuts, values, side="left")
    used, first = np.unique(which, return_index=True)
    last = np.r_[first[1:], values.size] - 1
    return values[first], values[last]


def fit_bins(X, max_bins: int | None = 255, sample_weight=None) -> Bins:
    r"""Bins for the columns of ``X``, computed on the host (NumPy).

    With :math:`v_1 < \dots < v_m` the distinct values of a feature, ``max_bins=None`` (exact)
    gives one bin per value and the edges :math:`e_b = (v_b + v_{b+1})/2` (every midpoint, as
    scikit-learn's splitter tries); with ``max_bins=B`` a feature of more than :math:`B` distinct
    values is cut at its :math:`B - 1` quantiles :math:`q_{k/B}` (midpoint percentiles, from at
    most ``QUANTILE_SUBSAMPLE`` rows), so each bin holds about :math:`n/B` samples. Rows whose
    ``sample_weight`` is 0 take no part in the bins (their values set no edge, so no threshold),
    exactly as if they had been left out of ``X``; :func:`apply_bins` still gives them a bin.
    Each column is sorted once, from a feature-major copy (a strided column of a row-major
    matrix costs a cache miss per value); integer columns of at most 16 bits are counted instead
    of sorted. The bins are the same as for the float32 values.

    Args:
      X: ``(n, d)`` features, any real dtype (compared in float32); NaN marks a missing value.
        Not checked here (:func:`fit_tree` and the other fits check it).
      max_bins: :math:`B`, value bins per feature, 2 to 65535 (uint16 bins, the missing one
        included); ``None`` for one bin per distinct value.
      sample_weight: ``(n,)`` weights; only which are positive matters. ``None``: every row.

    Returns:
      The :class:`Bins`, arrays on the device (``(d, B)`` lower and upper bin values).

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> bins = trees.fit_bins(np.array([[0.0], [1.0], [1.0], [3.0]]), max_bins=None)
      >>> bins.edges.tolist()  # midpoints between the distinct values 0, 1, 3
      [[0.5, 2.0]]
      >>> trees.fit_bins(np.arange(100.0).reshape(100, 1), max_bins=4).n_bins.tolist()
      [4]

    Reference: Ke et al., "LightGBM", NeurIPS 2017, Algorithm 1 (histogram-based split finding);
    Chen & Guestrin, "XGBoost", KDD 2016, section 3.3 (quantile candidate splits).
    """
    if max_bins is not None:
        max_bins = check_int(max_bins, "max_bins", 2, 65535)
    X = np.asarray(X)
    if not _small_int(X):
        X = X.astype(np.float32, copy=False)  # thresholds are compared in float32, as scikit-learn does
    if sample_weight is not None:
        w = np.asarray(sample_weight)
        # Judged in float32, as the fit weighs the rows (a float64 1e-50 weighs nothing there);
        # NaN, negative and non-numeric weights are refused later, by the caller's checks.
        kept = w.astype(np.float32) > 0 if w.dtype.kind in "biuf" else np.ones(w.shape, bool)
        if w.shape == X.shape[:1] and kept.any() and not kept.all():
            X = X[kept]
    XT = np.ascontiguousarray(X.T)
    cuts = [_feature_cuts(col, max_bins) for col in XT]
    width = max(len(lo) for lo, _ in cuts) if max_bins is None else max_bins
    lower = np.full((X.shape[1], width), np.inf, np.float32)
    upper = np.full((X.shape[1], width), np.inf, np.float32)
    for j, (lo, hi) in enumerate(cuts):
        lower[j, : len(lo)] = lo
        upper[j, : len(hi)] = hi
    n_bins = np.array([len(lo) for lo, _ in cuts], np.int32)
    return Bins(lower=jax.device_put(lower), upper=jax.device_put(upper), n_bins=jax.device_put(n_bins),
                max_bins=int(width), has_missing=not _small_int(X) and bool(np.isnan(X).any()))


def bin_dtype(max_bins: int):
    """The smallest unsigned integer type that holds bins ``0 .. max_bins`` (missing bin included)."""
    return np.uint8 if max_bins < 256 else (np.uint16 if max_bins < 65536 else np.uint32)


def apply_bins(bins: Bins, X) -> np.ndarray:
    r"""The binned matrix, feature-major, on the host (NumPy).

    A value :math:`x` of feature :math:`j` goes to bin :math:`b` with
    :math:`e_{j,b-1} < x \le e_{j,b}` (the edges of :attr:`Bins.edges`; a binary search per
    value), NaN to bin :math:`B` (:attr:`Bins.missing_bin`). Integer input of at most 16 bits is
    binned through a per-feature lookup table over its dtype's range (the same bins as its
    float32 values, without a search per value).

    Args:
      bins: the :class:`Bins` of the training data (:func:`fit_bins`).
      X: ``(n, d)`` features, any real dtype, NaN for missing; ``d`` as at :func:`fit_bins`.

    Returns:
      ``(d, n)`` bins, the smallest unsigned dtype holding ``0..B`` (``uint8`` for
      :math:`B \le 255`).

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X = np.array([[0.0], [1.0], [1.0], [3.0], [np.nan]])
      >>> trees.apply_bins(trees.fit_bins(X, max_bins=None), X).tolist()  # NaN: bin B = 3
      [[0, 1, 1, 2, 3]]
    """
    X = np.asarray(X)
    small = _small_int(X)
    XT = np.ascontiguousarray((X if small else X.astype(np.float32, copy=False)).T)  # contiguous columns
    edges = bins.edges
    out = np.empty(XT.shape, bin_dtype(bins.max_bins))
    if small:
        low = 0 if X.dtype == bool else int(np.iinfo(X.dtype).min)
        grid = np.arange(low, low + (2 if X.dtype == bool else 1 << (8 * X.dtype.itemsize)), dtype=np.float32)
    for j, col in enumerate(XT):
        if small:
            table = np.searchsorted(edges[j], grid, side="left").astype(out.dtype)
            out[j] = table[col.astype(np.intp) - low if low or col.dtype == bool else col]
            continue
        out[j] = np.searchsorted(edges[j], col, side="left")  # NaN sorts past every edge
        missing = np.isnan(col)
        if missing.any():
            out[j][missing] = bins.max_bins
    return out
