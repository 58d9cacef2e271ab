r"""Row buckets: small training sets padded with zero-weight rows so that fits of nearby sizes
share one compiled program (issue 29).

A compiled program is specialised to its input shapes, so every distinct number of training
rows costs a compilation: about 2 s for a small boosting fit on a CPU, some 20 times the run time
of a fit on scikit-learn's breast-cancer data (569 rows). Cross-validation folds differ by a row
or two, and a refit on all the data by a fold's share. Fits of at most :data:`BUCKET_MAX_ROWS`
rows therefore pad their rows up to :func:`row_bucket` of their count, eight buckets per octave
(at most 1/8 more rows, so at most 1/8 more work), with copies of the first row whose sample
weight is 0. Larger fits are not padded: there the run time (linear in the rows) is larger than
the compile time, and an unpadded fit computes exactly what it computed before buckets existed.

A zero-weight row changes no split and no leaf in exact arithmetic: every statistic the grower
sums is weighted (its histogram entries, node totals and leaf sums get ``0 * value = +0.0``),
the sample counts of ``min_samples_leaf`` count only rows of positive weight, and the bins come
from the real rows only (binning is done before padding). Copies of a real row keep every loss,
gradient and Hessian finite, so ``0 * value`` is exactly 0 (a padding of zeros could meet a loss
undefined at ``y = 0``). In float32, though, XLA groups the terms of a sum over rows according
to the row count, so a sum over padded rows can differ from the unpadded sum in its last bits;
those differences can reach a tied split or an early-stopping decision. Padded fits therefore
match unpadded ones to float32 rounding, not bit for bit (the tests state the tolerance).
"""

from __future__ import annotations

import numpy as np

#: Fits of at most this many training rows are padded to a :func:`row_bucket`. Up to here the
#: compile time of a boosting fit (seconds) exceeds its run time on a CPU (about 0.1 s per 569
#: rows x 30 features x 100 rounds of depth 3, linear in the rows), so sharing programs wins;
#: above it the padding's extra work (up to 1/8) would cost more than a compile saves.
BUCKET_MAX_ROWS = 8192
#: Row counts up to this are padded to a power of two (at least this many rows).
MIN_BUCKET = 8
#: Buckets per octave above that: at most ``1 / STEPS_PER_OCTAVE`` padding.
STEPS_PER_OCTAVE = 8


def row_bucket(n: int) -> int:
    r"""The padded row count for ``n`` rows: the smallest multiple of :math:`2^{b-4}` that is at
    least ``n``, for :math:`2^{b-1} < n \le 2^b` (eight buckets per octave), and at least
    :data:`MIN_BUCKET`.

    >>> [row_bucket(n) for n in (1, 9, 17, 379, 380, 455, 569)]
    [8, 16, 18, 384, 384, 480, 576]
    """
    if n <= 2 * MIN_BUCKET:
        return max(MIN_BUCKET, 1 << max(n - 1, 0).bit_length())
    step = 1 << ((n - 1).bit_length() - STEPS_PER_OCTAVE.bit_length())
    return -(-n // step) * step


def bucketed(n: int) -> int:
    """The row count a fit of ``n`` rows runs with: :func:`row_bucket` up to
    :data:`BUCKET_MAX_ROWS` rows, else ``n`` itself."""
    return row_bucket(n) if n <= BUCKET_MAX_ROWS else n


def pad_rows(n_padded: int, *columns: np.ndarray, axis: int = 0) -> list[np.ndarray]:
    """Each array padded along ``axis`` to ``n_padded`` entries with copies of its first entry."""
    out = []
    for a in columns:
        a = np.asarray(a)
        extra = n_padded - a.shape[axis]
        first = np.take(a, [0], axis=axis)
        out.append(np.concatenate([a, np.repeat(first, extra, axis=axis)], axis=axis) if extra else a)
    return out


def pad_weights(n_padded: int, w: np.ndarray) -> np.ndarray:
    """``w`` padded with zeros to ``n_padded`` entries (float32)."""
    w = np.asarray(w, np.float32)
    return np.concatenate([w, np.zeros(n_padded - w.shape[0], np.float32)])
