"""Input checks for the tree models (host side: fitting needs concrete data for binning)."""

from __future__ import annotations

import math
import numbers

import jax
import numpy as np

from mlwork import _validate

#: Largest count or size an argument may take: it becomes an int32 on the device.
INT32_MAX = 2**31 - 1

#: Deepest tree allowed: a depth-D tree holds 2^D leaves in fixed-size arrays.
MAX_DEPTH = 20

#: Deepest tree that ``max_depth=None`` resolves to (4096 leaf slots).
AUTO_MAX_DEPTH = 12


def is_prng_key(x) -> bool:
    """Whether ``x`` is a JAX PRNG key: a typed key array (``jax.random.key``) or a raw
    ``uint32`` key of shape ``(2,)`` (``jax.random.PRNGKey``)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return False
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return True
    return dtype == np.uint32 and getattr(x, "shape", None) == (2,)


def check_not_key(value, name: str, expected: str) -> None:
    """A one-line error when a PRNG key sits where ``name`` belongs (the key is a keyword)."""
    if is_prng_key(value):
        _validate.fail(name, expected, "a PRNG key (pass the key as the keyword argument key=...)")


def resolve_depth(max_depth, n_samples: int) -> int:
    r"""``max_depth`` checked, ``None`` resolved to :math:`\min(12, \max(1, \lceil\log_2 n\rceil))`:
    the depth a balanced tree needs for one leaf per sample, at most 4096 leaf slots."""
    if max_depth is None:
        return min(AUTO_MAX_DEPTH, max(1, math.ceil(math.log2(max(n_samples, 2)))))
    return check_depth(max_depth)


def is_label_dtype(y) -> bool:
    """Integer or boolean targets: class labels (floats are real-valued targets)."""
    if is_prng_key(y):
        return False  # refused by name later, by check_y_shape
    dtype = getattr(y, "dtype", None)
    dtype = np.asarray(y).dtype if dtype is None else dtype
    return bool(np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_))


def infer_task(task, criterion, y) -> str:
    """``task`` as given; ``None`` follows ``criterion`` when given (``"variance"``: regression),
    else the targets: integer or boolean labels are classification, floats regression."""
    if task is not None:
        return task
    if criterion is not None:
        return "regression" if criterion == "variance" else "classification"
    return "classification" if is_label_dtype(y) else "regression"


def check_X(X, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """``X`` as a float32 ``(n, d)`` array; NaN (missing) is allowed, ±inf is not."""
    check_not_key(X, name, "a 2-D numeric array (n_samples, n_features)")
    try:
        arr = np.asarray(X)
    except Exception as e:  # e.g. ragged lists
        raise ValueError(f"{name} must be a 2-D numeric array, got {type(X).__name__}") from e
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one sample and one feature, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains ±inf; only finite values and NaN (missing) are supported")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features but the model was fit on {n_features}")
    return arr


def check_y_shape(y, n_samples: int) -> np.ndarray:
    """``y`` as a 1-D array with one value per row of ``X``; a key, a 2-D ``y`` or a length that
    disagrees with ``X`` is named as such."""
    check_not_key(y, "y", f"a 1-D array of {n_samples} targets, one per row of X")
    y = np.asarray(y)
    if y.ndim != 1:
        _validate.fail("y", f"a 1-D array of {n_samples} targets, one per row of X", f"shape {y.shape}")
    if y.shape[0] != n_samples:
        _validate.fail("X and y", "of the same length (one target per row of X)",
                       f"X with {n_samples} rows and y with {y.shape[0]} values")
    return y


def check_labels(y, n_samples: int, n_classes: int | None = None) -> tuple[np.ndarray, int]:
    """Integer class indices ``0..C−1`` with at least two classes present."""
    y = check_y_shape(y, n_samples)
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
            raise ValueError(f"y must hold integer class indices for classification, got dtype {y.dtype}")
        if np.any(np.abs(y) > np.iinfo(np.int32).max):
            raise ValueError(f"class labels must be integers 0..C-1, got {y[np.argmax(np.abs(y))]}")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ValueError(f"class labels must be non-negative integers 0..C-1, got minimum {y.min()}")
    c = int(y.max()) + 1 if n_classes is None else check_int(n_classes, "n_classes", 2)
    if y.max() >= c:
        raise ValueError(f"class labels must lie in [0, {c - 1}] for n_classes={c}, got {y.max()}")
    if np.unique(y).size < 2:
        raise ValueError(f"y has a single class ({y[0]}); a classifier needs at least two")
    return y.astype(np.int32), c


def check_targets(y, n_samples: int) -> np.ndarray:
    """Finite real regression targets ``(n,)`` as float32."""
    y = check_y_shape(y, n_samples)
    if not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"y must be numeric for regression, got dtype {y.dtype}")
    y = y.astype(np.float32)
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or ±inf; regression targets must be finite")
    return y


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray:
    """Finite non-negative weights ``(n,)`` with a positive sum (ones when ``None``)."""
    if sample_weight is None:
        return np.ones(n_samples, np.float32)
    w = np.asarray(sample_weight, dtype=np.float32)
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and non-negative")
    if not w.sum() > 0:
        raise ValueError("sample_weight must have a positive sum")
    return w


def check_int(value, name: str, low: int, high: int | None = None) -> int:
    """A Python ``int`` from an integer of any type and size (``bool`` refused) in ``[low, high]``,
    ``high`` at most 2³¹−1 (counts and sizes become int32 on the device): a NumPy ``int64``
    keeps its value or is refused by name, never wrapped (:func:`mlwork._validate.check_int`)."""
    return _validate.check_int(value, name, low, INT32_MAX if high is None else min(high, INT32_MAX))


def check_depth(max_depth) -> int:
    """``max_depth`` in ``[1, MAX_DEPTH]``."""
    return check_int(max_depth, "max_depth", 1, MAX_DEPTH)


def check_max_bins(max_bins) -> int | None:
    """``None`` (exact) or 2 to 255 value bins (one more bin holds NaN: uint8 storage)."""
    return None if max_bins is None else check_int(max_bins, "max_bins", 2, 255)


def check_fraction(value, name: str, *, allow_zero: bool = False) -> float:
    """A number in ``(0, 1]`` (``[0, 1]`` with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and (v >= 0 if allow_zero else v > 0) and v <= 1):
        raise ValueError(f"{name} must be in {'[0' if allow_zero else '(0'}, 1], got {value}")
    return v


def check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    """A finite number ``> 0`` (``>= 0`` with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return float(value)


def resolve_max_features(max_features, n_features: int) -> int | None:
    """Features tried per node: None (all), "sqrt", "log2", an int, or a fraction in (0, 1]."""
    if max_features is None:
        return None
    if max_features == "sqrt":
        m = int(math.sqrt(n_features))
    elif max_features == "log2":
        m = int(math.log2(n_features))
    elif isinstance(max_features, numbers.Integral) and not isinstance(max_features, bool):
        m = check_int(max_features, "max_features", 1, n_features)
    elif isinstance(max_features, numbers.Real) and not isinstance(max_features, bool):
        m = int(check_fraction(max_features, "max_features") * n_features)
    else:
        raise ValueError(f"max_features must be None, 'sqrt', 'log2', an int or a fraction, "
                         f"got {max_features!r}")
    m = max(1, m)
    return None if m >= n_features else m


def check_task(task: str, criterion: str | None) -> str:
    """The criterion for ``task`` (default Gini / variance), checked against the task."""
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    allowed = ("gini", "entropy") if task == "classification" else ("variance",)
    criterion = allowed[0] if criterion is None else criterion
    if criterion not in allowed:
        raise ValueError(f"criterion must be one of {allowed} for {task}, got {criterion!r}")
    return criterion


def check_monotonic_cst(monotonic_cst, n_features: int) -> tuple[int, ...] | None:
    """``monotonic_cst`` as a tuple of ``n_features`` ints in {-1, 0, 1} (scikit-learn's name
    and meaning: +1 increasing, -1 decreasing, 0 free); ``None`` when absent or all 0."""
    if monotonic_cst is None:
        return None
    check_not_key(monotonic_cst, "monotonic_cst", f"an array of {n_features} values in {{-1, 0, 1}}")
    try:
        arr = np.asarray(monotonic_cst)
    except Exception as e:  # e.g. ragged lists
        raise ValueError(f"monotonic_cst must be an array of {n_features} values in {{-1, 0, 1}}, "
                         f"got {type(monotonic_cst).__name__}") from e
    if arr.ndim != 1 or arr.shape[0] != n_features:
        raise ValueError(f"monotonic_cst must have one entry per feature ({n_features}), got shape {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or not np.all(np.isin(arr, (-1, 0, 1))):
        raise ValueError(f"monotonic_cst values must be -1, 0 or 1, got {arr.tolist()}")
    cst = tuple(int(v) for v in arr)
    return cst if any(cst) else None


#: Category codes must lie below this when ``max_bins`` is None (the split bitsets hold 256 codes).
MAX_CATEGORIES = 256


def check_categorical_features(categorical_features, n_features: int) -> tuple[bool, ...] | None:
    """``categorical_features`` (scikit-learn's name: feature indices, or a boolean mask of
    length ``n_features``) as a boolean mask tuple; ``None`` when absent or empty."""
    if categorical_features is None:
        return None
    expected = f"feature indices in [0, {n_features}) or a boolean mask of {n_features} values"
    check_not_key(categorical_features, "categorical_features", expected)
    try:
        arr = np.asarray(categorical_features)
    except Exception as e:  # e.g. ragged lists
        raise ValueError(f"categorical_features must be {expected}, got {type(categorical_features).__name__}") from e
    if arr.ndim != 1:
        raise ValueError(f"categorical_features must be {expected}, got shape {arr.shape}")
    if arr.dtype == bool:
        if arr.shape[0] != n_features:
            raise ValueError(f"categorical_features as a mask must have {n_features} values, got {arr.shape[0]}")
        mask = arr
    else:
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"categorical_features must be {expected}, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= n_features or np.unique(arr).size != arr.size):
            raise ValueError(f"categorical_features must be distinct {expected}, got {arr.tolist()}")
        mask = np.zeros(n_features, bool)
        mask[arr.astype(np.int64)] = True
    return tuple(bool(v) for v in mask) if mask.any() else None


def check_category_codes(X: np.ndarray, categorical: tuple[bool, ...], max_bins: int | None) -> None:
    """Every non-missing value of a categorical column is an integer code in
    ``[0, max_bins)`` (``[0, 256)`` for ``max_bins=None``): one bin per category."""
    limit = MAX_CATEGORIES if max_bins is None else min(max_bins, MAX_CATEGORIES)
    for j in np.flatnonzero(categorical):
        col = X[:, j]
        col = col[~np.isnan(col)]
        bad = (col < 0) | (col >= limit) | (col != np.round(col))
        if bad.any():
            raise ValueError(f"X[:, {j}] is a categorical feature: its values must be integer codes in "
                             f"[0, {limit}) (or NaN), got {col[bad][0]!r}")
