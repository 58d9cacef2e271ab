"""One level of the tree grower's split search: a full pass against histogram subtraction.

    python -m bench.trees_hist_subtraction
    python -m bench.trees_hist_subtraction --shapes 100000x50 --levels 1,3,5 --repeats 9

The question (issue 29): would building only the smaller child's histogram of every sibling
pair, and deriving the larger one as parent − smaller (XGBoost's and LightGBM's trick), make
gradient boosting's fit plausibly 1.3x faster? For every shape ``n x d`` (default the two data
sets of :mod:`bench.trees`: 100k x 50 and 60k x 784; random bins 0..255, Newton statistics,
``reg_lambda=1``, samples spread at random over the ``L = 2^l`` nodes of level ``l``), five
compiled programs, each one device's loop over the ``d`` features as in
:mod:`mlwork.trees._grow`:

* ``full``: the present split search, per feature one ``segment_sum`` of ``n`` updates into
  ``L (B + 1)`` bins (:func:`~mlwork.trees._grow._feature_hist`) and the best split per node
  (:func:`~mlwork.trees._grow._best_in_feature`, merged over features);
* ``full_hist``: the same loop with the histograms only (each reduced to one number per node),
  so ``full_hist / full`` is the share of the search that subtraction can speed up;
* ``subtract``: the smaller child (by sample count) of every pair compacted once into a padded
  index list of static size ``n // 2`` (``jnp.nonzero``), then per feature its bins gathered
  (in the loop: a gather of the whole ``(d, n/2)`` block once is slower at ``d = 784``), one
  ``segment_sum`` of ``n/2`` updates into ``(L/2)(B + 1)`` bins of statistics summed about the
  parent's shift, the larger child as parent − smaller, both moved to their own shifts
  (:math:`\\sum w(g - c'h) = \\sum w(g - ch) - (c' - c)\\sum wh`), interleaved into the level's
  ``(Q, L, B + 1)`` histogram and searched as in ``full``;
* ``subtract_hist``: ``subtract`` with the histograms only;
* ``compact``: the compaction alone.

Level 0 has no parent: ``subtract`` is ``full`` there. Before timing, the subtracted histogram
of feature 0 is checked against the full one (``max_rel_diff``: largest absolute difference
over the largest absolute bin). Figures: medians of ``--repeats`` steady-state calls, the
programs interleaved call by call so that machine noise hits them alike; ratios within one
process only. ``tree`` rows sum the levels: the split search of one depth-``D`` tree, full
against level 0 full plus levels ``1..D-1`` subtracted (an upper bound of the whole-fit gain,
which also pays gradients, routing and leaves). With ``--fit-rounds R1,R2``, ``fit`` rows time
whole boosting fits of ``R1`` and ``R2`` rounds in the same process (see :func:`_fit_share`):
the cost of a round, the fixed cost, and the split search's share of a round. The load average
is recorded with each row.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from pathlib import Path

N_BINS = 255


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="100000x50,60000x784", help="comma-separated n x d")
    parser.add_argument("--levels", default="0,1,2,3,4,5",
                        help="comma-separated levels (L = 2^level nodes; default one depth-6 tree)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per program (default 7)")
    parser.add_argument("--fit-rounds", default="",
                        help="R1,R2: also time whole boosting fits of R1 and R2 rounds on the same bins "
                             "(the split search's share of a round; e.g. 3,9)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be positive")
    if args.fit_rounds and not _rounds_ok(args.fit_rounds):
        parser.error(f"--fit-rounds must be two increasing positive integers R1,R2; got {args.fit_rounds!r}")
    return args


def _programs():
    import jax
    import jax.numpy as jnp

    from mlwork.trees._criteria import parent_score
    from mlwork.trees._grow import GrowSpec, _Best, _best_in_feature, _feature_hist, _merge, _moments

    spec = GrowSpec(depth=6, max_bins=N_BINS, criterion="newton", reg_lambda=1.0, min_child_weight=1.0,
                    midpoint=False)
    nb = N_BINS + 1

    def search(n_nodes, d, hist_of, tot, shift, with_best):
        base = parent_score(spec, tot, shift)
        no = jnp.zeros(n_nodes, bool)
        init = _Best(jnp.full(n_nodes, -jnp.inf), jnp.zeros(n_nodes, jnp.int32), jnp.zeros(n_nodes, jnp.int32),
                     no, no, jnp.zeros((2, n_nodes), jnp.float32))

        def body(k, best):
            hist = hist_of(k)
            if not with_best:  # one number per node, so that the histogram is not optimised away
                return best._replace(gain=best.gain + jnp.sum(hist[0] * hist[1], axis=-1))
            new = _best_in_feature(spec, hist, base, shift)._replace(feature=jnp.full(n_nodes, k, jnp.int32))
            return _merge(best, new)

        return jax.lax.fori_loop(0, d, body, init).gain

    @functools.partial(jax.jit, static_argnums=(0, 1))
    def full(n_nodes, with_best, XbT, gh, node, shift):
        dense = _moments(spec, gh, jnp.ones(gh.shape[0]), shift[node])
        tot = jax.ops.segment_sum(dense, node, num_segments=n_nodes).T

        def hist_of(k):
            col = jax.lax.dynamic_index_in_dim(XbT, k, keepdims=False).astype(jnp.int32)
            return _feature_hist(spec, col, node, n_nodes, None, None, dense, None)

        return search(n_nodes, XbT.shape[0], hist_of, tot, shift, with_best)

    def compaction(n_nodes, node):
        n = node.shape[0]
        count = jax.ops.segment_sum(jnp.ones(n, jnp.int32), node, num_segments=n_nodes).reshape(-1, 2)
        right_small = count[:, 1] < count[:, 0]  # per pair; ties: the left child
        small = (node & 1) == right_small[node >> 1].astype(jnp.int32)
        idx = jnp.nonzero(small, size=n // 2, fill_value=n)[0]
        return right_small, idx < n, jnp.minimum(idx, n - 1)

    @functools.partial(jax.jit, static_argnums=0)
    def compact(n_nodes, node):
        return compaction(n_nodes, node)

    def subtracted(n_nodes, XbT, gh, node, shift, parent_hist, parent_shift):
        """The level's histogram of feature k, (Q, L, B + 1), about every node's own shift."""
        half = n_nodes // 2
        right_small, valid, idx = compaction(n_nodes, node)
        pair = node[idx] >> 1
        dense = jnp.where(valid[:, None], _moments(spec, gh[idx], jnp.ones(idx.shape[0]), parent_shift[pair]), 0.0)
        to_own = (shift.reshape(half, 2) - parent_shift[:, None]).T  # (2, L/2): c' − c per child

        def hist_of(k):
            col = jax.lax.dynamic_index_in_dim(XbT, k, keepdims=False)[idx].astype(jnp.int32)
            sm = _feature_hist(spec, col, pair, half, None, None, dense, None)       # (Q, L/2, B + 1)
            big = jax.lax.dynamic_index_in_dim(parent_hist, k, keepdims=False) - sm
            r = right_small[None, :, None]
            left, right = jnp.where(r, big, sm), jnp.where(r, sm, big)
            left = left.at[0].add(-to_own[0][:, None] * left[1])
            right = right.at[0].add(-to_own[1][:, None] * right[1])
            return jnp.stack([left, right], axis=2).reshape(2, n_nodes, nb)

        return hist_of

    @functools.partial(jax.jit, static_argnums=(0, 1))
    def subtract(n_nodes, with_best, XbT, gh, node, shift, parent_hist, parent_shift):
        tot = jax.ops.segment_sum(_moments(spec, gh, jnp.ones(gh.shape[0]), shift[node]), node,
                                  num_segments=n_nodes).T
        hist_of = subtracted(n_nodes, XbT, gh, node, shift, parent_hist, parent_shift)
        return search(n_nodes, XbT.shape[0], hist_of, tot, shift, with_best)

    @functools.partial(jax.jit, static_argnums=0)
    def hists(n_nodes, XbT, gh, node, shift):
        """Every feature's full histogram (d, Q, L, B + 1) about the nodes' own shifts."""
        dense = _moments(spec, gh, jnp.ones(gh.shape[0]), shift[node])
        return jax.vmap(lambda col: _feature_hist(spec, col.astype(jnp.int32), node, n_nodes, None, None,
                                                  dense, None))(XbT)

    @functools.partial(jax.jit, static_argnums=0)
    def first_subtracted(n_nodes, XbT, gh, node, shift, parent_hist, parent_shift):
        return subtracted(n_nodes, XbT, gh, node, shift, parent_hist, parent_shift)(0)

    return full, subtract, compact, hists, first_subtracted


def _rounds_ok(text: str) -> bool:
    parts = text.split(",")
    return len(parts) == 2 and all(p.isdigit() for p in parts) and 0 < int(parts[0]) < int(parts[1])


def _fit_share(args, XbT, full, repeats: int) -> dict:
    """Whole boosting fits against the split search of one tree, in one process: a fit of
    ``R1`` and of ``R2`` rounds (logistic loss, Newton leaves, depth 6, lambda 1, on the bins as
    features with random binary labels) give the cost of a round (their difference over
    ``R2 - R1``) and the fixed cost (host binning, set-up); the split search of a tree is the
    ``full`` program at levels 0-5 (samples spread at random over the nodes)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mlwork import trees

    r1, r2 = (int(v) for v in args.fit_rounds.split(","))
    d, n = XbT.shape
    rng = np.random.default_rng(1)
    X = np.asarray(XbT).T.astype(np.float32)
    y = rng.integers(0, 2, n).astype(np.int32)
    gh = jnp.asarray(np.stack([rng.normal(0.3, 1.0, n), rng.uniform(0.05, 0.25, n)], 1).astype(np.float32))
    leaf = rng.integers(0, 2**5, n)
    levels = [(2**lv, jnp.asarray((leaf >> (5 - lv)).astype(np.int32)), jnp.zeros(2**lv, jnp.float32))
              for lv in range(6)]

    def fit(rounds):
        return lambda: trees.fit_gradient_boosting(X, y, loss="logistic", n_estimators=rounds, learning_rate=0.1,
                                                   max_depth=6, second_order=True, reg_lambda=1.0,
                                                   min_child_weight=1.0)

    def search():
        return [jax.block_until_ready(full(L, True, XbT, gh, node, shift)) for L, node, shift in levels]

    med = _interleaved({"fit_r1": fit(r1), "fit_r2": fit(r2), "search_tree": search}, repeats)
    per_round = (med["fit_r2"] - med["fit_r1"]) / (r2 - r1)
    return dict(kind="fit", n=n, d=d, fit_rounds=args.fit_rounds, **{f"{k}_s": v for k, v in med.items()},
                round_s=per_round, fixed_s=med["fit_r1"] - r1 * per_round,
                search_share_of_round=med["search_tree"] / per_round)


def _interleaved(fns: dict, repeats: int) -> dict:
    import jax

    for f in fns.values():
        jax.block_until_ready(f())
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f())
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def run(args) -> list[dict]:
    import jax.numpy as jnp
    import numpy as np

    full, subtract, compact, hists, first_subtracted = _programs()
    rows = []
    for shape in args.shapes.split(","):
        n, d = (int(v) for v in shape.split("x"))
        rng = np.random.default_rng(0)
        XbT = jnp.asarray(rng.integers(0, N_BINS + 1, (d, n), dtype=np.uint8))
        gh = jnp.asarray(np.stack([rng.normal(0.3, 1.0, n), rng.uniform(0.05, 0.25, n)], 1).astype(np.float32))
        leaf = rng.integers(0, 2**5, n)  # the deepest level's node; level l's is leaf >> (5 - l)
        tree = {"full_s": 0.0, "subtract_s": 0.0}
        for level in sorted(int(v) for v in args.levels.split(",")):
            L = 2**level
            node = jnp.asarray((leaf >> (5 - level)).astype(np.int32))
            shift = jnp.asarray(rng.normal(0.0, 0.5, L).astype(np.float32))
            call = functools.partial  # every program bound to this level's arrays
            fns = {"full": call(full, L, True, XbT, gh, node, shift),
                   "full_hist": call(full, L, False, XbT, gh, node, shift)}
            diff = None
            if level:
                pnode = node >> 1
                pshift = jnp.asarray(rng.normal(0.0, 0.5, L // 2).astype(np.float32))
                phist = hists(L // 2, XbT, gh, pnode, pshift)
                ref = np.asarray(hists(L, XbT[:1], gh, node, shift)[0], np.float64)
                got = np.asarray(first_subtracted(L, XbT, gh, node, shift, phist, pshift), np.float64)
                diff = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
                fns |= {"subtract": call(subtract, L, True, XbT, gh, node, shift, phist, pshift),
                        "subtract_hist": call(subtract, L, False, XbT, gh, node, shift, phist, pshift),
                        "compact": call(compact, L, node)}
            med = _interleaved(fns, args.repeats)
            med.setdefault("subtract", med["full"])
            load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            row = dict(kind="level", n=n, d=d, level=level, nodes=L, **{f"{k}_s": v for k, v in med.items()},
                       hist_share=med["full_hist"] / med["full"],
                       ratio_full_over_subtract=med["full"] / med["subtract"], max_rel_diff=diff, loadavg=load)
            tree["full_s"] += med["full"]
            tree["subtract_s"] += med["subtract"]
            print(f"  {n:>6} x {d:<4} level {level} ({L:>2} nodes)  full {med['full'] * 1e3:7.1f} ms "
                  f"(histograms {row['hist_share']:.0%})  subtract {med['subtract'] * 1e3:7.1f} ms  "
                  f"ratio {row['ratio_full_over_subtract']:4.2f}  compact "
                  f"{med.get('compact', 0) * 1e3:5.1f} ms  rel diff {diff}  (load {load})", flush=True)
            rows.append(row)
        ratio = tree["full_s"] / tree["subtract_s"]
        print(f"  {n:>6} x {d:<4} tree (levels {args.levels})  full {tree['full_s'] * 1e3:7.1f} ms  "
              f"subtract {tree['subtract_s'] * 1e3:7.1f} ms  ratio {ratio:4.2f}", flush=True)
        rows.append(dict(kind="tree", n=n, d=d, levels=args.levels, **tree, ratio_full_over_subtract=ratio,
                         loadavg=" ".join(Path("/proc/loadavg").read_text().split()[:3])))
        if args.fit_rounds:
            row = _fit_share(args, XbT, full, max(3, args.repeats // 2))
            row["loadavg"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            print(f"  {n:>6} x {d:<4} fit: a round {row['round_s'] * 1e3:7.1f} ms, fixed {row['fixed_s']:.2f} s, "
                  f"split search of a tree {row['search_tree_s'] * 1e3:7.1f} ms "
                  f"({row['search_share_of_round']:.0%} of a round)  (load {row['loadavg']})", flush=True)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from bench.common import append_results

    rows = run(args)
    if not args.no_record:
        append_results("trees_hist_subtraction", rows,
                       notes=f"median of {args.repeats}, programs interleaved; 1 CPU device; shared 2-core machine")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
