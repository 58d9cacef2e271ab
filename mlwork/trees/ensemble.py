r"""Bagging and random forests (deck section 17), fit as one compiled program.

Bagging (Breiman 1996) fits :math:`B` trees on bootstrap samples and averages them; a random
forest (Breiman 2001) also draws :math:`m` candidate features at every node (deck:
:math:`m = \sqrt{p}` for classification, :math:`p/3` for regression), which decorrelates the
trees. A bootstrap sample is drawn as multiplicity weights — tree :math:`t` sees sample
:math:`i` with weight :math:`c_{ti}` where :math:`c_t \sim \mathrm{Multinomial}(n, 1/n)` — so
every tree reads the same binned matrix and no data is copied per tree.

The trees are fit by mapping the grower over the bootstrap keys inside one ``jit``:
``jax.lax.map`` (a ``vmap`` over chunks of ``batch_size`` trees, scanned), and with several
devices a ``shard_map`` that gives each device its share of the trees (on CPU, run with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` to use N cores). On CPU the default
``batch_size=1`` keeps each histogram scatter one-dimensional, which XLA runs several times
faster than the batched scatter a full ``vmap`` produces.

Predictions average the trees' class probabilities (scikit-learn's soft vote; with pure leaves
this is the deck's majority vote) or their regression values. The out-of-bag score evaluates
each training sample only with the trees whose bootstrap missed it (about :math:`e^{-1}`).
"""

from __future__ import annotations

import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from mlwork.trees import _checks, _deprecated
from mlwork.trees._grow import GrowSpec, grow
from mlwork.trees.tree import (
    Tree,
    check_X_any,
    leaf_values,
    prepare,
    to_tree,
    tree_spec,
    tree_value,
    weighted_prior,
)

Array = jax.Array


@flax.struct.dataclass
class Forest:
    """Trees stacked along a leading axis, plus the out-of-bag score.

    Attributes:
      trees: a :class:`~mlwork.trees.tree.Tree` whose arrays have a leading ``(T,)`` axis.
      oob_score: out-of-bag accuracy (classification) or :math:`R^2` (regression), a float32
        scalar; NaN without bootstrap or when no sample was ever out of bag.

    Example:
      >>> import jax, numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0, 0, 0, 1, 1, 1])
      >>> forest = trees.fit_random_forest(X, y, 5, key=jax.random.key(0), max_depth=1)
      >>> forest.kind, forest.trees.feature.shape, float(forest.oob_score)
      ('classification', (5, 1), 1.0)
    """

    trees: Tree
    oob_score: Array

    @property
    def kind(self) -> str:
        """``"classification"`` or ``"regression"``, the kind of its trees."""
        return self.trees.kind


def bootstrap_counts(key: Array, n: int) -> Array:
    r"""Multiplicities of a bootstrap sample: how often each of ``n`` rows is drawn in ``n``
    draws with replacement,

    .. math:: c \sim \mathrm{Multinomial}(n; 1/n, \dots, 1/n), \qquad \sum_i c_i = n,

    so a row is out of bag (:math:`c_i = 0`) with probability :math:`(1 - 1/n)^n \approx e^{-1}`.
    A forest weighs row :math:`i` of tree :math:`t` by :math:`c_{ti}` instead of copying data.

    Args:
      key: a JAX PRNG key.
      n: the number of rows, a Python int (static).

    Returns:
      ``(n,)`` float32 counts (whole numbers).

    Example:
      >>> import jax
      >>> from mlwork import trees
      >>> c = trees.bootstrap_counts(jax.random.key(0), 10)
      >>> c.tolist(), float(c.sum())
      ([1.0, 1.0, 2.0, 4.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0], 10.0)

    Reference: Efron, "Bootstrap methods: another look at the jackknife", Ann. Statist. 7 (1979).
    """
    draws = jax.random.randint(key, (n,), 0, n)
    return jax.ops.segment_sum(jnp.ones(n, jnp.float32), draws, num_segments=n)


def _tree_keys(key: Array, n_estimators: int) -> tuple[Array, Array]:
    """(bootstrap keys, feature-sampling keys), one per tree."""
    keys = jax.random.split(key, (n_estimators, 2))
    return keys[:, 0], keys[:, 1]


def _map_trees(fn, keys, consts, batch_size: int):
    """``fn(key_pair, consts)`` mapped over trees, sharded across devices when there are several."""
    devices = jax.devices()
    if len(devices) == 1:
        return jax.lax.map(lambda k: fn(k, consts), keys, batch_size=batch_size)
    n, n_dev = keys[0].shape[0], len(devices)
    pad = -n % n_dev
    keys = jax.tree.map(lambda k: jnp.concatenate([k, k[:pad]]), keys)
    mesh = Mesh(np.array(devices), ("trees",))
    spec_c = jax.tree.map(lambda _: PartitionSpec(), consts)

    def local(k, c):
        return jax.lax.map(lambda kk: fn(kk, c), k, batch_size=batch_size)

    out = jax.shard_map(local, mesh=mesh, in_specs=(PartitionSpec("trees"), spec_c),
                        out_specs=PartitionSpec("trees"), check_vma=False)(keys, consts)
    return jax.tree.map(lambda a: a[:n], out)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _fit_forest(spec: GrowSpec, kind: str, bootstrap: bool, batch_size: int, with_oob: bool, keys, XbT,
                target, w, lower, upper, X):
    """The trees, and when asked the summed out-of-bag predictions with their counts."""
    n = XbT.shape[1]
    prior = weighted_prior(spec, target, w)  # an empty tree's value (its sample has zero weight)

    def fit_one(key_pair, consts):
        XbT, target, w, lower, upper = consts
        kb, kf = key_pair
        wt = w * bootstrap_counts(kb, n) if bootstrap else w
        grown = grow(spec, XbT, target, wt, lower, upper, kf)
        if spec.classification:
            value = leaf_values(spec, grown, prior=prior)
        else:
            total = jnp.sum(wt)
            mean = jnp.where(total > 0, jnp.sum(wt * target) / jnp.where(total > 0, total, 1.0), prior)
            value = leaf_values(spec, grown, mean)
        return to_tree(spec, grown, value, kind, lower.shape[0])

    trees = _map_trees(fit_one, keys, (XbT, target, w, lower, upper), batch_size)
    return trees, (_oob_sums(trees, keys[0], X) if with_oob else None)


def _oob_sums(trees: Tree, boot_keys: Array, X: Array) -> tuple[Array, Array]:
    """Summed out-of-bag predictions ``(n, K)`` and the number of trees each sample was OOB for."""
    n = X.shape[0]

    def body(carry, tk):
        tree, key = tk
        oob = (bootstrap_counts(key, n) == 0).astype(jnp.float32)
        total, count = carry
        return (total + oob[:, None] * tree_value(tree, X), count + oob), None

    init = (jnp.zeros((n, trees.value.shape[-1]), jnp.float32), jnp.zeros(n, jnp.float32))
    return jax.lax.scan(body, init, (trees, boot_keys))[0]


def oob_score(kind: str, sums: tuple[Array, Array], y: np.ndarray) -> Array:
    """Accuracy (classification) or :math:`R^2` of out-of-bag predictions; NaN if none."""
    total, count = (np.asarray(a) for a in sums)
    seen = count > 0
    if not seen.any():
        return jnp.asarray(np.nan, jnp.float32)
    if kind == "classification":
        score = np.mean(np.argmax(total[seen], axis=1) == y[seen])
    else:
        pred = total[seen, 0] / count[seen]
        yy = y[seen].astype(np.float64)
        score = 1.0 - np.sum((yy - pred) ** 2) / max(np.sum((yy - yy.mean()) ** 2), 1e-30)
    return jnp.asarray(score, jnp.float32)


@_deprecated.key_keyword
def fit_random_forest(X, y, n_estimators: int = 100, *, key: Array | None = None, task: str | None = None,
                      criterion: str | None = None, max_depth: int | None = None, max_features="auto",
                      bootstrap: bool = True, min_samples_split: int = 2, min_samples_leaf: int = 1,
                      max_bins: int | None = 255, compute_oob: bool = True, sample_weight=None,
                      n_classes: int | None = None, batch_size: int = 1, monotonic_cst=None,
                      categorical_features=None) -> Forest:
    r"""Fit a random forest: ``n_estimators`` trees on bootstrap samples, ``max_features`` per node.

    .. math:: \hat f(x) = \frac1T \sum_{t=1}^T h_t(x)

    (class probabilities averaged for classification). A tree whose bootstrap sample has zero
    total weight (it drew only rows with ``sample_weight == 0``) predicts the ensemble's
    weighted prior: the class proportions under ``sample_weight``, or the weighted mean of ``y``.
    ``sample_weight`` all zero, negative or NaN raises ``ValueError``. ``max_features="auto"`` is the deck's
    :math:`\lfloor\sqrt{p}\rfloor` for classification and :math:`\lfloor p/3 \rfloor` for regression.
    Tree settings are those of :func:`~mlwork.trees.fit_tree`. ``batch_size`` trees are
    vmapped together (1 is fastest on CPU; raise it on accelerators).

    Args:
      X: ``(n, d)`` features (float32 after conversion); NaN marks a missing value.
      y: ``(n,)`` class indices ``0..C−1`` (classification) or real targets (regression).
      n_estimators: :math:`T \ge 1` trees.
      key: a JAX PRNG key; each tree's bootstrap sample and feature draws come from it
        (default ``jax.random.key(0)``). 0.1's ``fit_random_forest(key, X, y, ...)`` still
        works until 0.3, with a ``DeprecationWarning``.
      task: ``"classification"`` or ``"regression"``; ``None`` (default) follows ``criterion``
        when given, else the targets: integer or boolean ``y`` is classification, float ``y``
        regression.
      criterion: ``"gini"`` (default) or ``"entropy"``; ``"variance"`` for regression.
      max_depth: depth of each tree, :math:`\ge 1`; ``None`` (default):
        :math:`\min(12, \lceil\log_2 n\rceil)`, as for :func:`~mlwork.trees.fit_tree` (a
        forest averages deep, low-bias trees; Breiman grows them until pure).
      max_features: features tried per node: ``"auto"`` (above), ``None`` (all, bagging),
        ``"sqrt"``, ``"log2"``, an int or a fraction of ``d``.
      bootstrap: draw a bootstrap sample per tree (:func:`bootstrap_counts`); else every tree
        sees every row.
      min_samples_split, min_samples_leaf, max_bins, sample_weight, n_classes: as for
        :func:`~mlwork.trees.fit_tree`.
      compute_oob: compute the out-of-bag score (with ``bootstrap``).
      batch_size: trees grown together per step of the map, :math:`\ge 1`.
      monotonic_cst: regression only: ``(d,)`` ints in {-1, 0, 1}, every tree constrained as
        by :func:`~mlwork.trees.fit_tree` (+1 non-decreasing, -1 non-increasing in that
        feature); their mean is then monotone too. ``None`` (default) constrains nothing.
      categorical_features: indices or a ``(d,)`` boolean mask of categorical features, as for
        :func:`~mlwork.trees.fit_tree`.

    Returns:
      A :class:`Forest` with ``T`` trees and ``oob_score``.

    Raises:
      ValueError: bad input as for :func:`~mlwork.trees.fit_tree` (a PRNG key where ``X``,
        ``y`` or ``n_estimators`` belongs included), ``n_estimators < 1``,
        ``batch_size < 1``, a non-bool ``bootstrap``, a bad ``monotonic_cst`` (as for
        :func:`~mlwork.trees.fit_tree`).

    Example:
      >>> import jax, numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0, 0, 0, 1, 1, 1])
      >>> forest = trees.fit_random_forest(X, y, 5, key=jax.random.key(0), max_depth=1)
      >>> np.asarray(trees.predict_proba(forest, X[[2]]), float).round(2).tolist()  # 4 of 5 trees: 0
      [[0.8, 0.2]]

    Reference: Breiman, "Random Forests", Machine Learning 45 (2001).
    """
    _checks.check_not_key(n_estimators, "n_estimators", "a positive integer")
    n_estimators = _checks.check_int(n_estimators, "n_estimators", 1)
    batch_size = _checks.check_int(batch_size, "batch_size", 1)
    if not isinstance(bootstrap, bool):
        raise ValueError(f"bootstrap must be True or False, got {bootstrap!r}")
    data = prepare(X, max_bins, sample_weight, categorical_features)
    task = _checks.infer_task(task, criterion, y)
    if isinstance(max_features, str) and max_features == "auto":
        max_features = "sqrt" if task == "classification" else 1 / 3
    key = jax.random.key(0) if key is None else key
    spec, target, w = tree_spec(data, y, task=task, criterion=criterion, max_depth=max_depth,
                                min_samples_split=min_samples_split, min_samples_leaf=min_samples_leaf,
                                max_features=max_features, sample_weight=sample_weight,
                                n_classes=n_classes, monotonic_cst=monotonic_cst,
                                categorical_features=categorical_features)
    with_oob = bool(bootstrap and compute_oob)
    trees, sums = _fit_forest(spec, task, bootstrap, min(batch_size, n_estimators), with_oob,
                              _tree_keys(key, n_estimators), data.XbT, target, w, data.lower, data.upper,
                              jnp.asarray(data.X) if with_oob else None)
    score = oob_score(task, sums, np.asarray(target)) if with_oob else jnp.asarray(np.nan, jnp.float32)
    return Forest(trees=trees, oob_score=score)


@_deprecated.key_keyword
def fit_bagging(X, y, n_estimators: int = 10, *, key: Array | None = None, **kwargs) -> Forest:
    r"""Bagging: :func:`fit_random_forest` with every feature tried at every node.

    .. math:: \hat f(x) = \frac1T \sum_{t=1}^T h_t(x), \qquad h_t \text{ fit to a bootstrap sample}

    Args:
      X: ``(n, d)`` features; NaN marks a missing value.
      y: ``(n,)`` class indices or real targets (the task follows them, as for
        :func:`fit_random_forest`).
      n_estimators: :math:`T \ge 1` trees.
      key: a JAX PRNG key (the bootstrap samples; default ``jax.random.key(0)``). 0.1's
        ``fit_bagging(key, X, y, ...)`` still works until 0.3, with a ``DeprecationWarning``.
      **kwargs: the other arguments of :func:`fit_random_forest`, except ``max_features``.

    Returns:
      A :class:`Forest`.

    Raises:
      ValueError: ``max_features`` given, or as :func:`fit_random_forest`.

    Example:
      >>> import jax, numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0, 0, 0, 1, 1, 1])
      >>> bag = trees.fit_bagging(X, y, 5, key=jax.random.key(0), max_depth=1)
      >>> trees.predict(bag, X).tolist(), float(bag.oob_score)
      ([0, 0, 0, 1, 1, 1], 1.0)

    Reference: Breiman, "Bagging predictors", Machine Learning 24 (1996).
    """
    if "max_features" in kwargs:
        raise ValueError("fit_bagging tries every feature; use fit_random_forest for max_features")
    return fit_random_forest(X, y, n_estimators, key=key, max_features=None, **kwargs)


@jax.jit
def forest_value(forest: Forest, X: Array) -> Array:
    """Mean of the trees' leaf values ``(n, K)``."""
    def body(total, tree):
        return total + tree_value(tree, X), None

    init = jnp.zeros((X.shape[0], forest.trees.value.shape[-1]), jnp.float32)
    total, _ = jax.lax.scan(body, init, forest.trees)
    return total / forest.trees.value.shape[0]


def forest_predict_proba(forest: Forest, X) -> Array:
    r"""Soft vote :math:`\frac1T\sum_t p_t(y \mid x)` ``(n, K)``."""
    if forest.kind != "classification":
        raise ValueError("predict_proba needs a classification forest")
    return forest_value(forest, check_X_any(X, forest.trees.n_features))


def forest_predict(forest: Forest, X) -> Array:
    """Argmax of the soft vote (classification) or the mean of the trees (regression)."""
    value = forest_value(forest, check_X_any(X, forest.trees.n_features))
    if forest.kind == "classification":
        return jnp.argmax(value, axis=-1).astype(jnp.int32)
    return value[:, 0]
