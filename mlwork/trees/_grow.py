r"""The compiled core: grow one tree level by level on binned data.

A tree of depth :math:`D` is grown breadth-first. At level :math:`l` the :math:`L = 2^l` nodes
of that level are split together: for every feature (or, with feature sampling, every sampled
slot) a histogram of the per-sample statistics over ``(node, bin)`` is built with one
``segment_sum`` of :math:`n` updates, its prefix sums over bins give every candidate left child,
and the best candidate per node is kept. The histogram of a whole level is never materialised:
features are visited in a ``fori_loop`` carrying only the best split so far per node, so memory
stays at :math:`O(Q L B)` per feature instead of :math:`O(Q L d B)`, and every scatter is
one-dimensional (XLA's CPU scatter is several times slower on batched indices).

Statistics ("channels", :math:`Q` per sample, stored channel-first so the bin axis is
contiguous):

* ``gini`` / ``entropy``: the sample weight in the slot of its class (the scatter index carries
  the class, so a sample costs one update whatever the number of classes);
* ``variance``: :math:`(w (y - c), w)`;
* ``newton``: :math:`(w (g - c h), w h)`, gradient and Hessian of the boosting loss;
* plus a count of samples with non-zero weight when needed (see :class:`GrowSpec`).

The shift :math:`c` of a regression node is the node's own mean (:math:`G/H` for ``newton``),
known before its level is searched: the root's from a plain sum, every other node's from its
parent's winning split (the left child's prefix sums at the chosen bin and the parent's
totals, both summed about the parent's shift), at no extra pass over the samples. Sums, proxy
scores and variances are then of the size of the node's own spread, so a group of targets far
from the tree's mean (or a leaf far from the root's gradient mean) splits with full float32
precision; centring once per tree would leave the gains of such a node to the rounding of
scores the size of its squared distance from the tree's mean. Leaves are summed about their
own means too (``Grown.leaf_shift``).

Every split maximises a proxy score whose difference is the weighted impurity decrease

.. math:: \Delta = W_t\, i(t) - W_L\, i(L) - W_R\, i(R),

with :math:`\mathrm{score}(S) = \sum_c c^2/W` (Gini), :math:`\sum_c c \log_2 c - W\log_2 W`
(entropy, bits), :math:`(\sum w y)^2/W` (variance) and :math:`\tfrac12 G^2/(H+\lambda)`
(XGBoost, Chen & Guestrin 2016, eq. 7). A node that does not split sends all its samples to the
left child and its subtree is marked unused, so the arrays keep their fixed size.

Monotonic constraints (``GrowSpec.monotonic``) add every node's value bounds to the level carry
(LightGBM's basic method; see :func:`_child_bounds`). Categorical features
(``GrowSpec.categorical``) scan their bins in the order of their value per node
(:func:`_category_order`), so a split is a set of bins; the samples are routed by that set and the
tree records it as a bitset over category codes. Both are static: without them the compiled
program is the plain one.

With ``feature_shards > 1`` the grower runs inside a ``shard_map`` over the mesh axis
``"features"``: each device scans its share of the features and the per-node winners are
merged with one ``all_gather`` per level (feature-parallel split finding, as in LightGBM).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mlwork.trees._criteria import (
    child_ok,
    node_impurity,
    parent_score,
    present,
    score,
    splittable,
    weight_of,
)
from mlwork.trees.binning import split_threshold

Array = jax.Array
CRITERIA = ("gini", "entropy", "variance", "newton")
FEATURE_AXIS = "features"
#: Category codes are below 32 * CATEGORY_WORDS = 256 (they are bins: at most 255 value bins).
CATEGORY_WORDS = 8


class GrowSpec(NamedTuple):
    """Static settings of the grower (hashable: it is a ``jit`` static argument).

    ``counted`` adds a channel counting samples with non-zero weight: needed for
    ``min_samples_leaf > 1``, ``min_samples_split > 2`` or non-integer weights (with integer
    weights the weight channels are exact counts already). The last ``unrolled_levels`` levels
    are compiled one by one with their exact node counts (fastest to run; each costs a
    compilation); the levels above them share one body, padded to the widest of them, in a
    ``scan`` (one compilation; the padding wastes little while levels are narrow).
    """

    depth: int
    max_bins: int
    criterion: str
    n_classes: int = 0
    max_features: int | None = None
    min_samples_leaf: int = 1
    min_samples_split: int = 2
    min_child_weight: float = 0.0
    reg_lambda: float = 0.0
    gamma: float = 0.0
    midpoint: bool = True
    any_missing: bool = False
    counted: bool = False
    unrolled_levels: int = 0
    feature_shards: int = 1
    monotonic: tuple[int, ...] | None = None
    categorical: tuple[bool, ...] | None = None

    @property
    def constrained(self) -> bool:
        """Whether some feature carries a monotonic constraint (regression criteria only)."""
        return self.monotonic is not None

    @property
    def has_categorical(self) -> bool:
        """Whether some feature is categorical (its bins are category codes; splits are sets)."""
        return self.categorical is not None

    @property
    def classification(self) -> bool:
        return self.criterion in ("gini", "entropy")


class Grown(NamedTuple):
    """A grown tree in heap order (node ``i`` has children ``2i+1``, ``2i+2``)."""

    feature: Array       # (2^D − 1,) int32, −1 where the node does not split
    split_bin: Array     # (2^D − 1,) int32: bins <= split_bin go left
    threshold: Array     # (2^D − 1,) float32: x <= threshold goes left (+inf: no split)
    missing_left: Array  # (2^D − 1,) bool: where NaN goes
    gain: Array          # (2^D − 1,) float32 weighted impurity decrease (0: no split)
    impurity: Array      # (2^D − 1,) float32 impurity of the node
    weight: Array        # (2^D − 1,) float32 total sample weight in the node
    leaf_stats: Array    # (2^D, Q) summed channels per leaf, about leaf_shift (regression)
    leaf_shift: Array    # (2^D,) float32 shift c of each leaf's statistics (0: classification)
    leaf: Array          # (n,) int32 leaf of every training sample
    leaf_bounds: Array | None = None  # (2, 2^D) [lower; upper] bounds of the leaf values (monotonic)
    categories: Array | None = None   # (2^D − 1, CATEGORY_WORDS) uint32 bitset of the codes going left


# ----------------------------------------------------------------------------- split search
class _Best(NamedTuple):
    gain: Array
    feature: Array
    bin: Array
    nan_left: Array   # NaN goes left (better gain); only meaningful where has_nan
    has_nan: Array    # the node has NaN in this feature (weighted samples)
    left: Array | None  # (2, L) regression: the left child's first two channels (None: classification)
    left_bins: Array | None = None  # (B, L) bool: the value bins going left (categorical features only)


def cumsum_bins(x: Array, block: int = 16) -> Array:
    """Inclusive prefix sum over the last axis as two small matrix products.

    XLA's CPU backend lowers ``jnp.cumsum`` to a ``reduce_window`` that costs :math:`O(B)` per
    element; blocks of 16 cost 2·16 multiply-adds per element and compile to two dots.
    """
    *lead, nb = x.shape
    pad = -nb % block
    k = (nb + pad) // block
    rows = jnp.pad(x, [(0, 0)] * len(lead) + [(0, pad)]).reshape(-1, k, block)
    inner = rows @ jnp.triu(jnp.ones((block, block), x.dtype))             # within blocks
    offset = inner[:, :, -1] @ jnp.triu(jnp.ones((k, k), x.dtype), 1)      # sums of earlier blocks
    return (inner + offset[:, :, None]).reshape(*lead, k * block)[..., :nb]


def _feature_hist(spec: GrowSpec, col: Array, node: Array, n_nodes: int, cls: Array | None,
                  w: Array, dense: Array | None, count: Array | None) -> Array:
    """Channel-first histogram ``(Q, L, B + 1)`` of one feature's bins over the level's nodes."""
    nb = spec.max_bins + 1
    base = node * nb + col
    size = n_nodes * nb
    if spec.classification:
        flat = jax.ops.segment_sum(w, cls * size + base, num_segments=spec.n_classes * size)
        hist = flat.reshape(spec.n_classes, n_nodes, nb)
    else:
        hist = jax.ops.segment_sum(dense, base, num_segments=size).T.reshape(-1, n_nodes, nb)
    if count is not None:
        c = jax.ops.segment_sum(count, base, num_segments=size).reshape(1, n_nodes, nb)
        hist = jnp.concatenate([hist, c], axis=0)
    return hist


def _first_max(gain: Array) -> tuple[Array, Array]:
    """Max over the last axis and the first index reaching it (cheaper than argmax on CPU)."""
    best = jnp.max(gain, axis=-1)
    idx = jnp.arange(gain.shape[-1], dtype=jnp.int32)
    return best, jnp.min(jnp.where(gain == best[..., None], idx, gain.shape[-1]), axis=-1)


def node_value(spec: GrowSpec, s: Array, shift: Array) -> Array:
    r"""The value of nodes (or children) from their first two channels ``s`` ``(2, ...)``
    summed about ``shift``: the mean :math:`c + \sum w (y - c) / W` (``variance``) or XGBoost's
    :math:`-G/(H + \lambda)` (``newton``); ``shift`` (0) where the node holds no weight."""
    if spec.criterion == "variance":
        return shift + _mean_shift(s)
    g, h = s[0] + shift * s[1], s[1] + spec.reg_lambda
    return jnp.where(h > 0, -g / jnp.where(h > 0, h, 1.0), 0.0)


def _violates(spec: GrowSpec, left: Array, right: Array, mono) -> Array:
    """Where the children's values, clipped to the node's bounds, break the direction of the
    split feature's monotonic constraint (``mono``: per-node constraint, bounds and shift)."""
    cst, lo, hi, shift = (m[:, None] for m in mono)
    vl = jnp.clip(node_value(spec, left[:2], shift), lo, hi)
    vr = jnp.clip(node_value(spec, right[:2], shift), lo, hi)
    return ((cst > 0) & (vl > vr)) | ((cst < 0) & (vl < vr))


def _category_order(spec: GrowSpec, hist: Array, shift: Array | None, is_cat: Array) -> Array:
    r"""Per node ``(L, B)``: the order in which to scan the value bins, ``perm[l, i]`` the bin at
    position ``i``. Bins of a categorical feature are sorted by their value — the mean
    :math:`\sum w y / \sum w` (``variance``), :math:`G/(H + \lambda)` (``newton``), the class-1
    rate (binary ``gini``/``entropy``) — so the best subset of categories is a prefix (Fisher
    1958; exact for these criteria, as in LightGBM and ``HistGradientBoosting*``); empty bins go
    last. Other features keep their natural order."""
    nb = spec.max_bins
    h = hist[:, :, :nb]
    if spec.classification:
        w = h[0] + h[1]
        key = h[1] / jnp.where(w > 0, w, 1.0)
    else:
        w = h[1]
        key = node_value(spec, h[:2], (jnp.zeros(h.shape[1], h.dtype) if shift is None else shift)[:, None])
    key = jnp.where(w > 0, key, jnp.inf)  # the shift of ``variance`` (None: 0) moves every key alike
    natural = jnp.broadcast_to(jnp.arange(nb, dtype=jnp.int32), key.shape)
    return jnp.where(is_cat[:, None], jnp.argsort(key, axis=1, stable=True).astype(jnp.int32), natural)


def _best_in_feature(spec: GrowSpec, hist: Array, base: Array, shift: Array | None, mono=None,
                     is_cat: Array | None = None) -> _Best:
    """Best split per node for one feature's histogram (``feature`` left to the caller).

    The missing-value bin is the last one, so the prefix sums over all ``B + 1`` bins are the
    left children "bins <= b" without NaN, and the last prefix sum is the node total. Among
    equal gains the first bin wins, which is the last non-empty bin of the left child.
    ``base``: :func:`parent_score` per node; ``shift``: the nodes' shifts (``newton``).
    Regression also returns the left child's statistics, from which the children's shifts come.
    ``mono``: with monotonic constraints, ``(constraint, lower, upper, shift)`` per node ``(L,)``
    each; a candidate whose clipped child values break the constraint is rejected.
    ``is_cat``: with categorical features, whether this feature is categorical at each node
    ``(L,)``: its bins are then scanned in :func:`_category_order` and the result names the set
    of bins going left (``left_bins``) instead of a threshold bin.
    """
    nb = spec.max_bins
    if is_cat is not None:
        perm = _category_order(spec, hist, shift, is_cat)
        hist = jnp.concatenate([jnp.take_along_axis(hist[:, :, :nb], perm[None], axis=2), hist[:, :, nb:]], axis=2)
    cum = cumsum_bins(hist)  # (Q, L, B + 1)
    total = cum[:, :, nb:]
    c = None if shift is None else shift[:, None]

    def side(left):
        right = total - left
        gain = score(spec, left, c) + score(spec, right, c) - base[:, None]
        ok = child_ok(spec, left) & child_ok(spec, right)
        if mono is not None:
            ok &= ~_violates(spec, left, right, mono)
        return jnp.where(ok, gain, -jnp.inf)

    def at(left, b):  # the first two channels of the left child at bin b, (2, L)
        return None if spec.classification else jnp.take_along_axis(left[:2], b[None, :, None], axis=2)[..., 0]

    def bins_left(b):  # (B, L): the bins at positions <= b of the scan order
        if is_cat is None:
            return None
        rows = jnp.arange(perm.shape[0])[:, None]
        pos = jnp.broadcast_to(jnp.arange(nb)[None, :], perm.shape)
        return jnp.zeros(perm.shape, bool).at[rows, perm].set(pos <= b[:, None]).T

    best, b = _first_max(side(cum))
    if not spec.any_missing:
        no = jnp.zeros(best.shape, bool)
        return _Best(best, None, b, no, no, at(cum, b), bins_left(b))
    miss = hist[:, :, nb]
    with_nan = cum + miss[:, :, None]
    best_l, b_l = _first_max(side(with_nan))
    use_l = best_l > best
    left = None if spec.classification else jnp.where(use_l[None], at(with_nan, b_l), at(cum, b))
    b = jnp.where(use_l, b_l, b)
    return _Best(jnp.maximum(best, best_l), None, b, use_l, present(spec, miss), left, bins_left(b))


def _merge(best: _Best, new: _Best) -> _Best:
    better = new.gain > best.gain  # strict: the first feature wins ties

    def pick(n, o):
        return None if n is None else jnp.where(better if n.ndim == 1 else better[None], n, o)

    return _Best(*(pick(n, o) for n, o in zip(new, best, strict=True)))


def _merge_shards(best: _Best) -> _Best:
    """The winner per node across feature shards (lowest shard on ties, like one device)."""
    gathered = _Best(*(None if x is None else jax.lax.all_gather(x, FEATURE_AXIS) for x in best))  # (S, ..., L)
    _, shard = _first_max(gathered.gain.T)

    def take(x):
        if x is None:
            return None
        idx = jnp.broadcast_to(shard.reshape((1,) * (x.ndim - 1) + (-1,)), (1, *x.shape[1:]))
        return jnp.take_along_axis(x, idx, axis=0)[0]

    return _Best(*(take(x) for x in gathered))


def _search_level(spec, XbT, node, n_nodes, cls, w, dense, count, base, shift, key, mono=None):
    """Best split of every node of a level: a loop over features (or sampled slots).
    ``mono``: ``(lower, upper, shift)`` per node with monotonic constraints, else None."""
    d, n = XbT.shape
    n_items = d if spec.max_features is None else spec.max_features
    per_shard = -(-n_items // spec.feature_shards)
    first = 0 if spec.feature_shards == 1 else jax.lax.axis_index(FEATURE_AXIS) * per_shard
    no = jnp.zeros(n_nodes, bool)
    init = _Best(jnp.full(n_nodes, -jnp.inf), jnp.zeros(n_nodes, jnp.int32), jnp.zeros(n_nodes, jnp.int32),
                 no, no, None if spec.classification else jnp.zeros((2, n_nodes), jnp.float32),
                 jnp.zeros((spec.max_bins, n_nodes), bool) if spec.has_categorical else None)
    if spec.max_features is not None:
        # Per node, max_features features without replacement: the top-k of uniform scores.
        # Every level draws scores for the widest level and uses its first L rows, so padded
        # (scan) and exact (unrolled) levels draw the same features.
        u = jax.random.uniform(key, (2 ** (spec.depth - 1), d))[:n_nodes]
        sel = jax.lax.top_k(u, spec.max_features)[1].astype(jnp.int32)  # (L, m)
        rows = jnp.arange(n)

        def item(k):
            f_node = jax.lax.dynamic_index_in_dim(sel, k, axis=1, keepdims=False)
            return f_node, XbT[f_node[node], rows]
    else:

        def item(k):
            return jnp.full(n_nodes, k, jnp.int32), jax.lax.dynamic_index_in_dim(XbT, k, keepdims=False)

    def body(i, best):
        # One feature per step: unrolled blocks of up to four features ran 1.0-1.17x slower
        # (bench.trees_ab, issue 29) and compiled no faster.
        k = jnp.minimum(first + i, n_items - 1)
        f_node, col = item(k)
        hist = _feature_hist(spec, col.astype(jnp.int32), node, n_nodes, cls, w, dense, count)
        m = None if mono is None else (jnp.asarray(spec.monotonic, jnp.int32)[f_node], *mono)
        is_cat = jnp.asarray(spec.categorical, bool)[f_node] if spec.has_categorical else None
        return _merge(best, _best_in_feature(spec, hist, base, shift, m, is_cat)._replace(feature=f_node))

    best = jax.lax.fori_loop(0, per_shard, body, init)
    return _merge_shards(best) if spec.feature_shards > 1 else best


# ----------------------------------------------------------------------------- growth
def channels(spec: GrowSpec, target: Array, w: Array, shift: Array | None = None) -> Array:
    """Per-sample statistics ``(n, Q)`` summed into node totals and leaves; regression ones
    about the per-sample ``shift`` ``(n,)`` (the shift of the sample's node; default 0)."""
    if spec.classification:
        ch = w[:, None] * jax.nn.one_hot(target, spec.n_classes, dtype=jnp.float32)
    else:
        ch = _moments(spec, target, w, jnp.zeros_like(w) if shift is None else shift)
    if spec.counted:
        ch = jnp.concatenate([ch, (w > 0).astype(jnp.float32)[:, None]], axis=1)
    return ch


def _moments(spec: GrowSpec, target: Array, w: Array, c: Array) -> Array:
    """``(n, 2)``: :math:`(w (y - c), w)` (``variance``) or :math:`(w (g - c h), w h)` (``newton``)."""
    if spec.criterion == "variance":
        return jnp.stack([w * (target - c), w], axis=1)
    g, h = target[:, 0], target[:, 1]
    return jnp.stack([w * (g - c * h), w * h], axis=1)


def _mean_shift(s: Array) -> Array:
    """The mean :math:`c` of statistics ``(2, ...)`` summed about 0 (:math:`G/H` for ``newton``);
    0 where they hold no weight."""
    has = s[1] > 0
    return jnp.where(has, s[0] / jnp.where(has, s[1], 1.0), 0.0)


_RECORDS = ("feature", "split_bin", "threshold", "missing_left", "gain", "impurity", "weight")


def _records(spec: GrowSpec) -> tuple[str, ...]:
    return _RECORDS + ("categories",) if spec.has_categorical else _RECORDS


def _level(spec, n_nodes, level, node, alive, shift, bounds, data):
    """Split the nodes of one level; returns the per-node records, the samples' children, the
    shifts the children inherit and (monotonic constraints) their value bounds ``(2, 2L)``."""
    XbT, target, ch, w, lower, upper, key = data
    n = XbT.shape[1]
    cls = target if spec.classification else None
    if spec.classification:  # the channels do not depend on the node: computed once per tree
        tot = jax.ops.segment_sum(ch, node, num_segments=n_nodes).T  # (Q, L)
        tot_sq, c, dense = None, None, None
    else:
        cs = shift[node]
        ch = channels(spec, target, w, cs)
        dense = ch[:, :2]
        variance = spec.criterion == "variance"
        if variance:  # plus Σ w (y − c)², for the node's variance
            ch = jnp.concatenate([ch, (dense[:, 0] * (target - cs))[:, None]], axis=1)
        tot = jax.ops.segment_sum(ch, node, num_segments=n_nodes).T  # (Q [+ 1], L)
        tot, tot_sq = (tot[:-1], tot[-1]) if variance else (tot, None)
        ch = ch[:, :-1] if variance else ch
        c = None if variance else shift  # the variance proxy needs no shift (see _criteria)
    count = ch[:, -1] if spec.counted else None
    mono = None if bounds is None else (bounds[0], bounds[1], shift)
    best = _search_level(spec, XbT, node, n_nodes, cls, w, dense, count, parent_score(spec, tot, c), c,
                         jax.random.fold_in(key, level), mono)
    split = alive & jnp.isfinite(best.gain) & splittable(spec, tot, tot_sq, best.gain)
    # Route the samples; then settle what needs only the chosen split, from the samples:
    # where NaN goes when the node had none (the heavier child, as HistGradientBoosting does)
    # and, for midpoint thresholds, the first bin right of the split the node's samples use.
    col = XbT[best.feature[node], jnp.arange(n)].astype(jnp.int32)
    valued = col != spec.max_bins
    if spec.has_categorical:  # the set of bins going left (bins <= b for a numeric feature)
        right_value = ~best.left_bins[jnp.minimum(col, spec.max_bins - 1), node]
    else:
        right_value = col > best.bin[node]
    w_right = jax.ops.segment_sum(jnp.where(valued & right_value, w, 0.0), node, num_segments=n_nodes)
    w_left = jax.ops.segment_sum(jnp.where(valued & ~right_value, w, 0.0), node, num_segments=n_nodes)
    nan_left = jnp.where(best.has_nan, best.nan_left, w_left >= w_right)
    if spec.midpoint:
        later = jnp.where(valued & right_value & (w > 0), col, spec.max_bins)
        hi = jax.ops.segment_min(later, node, num_segments=n_nodes)
    else:
        hi = best.bin + 1
    thr = split_threshold(upper[best.feature, best.bin], lower[best.feature, jnp.minimum(hi, spec.max_bins)])
    record = dict(feature=jnp.where(split, best.feature, -1),
                  split_bin=jnp.where(split, best.bin, spec.max_bins),
                  threshold=jnp.where(split, thr, jnp.inf),
                  missing_left=jnp.where(split, nan_left, True),
                  gain=jnp.where(split, best.gain, 0.0),
                  impurity=node_impurity(spec, tot, tot_sq),
                  weight=weight_of(spec, tot))
    if spec.has_categorical:  # a set split: threshold NaN, the codes going left as a bitset
        is_cat = split & jnp.asarray(spec.categorical, bool)[best.feature]
        record["threshold"] = jnp.where(is_cat, jnp.nan, record["threshold"])
        record["categories"] = _category_bits(lower[best.feature, : spec.max_bins], best.left_bins, is_cat)
    right = jnp.where(valued, right_value, ~nan_left[node])
    node = 2 * node + (split[node] & right).astype(jnp.int32)
    children = None if bounds is None else _child_bounds(spec, shift, tot, best, split, bounds)
    return record, node, jnp.repeat(split, 2), _child_shifts(spec, shift, tot, best, split), children


def _category_bits(codes: Array, left_bins: Array, is_cat: Array) -> Array:
    """``(L, CATEGORY_WORDS)`` uint32 bitsets of the category codes going left: bit ``c % 32`` of
    word ``c // 32`` for each code ``c`` (a bin's value, ``codes`` ``(L, B)``) whose bin is in
    ``left_bins`` ``(B, L)``; zero where the node's split is not categorical (``is_cat``)."""
    n_nodes = codes.shape[0]
    size = 32 * CATEGORY_WORDS
    valid = left_bins.T & jnp.isfinite(codes) & is_cat[:, None]
    idx = jnp.clip(jnp.where(jnp.isfinite(codes), codes, 0), 0, size - 1).astype(jnp.int32)
    member = jnp.zeros((n_nodes, size), jnp.int32).at[jnp.arange(n_nodes)[:, None], idx].add(valid.astype(jnp.int32))
    bits = (member > 0).reshape(n_nodes, CATEGORY_WORDS, 32).astype(jnp.uint32)
    return jnp.sum(bits << jnp.arange(32, dtype=jnp.uint32)[None, None, :], axis=2, dtype=jnp.uint32)


def _child_shifts(spec: GrowSpec, shift: Array, tot: Array, best: _Best, split: Array) -> Array:
    """The shifts ``(2L,)`` of the children (heap order): their own means, from the winning
    split's left statistics and the node totals, both summed about the node's shift (a node
    that does not split sends all its samples to its left child)."""
    if spec.classification:
        return jnp.repeat(shift, 2)
    left = jnp.where(split[None], best.left, tot[:2])
    right = tot[:2] - left
    children = jnp.stack([shift + _mean_shift(left), shift + _mean_shift(right)], axis=1)
    return children.reshape(-1)


def _child_bounds(spec: GrowSpec, shift: Array, tot: Array, best: _Best, split: Array,
                  bounds: Array) -> Array:
    r"""The value bounds ``(2, 2L)`` of the children (heap order), as in LightGBM's basic
    method and scikit-learn's ``HistGradientBoosting*``: a split on a feature with constraint
    :math:`+1` gives the left child :math:`[l, m]` and the right :math:`[m, u]`, with
    :math:`m` the mean of the two children's values clipped to the node's :math:`[l, u]`
    (:math:`-1`: the other way round); any other split, or none, passes :math:`[l, u]` on."""
    lo, hi = bounds
    left = best.left
    vl = jnp.clip(node_value(spec, left, shift), lo, hi)
    vr = jnp.clip(node_value(spec, tot[:2] - left, shift), lo, hi)
    mid = 0.5 * (vl + vr)
    cst = jnp.where(split, jnp.asarray(spec.monotonic, jnp.int32)[best.feature], 0)
    lower = jnp.stack([jnp.where(cst < 0, mid, lo), jnp.where(cst > 0, mid, lo)], axis=1).reshape(-1)
    upper = jnp.stack([jnp.where(cst > 0, mid, hi), jnp.where(cst < 0, mid, hi)], axis=1).reshape(-1)
    return jnp.stack([lower, upper])


@functools.partial(jax.jit, static_argnums=0)
def grow(spec: GrowSpec, XbT: Array, target: Array, w: Array, lower: Array, upper: Array,
         key: Array) -> Grown:
    """Grow one tree.

    Args:
      spec: static settings.
      XbT: ``(d, n)`` binned features (bin ``max_bins`` = missing).
      target: class indices ``(n,)`` (gini/entropy), values ``(n,)`` (variance), or gradient
        and Hessian ``(n, 2)`` (newton).
      w: ``(n,)`` non-negative sample weights (0 excludes a sample: bootstrap, subsampling).
      lower, upper: ``(d, B + 1)`` smallest/largest value per bin, padded with ``+inf``.
      key: PRNG key for per-node feature sampling (unused without ``max_features``).

    With ``spec.monotonic`` the level carry also holds every node's value bounds and the
    result their leaves' (``Grown.leaf_bounds``), to which the leaf values are clipped.
    """
    if spec.constrained and spec.classification:
        raise ValueError(f"monotonic constraints need a regression criterion, got {spec.criterion!r}")
    if spec.has_categorical and spec.classification and spec.n_classes != 2:
        raise ValueError(f"categorical splits need two classes or a regression criterion, got {spec.n_classes}")
    n = XbT.shape[1]
    w = w.astype(jnp.float32)
    target = target.astype(jnp.int32 if spec.classification else jnp.float32)
    ch = channels(spec, target, w) if spec.classification else None
    data = (XbT, target, ch, w, lower, upper, key)
    node = jnp.zeros(n, jnp.int32)
    n_scan = spec.depth - min(spec.unrolled_levels, spec.depth)
    parts = {k: [] for k in _records(spec)}
    alive = jnp.ones(1, bool)
    bounds = _root_bounds(spec, 1)
    if spec.classification:
        shift = jnp.zeros(1, jnp.float32)
    else:  # the root's mean; every other node's comes from its parent's split
        shift = _mean_shift(jnp.sum(_moments(spec, target, w, jnp.zeros_like(w)), axis=0))[None]
    if n_scan:
        # Levels 0 .. n_scan−1 share one compiled body padded to the widest of them.
        width = 2 ** (n_scan - 1)

        def body(carry, level):
            node, alive, shift, bounds = carry
            record, node, alive, shift, bounds = _level(spec, width, level, node, alive[:width], shift[:width],
                                                        None if bounds is None else bounds[:, :width], data)
            return (node, alive, shift, bounds), record

        alive = jnp.zeros(2 * width, bool).at[0].set(True)
        shift = jnp.zeros(2 * width, jnp.float32).at[0].set(shift[0])
        bounds = _root_bounds(spec, 2 * width)
        (node, alive, shift, bounds), stacked = jax.lax.scan(body, (node, alive, shift, bounds),
                                                             jnp.arange(n_scan))
        lvl = np.concatenate([np.full(2**i, i) for i in range(n_scan)])
        pos = np.concatenate([np.arange(2**i) for i in range(n_scan)])
        for k in _records(spec):
            parts[k].append(stacked[k][lvl, pos])
    for level in range(n_scan, spec.depth):
        record, node, alive, shift, bounds = _level(spec, 2**level, level, node, alive, shift, bounds, data)
        for k in _records(spec):
            parts[k].append(record[k])
    out = {k: jnp.concatenate(v) for k, v in parts.items()}
    n_leaves = 2**spec.depth
    if spec.classification:
        leaf_shift = jnp.zeros(n_leaves, jnp.float32)
        leaf_stats = jax.ops.segment_sum(ch, node, num_segments=n_leaves)
    else:
        leaf_shift = shift[:n_leaves]
        leaf_stats = jax.ops.segment_sum(channels(spec, target, w, leaf_shift[node]), node,
                                         num_segments=n_leaves)
    return Grown(**out, leaf_stats=leaf_stats, leaf_shift=leaf_shift, leaf=node,
                 leaf_bounds=None if bounds is None else bounds[:, :n_leaves])


def _root_bounds(spec: GrowSpec, width: int) -> Array | None:
    r"""Value bounds ``(2, width)`` of a level's nodes before any split: :math:`[-\infty, \infty]`
    (None without monotonic constraints)."""
    if not spec.constrained:
        return None
    return jnp.stack([jnp.full(width, -jnp.inf, jnp.float32), jnp.full(width, jnp.inf, jnp.float32)])


def feature_parallel(spec: GrowSpec) -> GrowSpec:
    """``spec`` set to split its feature loop over every device (a no-op with one device)."""
    return spec._replace(feature_shards=jax.device_count())


def run_feature_parallel(spec: GrowSpec, fn, *args):
    """Call ``fn(*args)`` — which grows trees with ``spec`` — on every device at once, each
    device searching its share of the features (inputs and outputs replicated)."""
    if spec.feature_shards == 1:
        return fn(*args)
    devices = jax.devices()[: spec.feature_shards]
    mesh = jax.sharding.Mesh(np.array(devices), (FEATURE_AXIS,))
    replicated = jax.sharding.PartitionSpec()
    in_specs = jax.tree.map(lambda _: replicated, args)
    return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=replicated, check_vma=False)(*args)
