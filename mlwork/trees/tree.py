r"""Decision trees (deck section 16) as fixed-size array pytrees.

A tree of depth :math:`D` is stored in heap order: internal node :math:`i` has children
:math:`2i+1` (the "yes" branch, :math:`x_f \le t`) and :math:`2i+2`, there are :math:`2^D - 1`
internal slots and :math:`2^D` leaf slots. A node that does not split has ``feature = -1`` and
``threshold = +inf`` and sends everything left, so prediction is always exactly :math:`D`
gathers and compares — a branch-free loop that ``jit`` compiles once per shape and ``vmap``
batches over whole forests.

Splits maximise the deck's criteria: information gain with entropy in bits
:math:`H(S) = -\sum_c p_c \log_2 p_c`, Gini impurity :math:`1 - \sum_c p_c^2`, or variance
reduction for regression; leaves predict class proportions or the mean. Fitting bins the
features once on the host (:mod:`mlwork.trees.binning`) and runs one compiled program
(``mlwork.trees._grow.grow()``).

Missing values: NaN in ``X`` is supported. Each split learns which side NaN goes to (the side
with the better gain when the node has NaNs in training, else the side with more weight), as in
scikit-learn's ``HistGradientBoosting*`` and ``DecisionTree*`` (≥ 1.3).

Reference: Breiman, Friedman, Olshen & Stone, *Classification and Regression Trees* (1984).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import concrete
from mlwork.trees import _checks, _deprecated, _mappings
from mlwork.trees._grow import Grown, GrowSpec, feature_parallel, grow, run_feature_parallel, weight_of
from mlwork.trees.binning import Bins, apply_bins, fit_bins

Array = jax.Array


@flax.struct.dataclass
class Tree:
    """A fitted tree (or a stack of trees with leading batch axes, as inside an ensemble).

    Attributes:
      feature: ``(..., 2^D − 1)`` int32 split feature, −1 where the node does not split.
      threshold: ``(..., 2^D − 1)`` float32; ``x[feature] <= threshold`` goes left.
      missing_left: ``(..., 2^D − 1)`` bool; where NaN goes.
      gain: ``(..., 2^D − 1)`` weighted impurity decrease :math:`W_t i(t) - W_L i(L) - W_R i(R)`.
      impurity: ``(..., 2^D − 1)`` node impurity (Gini, entropy in bits, or variance).
      weight: ``(..., 2^D − 1)`` total sample weight reaching the node.
      value: ``(..., 2^D, K)`` leaf values: class probabilities (classification), the mean
        (regression) or the raw leaf score (boosting).
      leaf_weight: ``(..., 2^D)`` sample weight reaching each leaf.
      categories: ``None`` (no categorical feature), or ``(..., 2^D − 1, 8)`` uint32 bitsets:
        at a categorical split (``threshold`` NaN) the category codes :math:`c < 256` going left
        are the set bits, bit ``c % 32`` of word ``c // 32``; zero at other nodes.
      kind: ``"classification"``, ``"regression"`` or ``"boosting"`` (static).
      criterion: the split criterion (static).
      n_features: number of input features (static).

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0, 0, 0, 1, 1, 1])
      >>> tree = trees.fit_tree(X, y, max_depth=1)
      >>> tree.depth, tree.feature.tolist(), tree.threshold.tolist()  # x <= 2.5 goes left
      (1, [0], [2.5])
      >>> tree.gain.tolist(), tree.value.tolist()  # 6 * Gini(3, 3) - 0 - 0; pure leaves
      ([3.0], [[1.0, 0.0], [0.0, 1.0]])
    """

    feature: Array
    threshold: Array
    missing_left: Array
    gain: Array
    impurity: Array
    weight: Array
    value: Array
    leaf_weight: Array
    categories: Array | None = None
    kind: str = flax.struct.field(pytree_node=False, default="classification")
    criterion: str = flax.struct.field(pytree_node=False, default="gini")
    n_features: int = flax.struct.field(pytree_node=False, default=0)

    @property
    def depth(self) -> int:
        """:math:`D`, the number of levels (``2^D − 1`` internal slots), from the arrays' shape."""
        return int(np.log2(self.feature.shape[-1] + 1))


class Prepared(NamedTuple):
    """Training data ready for the grower: binned, feature-major, on the device."""

    X: np.ndarray     # (n, d) float32, NaN = missing
    bins: Bins
    XbT: Array        # (d, n) uint8/uint16 bins
    lower: Array      # (d, B + 1) padded with +inf
    upper: Array


def prepare(X, max_bins: int | None, sample_weight=None, categorical_features=None) -> Prepared:
    """Check ``X``, bin it on the host (rows of zero ``sample_weight`` set no bin edge) and move
    the binned matrix to the device. A categorical feature's codes (checked) are its own bins:
    one bin per code present, as each code is a distinct value below ``max_bins``."""
    raw = np.asarray(X) if isinstance(X, np.ndarray) else None  # uint8 pixels bin fastest as they are
    X = _checks.check_X(X)
    _mappings.release_near_limit()  # every fit may compile: stay clear of the kernel's mapping limit
    categorical = _checks.check_categorical_features(categorical_features, X.shape[1])
    if categorical is not None:
        _checks.check_category_codes(X, categorical, max_bins)
    src = raw if raw is not None and raw.dtype.kind in "biu" and raw.shape == X.shape else X
    bins = fit_bins(src, _checks.check_max_bins(max_bins), sample_weight)
    pad = np.full((X.shape[1], 1), np.inf, np.float32)
    lower = np.concatenate([np.asarray(bins.lower), pad], 1)
    upper = np.concatenate([np.asarray(bins.upper), pad], 1)
    # device_put, not jnp.asarray: the latter compiles a small program for every new shape.
    return Prepared(X, bins, jax.device_put(apply_bins(bins, src)), jax.device_put(lower), jax.device_put(upper))


def leaf_values(spec: GrowSpec, grown: Grown, default: Array | None = None,
                prior: Array | None = None) -> Array:
    r"""Leaf values ``(2^D, K)`` from summed leaf statistics.

    Args:
      default: regression (``variance``) only: the tree's weighted target mean, the value of
        a leaf without weight (without it, such a leaf keeps its parent's mean).
      prior: classification only: ``(K,)`` class distribution for a tree with zero total weight
        (e.g. a bootstrap sample of zero-weight rows only); default uniform.

    A leaf with zero weight takes the value of the tree's root (its class distribution, or the
    tree mean ``default``): the tree's own prior, never ``0/0``. Boosting (``newton``) leaves
    are :math:`-G/(H+\lambda)`, and 0 (no step) where :math:`H + \lambda = 0`. With monotonic
    constraints every regression value is then clipped to its leaf's bounds
    (``Grown.leaf_bounds``).
    """
    s = grown.leaf_stats
    if spec.classification:
        c = s[:, : spec.n_classes]
        w = jnp.sum(c, axis=1, keepdims=True)
        total = jnp.sum(c, axis=0)
        if prior is None:
            prior = jnp.full(spec.n_classes, 1.0 / spec.n_classes, jnp.float32)
        mass = jnp.sum(total)
        root = jnp.where(mass > 0, total / jnp.where(mass > 0, mass, 1.0), prior)
        return jnp.where(w > 0, c / jnp.where(w > 0, w, 1.0), root[None, :])
    c = grown.leaf_shift[:, None]  # the leaves' statistics are sums about c (their own mean)
    if spec.criterion == "variance":
        w = s[:, 1:2]
        mean = c + s[:, 0:1] / jnp.where(w > 0, w, 1.0)
        return clip_to_bounds(grown, mean if default is None else jnp.where(w > 0, mean, default))
    denom = s[:, 1:2] + spec.reg_lambda
    g = s[:, 0:1] + c * s[:, 1:2]
    return clip_to_bounds(grown, jnp.where(denom > 0, -g / jnp.where(denom > 0, denom, 1.0), 0.0))


def clip_to_bounds(grown: Grown, value: Array) -> Array:
    """Leaf values ``(2^D, 1)`` clipped to the leaves' monotonic-constraint bounds (as they are
    without constraints)."""
    if grown.leaf_bounds is None:
        return value
    return jnp.clip(value, grown.leaf_bounds[0][:, None], grown.leaf_bounds[1][:, None])


def weighted_prior(spec: GrowSpec, target: Array, w: Array) -> Array:
    """The ensemble's fallback value for an empty tree: the class distribution ``(K,)`` under
    ``w`` (classification) or the weighted mean of ``target`` (regression, a scalar)."""
    total = jnp.sum(w)
    if spec.classification:
        return jax.ops.segment_sum(w, target, num_segments=spec.n_classes) / total
    return jnp.sum(w * target) / total


def to_tree(spec: GrowSpec, grown: Grown, value: Array, kind: str, n_features: int) -> Tree:
    """A :class:`Tree` from the grower's arrays and its leaf values."""
    return Tree(feature=grown.feature, threshold=grown.threshold, missing_left=grown.missing_left,
                gain=grown.gain, impurity=grown.impurity, weight=grown.weight, value=value,
                leaf_weight=weight_of(spec, grown.leaf_stats.T), categories=grown.categories, kind=kind,
                criterion=spec.criterion,
                n_features=n_features)


@_deprecated.key_keyword
def fit_tree(X, y, *, key: Array | None = None, task: str | None = None, criterion: str | None = None,
             max_depth: int | None = None, min_samples_split: int = 2, min_samples_leaf: int = 1,
             max_features=None, max_bins: int | None = 255, sample_weight=None,
             n_classes: int | None = None, monotonic_cst=None, categorical_features=None) -> Tree:
    r"""Fit one decision tree, growing level by level to ``max_depth``.

    At every node the split :math:`(f, t)` maximises the weighted impurity decrease

    .. math:: \Delta(f, t) = W_t\, i(t) - W_L\, i(L) - W_R\, i(R)

    (the deck's information gain times :math:`W_t`, the node's total weight; :math:`i` is
    :func:`gini_impurity`, :func:`entropy_impurity` or :func:`variance_impurity`)
    over all features, or over ``max_features`` features drawn per node without replacement.
    A node stays a leaf when it is pure, has fewer than ``min_samples_split`` samples, or no
    split leaves ``min_samples_leaf`` samples on both sides.

    Every fit of :mod:`mlwork.trees` is called ``fit_*(X, y, [n_estimators], *, key=None, ...)``;
    0.1's ``fit_*(key, X, y, ...)`` still works until 0.3, with a ``DeprecationWarning``.

    Args:
      X: ``(n, d)`` features (float32 after conversion); NaN marks a missing value.
      y: ``(n,)`` class indices ``0..C−1`` (classification) or real targets (regression).
      key: PRNG key for the feature draws of ``max_features`` (default ``jax.random.key(0)``:
        a fit is reproducible; it is unused without ``max_features``).
      task: ``"classification"`` or ``"regression"``; ``None`` (default) follows ``criterion``
        when given, else the targets: integer or boolean ``y`` is classification, float ``y``
        regression (pass ``task="classification"`` for class labels stored as floats).
      criterion: ``"gini"`` (default) or ``"entropy"`` for classification; ``"variance"``.
      max_depth: depth :math:`D \ge 1`; the tree has :math:`2^D` leaf slots. ``None``
        (default): :math:`\min(12, \lceil\log_2 n\rceil)`, the depth a balanced tree needs
        for one leaf per sample (scikit-learn grows until pure; fixed-size arrays cap it at
        4096 leaf slots), as the scikit-learn estimators of :mod:`mlwork.trees.sklearn` do.
      max_features: None (all), ``"sqrt"``, ``"log2"``, an int or a fraction of ``d``.
      max_bins: value bins per feature (≤ 255); ``None`` for the exact search over every
        midpoint between distinct values (scikit-learn's splitter; for small data).
      sample_weight: ``(n,)`` non-negative weights.
      n_classes: number of classes (default ``max(y) + 1``).
      monotonic_cst: regression only: ``(d,)`` ints in {-1, 0, 1} (scikit-learn's name and
        meaning): +1 makes the prediction non-decreasing in that feature, -1 non-increasing, 0
        leaves it free; ``None`` (default) constrains nothing. See below.
      categorical_features: feature indices, or a ``(d,)`` boolean mask (scikit-learn's name),
        of categorical features: their values are integer category codes in
        :math:`[0, \min(\texttt{max\_bins}, 256))` (NaN: missing). See below.

    Categorical features (regression and two classes): a split sends a *set* of categories
    left. At each node the categories are sorted by their mean target (the class-1 rate for two
    classes; :math:`G/(H+\lambda)` for boosting) and only the prefixes of that order are
    scanned — the best subset is among them for these criteria (Fisher 1958; Breiman et al.
    1984, section 9.4), as in LightGBM and ``HistGradientBoosting*``. The tree stores the set as
    a bitset per node (``Tree.categories``, ``threshold`` NaN there); at prediction a code
    outside the set, unseen in training or not a valid code, goes right.

    Monotonic constraints (LightGBM's basic method, as in scikit-learn's
    ``HistGradientBoosting*``): every node carries bounds :math:`[l, u]` on its value (the root
    :math:`[-\infty, \infty]`). A candidate split on a feature with constraint :math:`+1` is
    rejected when its children's values :math:`v_L, v_R`, clipped to :math:`[l, u]`, have
    :math:`v_L > v_R` (:math:`-1`: :math:`v_L < v_R`); a split made on it gives the left child
    :math:`[l, m]` and the right :math:`[m, u]` with :math:`m = (v_L + v_R)/2` (reversed for
    :math:`-1`), any other split passes :math:`[l, u]` on, and every leaf value is clipped to
    its bounds. Two inputs that differ only in a constrained feature then part at a split on
    it, with values on the two sides of its :math:`m`: the prediction is monotone in each
    constrained feature over its non-missing values (NaN goes where the split sends it).

    Returns:
      A :class:`Tree`. Fitting needs concrete arrays (the bins come from the data); the growing
      itself is one compiled program per input shape.

    Raises:
      ValueError: bad input: a PRNG key where ``X`` or ``y`` belongs, ``X`` and ``y`` of
        different lengths, a single class, ±inf in ``X``, ``max_depth < 1``, an unknown
        ``task`` or ``criterion`` (or one of the other task), ``sample_weight`` all zero,
        negative or NaN, ``monotonic_cst`` not of length ``d``, with values other than
        -1, 0, 1, or given for classification; ``categorical_features`` not indices in
        ``[0, d)`` or a mask of ``d``, a categorical column holding other than integer codes in
        range (named), categorical features with more than two classes, or a categorical
        feature with a non-zero ``monotonic_cst``.

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0, 0, 0, 1, 1, 1])
      >>> tree = trees.fit_tree(X, y, max_depth=1)
      >>> float(tree.threshold[0]), trees.predict(tree, np.array([[1.0], [4.0]])).tolist()
      (2.5, [0, 1])
      >>> y = np.array([0.0, 1.0, 2.0, 3.0, 2.5, 5.0])  # a dip at x = 4
      >>> trees.predict(trees.fit_tree(X, y, max_depth=3), X).tolist()
      [0.0, 1.0, 2.0, 3.0, 2.5, 5.0]
      >>> trees.predict(trees.fit_tree(X, y, max_depth=3, monotonic_cst=[1]), X).tolist()
      [0.0, 1.0, 2.0, 2.75, 2.75, 5.0]

    Reference: Breiman, Friedman, Olshen & Stone, *Classification and Regression Trees* (1984),
    the decrease in impurity (chapter 4) and regression trees (chapter 8); Quinlan (1986), the
    information gain; Chen & Guestrin, KDD 2016, Algorithm 3 (the learnt side of missing values);
    LightGBM's ``monotone_constraints_method="basic"`` (Ke et al., NeurIPS 2017, and its docs);
    Fisher, "On grouping for maximum homogeneity", JASA 53 (1958) (sorted categories).
    """
    data = prepare(X, max_bins, sample_weight, categorical_features)
    task = _checks.infer_task(task, criterion, y)
    spec, target, w = tree_spec(data, y, task=task, criterion=criterion, max_depth=max_depth,
                                min_samples_split=min_samples_split, min_samples_leaf=min_samples_leaf,
                                max_features=max_features, sample_weight=sample_weight,
                                n_classes=n_classes, monotonic_cst=monotonic_cst,
                                categorical_features=categorical_features)
    key = jax.random.key(0) if key is None else key
    return _fit_tree(feature_parallel(spec), task, data.XbT, target, w, data.lower, data.upper, key)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _fit_tree(spec: GrowSpec, kind: str, XbT, target, w, lower, upper, key) -> Tree:
    grown = run_feature_parallel(spec, functools.partial(grow, spec), XbT, target, w, lower, upper, key)
    mean = None if spec.classification else jnp.sum(w * target) / jnp.sum(w)
    return to_tree(spec, grown, leaf_values(spec, grown, mean), kind, XbT.shape[0])


def tree_spec(data: Prepared, y, *, task, criterion, max_depth, min_samples_split, min_samples_leaf,
              max_features, sample_weight, n_classes,
              monotonic_cst=None, categorical_features=None) -> tuple[GrowSpec, Array, Array]:
    """Checked settings and device arrays (target, weights) for growing trees on ``data``."""
    n, d = data.X.shape
    criterion = _checks.check_task(task, criterion)
    monotonic = _checks.check_monotonic_cst(monotonic_cst, d)
    if monotonic is not None and task != "regression":
        raise ValueError(f"monotonic_cst needs task='regression' (constrained leaf values), got task={task!r}")
    categorical = _checks.check_categorical_features(categorical_features, d)
    if categorical is not None and monotonic is not None:
        both = [j for j in range(d) if categorical[j] and monotonic[j]]
        if both:
            raise ValueError(f"monotonic_cst must be 0 for categorical features, got {monotonic[both[0]]} "
                             f"for feature {both[0]}")
    if task == "classification":
        target, n_classes = _checks.check_labels(y, n, n_classes)
    else:
        target, n_classes = _checks.check_targets(y, n), 0
    spec = GrowSpec(depth=_checks.resolve_depth(max_depth, n), max_bins=data.bins.max_bins,
                    criterion=criterion, n_classes=n_classes,
                    max_features=_checks.resolve_max_features(max_features, d),
                    min_samples_leaf=_checks.check_int(min_samples_leaf, "min_samples_leaf", 1),
                    min_samples_split=_checks.check_int(min_samples_split, "min_samples_split", 2),
                    midpoint=True, any_missing=data.bins.has_missing,
                    unrolled_levels=unrolled_levels(n, d), monotonic=monotonic)
    if categorical is not None:
        if task == "classification" and n_classes != 2:
            raise ValueError(f"categorical_features needs two classes or regression, got {n_classes} classes "
                             f"(a subset of categories is found exactly for those only)")
        spec = spec._replace(categorical=categorical)
    w = _checks.check_sample_weight(sample_weight, n)
    spec = spec._replace(counted=needs_count(spec, w))
    return spec, jax.device_put(target), jax.device_put(w)


#: Data with at least this many values (n · d) compiles its deepest ``UNROLLED_LEVELS`` levels
#: one by one with exact node counts (faster to run); smaller data runs every level in one
#: scanned body (one compilation, which dominates at that size).
UNROLL_MIN_VALUES = 1 << 20
UNROLLED_LEVELS = 4


def unrolled_levels(n_samples: int, n_features: int) -> int:
    """How many of the deepest levels to compile one by one for data of this size."""
    return UNROLLED_LEVELS if n_samples * n_features >= UNROLL_MIN_VALUES else 0


def needs_count(spec: GrowSpec, w: np.ndarray) -> bool:
    """Whether the grower needs an exact sample-count channel (see :class:`GrowSpec`)."""
    integral = bool(np.all(w == np.round(w)))
    return spec.min_samples_leaf > 1 or spec.min_samples_split > 2 or not integral


# ----------------------------------------------------------------------------- prediction
@jax.jit
def tree_leaf(tree: Tree, X: Array) -> Array:
    r"""Index of the leaf each row of ``X`` reaches, in ``[0, 2^D)``.

    From the root, node :math:`i` sends a row to :math:`2i + 1` when
    :math:`x_{f_i} \le t_i` (NaN: to the side ``missing_left`` says) and to :math:`2i + 2`
    otherwise, :math:`D` times; a node that does not split sends every row left. Compiled with
    ``jit``; the input is not checked.

    Args:
      tree: one :class:`Tree` (no batch axes).
      X: ``(n, d)`` float features, NaN for missing.

    Returns:
      ``(n,)`` int32 leaf indices, in the order of ``tree.value``'s leaves.

    Example:
      >>> import jax.numpy as jnp, numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0, 0, 0, 1, 1, 1])
      >>> tree = trees.fit_tree(X, y, max_depth=1)
      >>> trees.tree_leaf(tree, jnp.array([[1.0], [4.0], [jnp.nan]])).tolist()
      [0, 1, 0]
    """
    depth = tree.depth
    rows = jnp.arange(X.shape[0])
    node = jnp.zeros(X.shape[0], jnp.int32)
    for _ in range(depth):
        x = X[rows, jnp.maximum(tree.feature[node], 0)]
        right = x > tree.threshold[node]
        if tree.categories is not None:  # a categorical split (threshold NaN): its set goes left
            right = jnp.where(jnp.isnan(tree.threshold[node]), ~in_category_set(tree.categories[node], x), right)
        right = jnp.where(jnp.isnan(x), ~tree.missing_left[node], right)
        node = 2 * node + 1 + right.astype(jnp.int32)
    return node - (2**depth - 1)


def in_category_set(bits: Array, x: Array) -> Array:
    """Whether each value of ``x`` ``(n,)`` is a category code whose bit is set in ``bits``
    ``(n, W)`` uint32 (bit ``c % 32`` of word ``c // 32``); False for NaN, non-integers, negative
    codes and codes past the bitset."""
    size = 32 * bits.shape[-1]
    valid = (x >= 0) & (x < size) & (x == jnp.floor(x))
    code = jnp.where(valid, x, 0).astype(jnp.int32)
    word = jnp.take_along_axis(bits, (code >> 5)[:, None], axis=1)[:, 0]
    return valid & (((word >> (code & 31).astype(jnp.uint32)) & 1) == 1)


@jax.jit
def tree_value(tree: Tree, X: Array) -> Array:
    """Leaf values ``(n, K)`` for the rows of ``X``."""
    return tree.value[tree_leaf(tree, X)]


def tree_predict_proba(tree: Tree, X) -> Array:
    """Class proportions of the leaf each row reaches, ``(n, K)``."""
    _require_kind(tree, "classification", "predict_proba")
    return tree_value(tree, check_X_any(X, tree.n_features))


def tree_predict(tree: Tree, X) -> Array:
    """The majority class of the leaf (classification) or its mean / raw value."""
    value = tree_value(tree, check_X_any(X, tree.n_features))
    if tree.kind == "classification":
        return jnp.argmax(value, axis=-1).astype(jnp.int32)
    return value[:, 0]


def check_X_any(X, n_features: int) -> Array:
    """Prediction input as a float32 device array; the shape is always checked, ±inf only when
    ``X`` is concrete (under ``jit`` a ±inf simply compares as a very large value)."""
    values = concrete(X)
    if values is not None:
        return jax.device_put(_checks.check_X(values, n_features=n_features))
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"X must have shape (n, {n_features}), got {X.shape}")
    return X.astype(jnp.float32)


def _require_kind(tree: Tree, kind: str, what: str) -> None:
    if tree.kind != kind:
        raise ValueError(f"{what} needs a {kind} model, got a {tree.kind} tree")


# ----------------------------------------------------------------------------- inspection
@functools.partial(jax.jit, static_argnums=1)
def tree_importances(tree: Tree, n_features: int) -> Array:
    """Unnormalised impurity-decrease importances ``(d,)``: :math:`\\sum_{t: f_t = j} \\Delta_t / W_{root}`."""
    idx = jnp.where(tree.feature >= 0, tree.feature, n_features)
    total = jax.ops.segment_sum(tree.gain, idx, num_segments=n_features + 1)[:n_features]
    return total / jnp.maximum(tree.weight[0], 1e-30)


def export_text(tree: Tree, feature_names=None, class_names=None, decimals: int = 3) -> str:
    """A text rendering of a single tree, one node per line (like scikit-learn's ``export_text``).

    Each split shows its test, the side NaN goes to, the node's impurity (the criterion's name:
    ``gini``, ``entropy`` in bits, ``variance``; ``cover`` for boosting trees) and weight; each
    leaf its class with the class proportions, or its value.

    Args:
      tree: one :class:`Tree` (index a single tree out of an ensemble first).
      feature_names: ``d`` names for the features (default ``x[j]``).
      class_names: ``K`` names for the classes (default the indices).
      decimals: digits of thresholds, impurities and values, a non-negative integer.

    Returns:
      The rendering, lines joined with ``"\\n"``.

    Raises:
      ValueError: ``tree`` has batch axes (a stack of trees), or ``decimals`` is not a
        non-negative integer.

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0, 0, 0, 1, 1, 1])
      >>> print(trees.export_text(trees.fit_tree(X, y, max_depth=1), feature_names=["x"], decimals=1))
      |--- x <= 2.5 or NaN  [gini 0.5, weight 6]
      |   class: 0  (p = [1.00, 0.00], weight 3)
      |--- x >  2.5
      |   class: 1  (p = [0.00, 1.00], weight 3)
    """
    decimals = _checks.check_int(decimals, "decimals", 0)
    t = jax.tree.map(np.asarray, tree)
    if t.feature.ndim != 1:
        raise ValueError("export_text renders one tree; index a single tree out of an ensemble first")
    depth = tree.depth
    name = (lambda f: feature_names[f]) if feature_names is not None else (lambda f: f"x[{f}]")
    label = {"classification": tree.criterion, "regression": "variance", "boosting": "cover"}[tree.kind]

    def leaf_text(i, level):
        leaf = (i - (2**level - 1)) * 2 ** (depth - level) if level < depth else i - (2**depth - 1)
        v = t.value[leaf]
        if tree.kind == "classification":
            k = int(np.argmax(v))
            cls = class_names[k] if class_names is not None else k
            probs = ", ".join(f"{p:.2f}" for p in v)
            return f"class: {cls}  (p = [{probs}], weight {t.leaf_weight[leaf]:.4g})"
        return f"value: {v[0]:.{decimals}f}  (weight {t.leaf_weight[leaf]:.4g})"

    lines = []

    def walk(i, level, prefix):
        if level == depth or t.feature[i] < 0:
            lines.append(f"{prefix}{leaf_text(i, level)}")
            return
        f, thr = int(t.feature[i]), float(t.threshold[i])
        info = f"  [{label} {t.impurity[i]:.{decimals}f}, weight {t.weight[i]:.4g}]"
        if np.isnan(thr):  # a categorical split: the set of codes going left
            codes = [c for c in range(32 * t.categories.shape[-1]) if (int(t.categories[i, c // 32]) >> (c % 32)) & 1]
            test_left, test_right = f" in {{{', '.join(map(str, codes))}}}", " not in that set"
        else:
            test_left, test_right = f" <= {thr:.{decimals}f}", f" >  {thr:.{decimals}f}"
        nan = " or NaN" if t.missing_left[i] else ""
        lines.append(f"{prefix}|--- {name(f)}{test_left}{nan}{info}")
        walk(2 * i + 1, level + 1, prefix + "|   ")
        nan = "" if t.missing_left[i] else " or NaN"
        lines.append(f"{prefix}|--- {name(f)}{test_right}{nan}")
        walk(2 * i + 2, level + 1, prefix + "|   ")

    walk(0, 0, "")
    return "\n".join(lines)
