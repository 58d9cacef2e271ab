"""The floor under gradient boosting's fit time: XLA:CPU's scatter-add, per value added.

    python -m bench.trees_scatter_floor
    python -m bench.trees_scatter_floor --n 100000 --features 50 --repeats 9

The grower (:mod:`mlwork.trees._grow`) builds every histogram with one ``segment_sum`` per
feature: ``n`` rows of ``Q`` channels (Newton: ``(g, h)``, ``Q = 2``) added into ``L (B + 1)``
bins. This benchmark times that scatter alone, in a compiled loop over ``--features`` features
as in the grower, for the layouts that could change its cost:

* ``f32 (n, 2)``: the grower's layout, both channels in one scatter;
* ``f32 (n,) x 2``: one scatter per channel;
* ``f32 (n,)`` and ``int32 (n,)``: one channel (what packing both channels into one 32-bit
  word, as quantized-gradient boosting does, would scatter);
* ``f32 interleaved (2n,)``: both channels flattened into one scatter of ``2n`` values.

``ns_per_value`` is the median time over ``n · features · channels`` values added. The
``floor`` row multiplies the grower's layout by the scatter volume of a ``bench.trees``
boosting fit (``--rounds`` rounds of ``--depth`` levels, every level a full pass over ``n``
rows and every feature) and divides by ``--devices`` (the fit splits its features over the
devices): the time the present algorithm spends in scatters alone, with nothing else, to hold
against XGBoost's fit time from :mod:`bench.trees` in the same session. Histogram subtraction
(:mod:`bench.trees_hist_subtraction`) would scale the levels below the root by at most 1/2.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def _seg(x, idx, size):
    import jax

    return jax.ops.segment_sum(x, idx, num_segments=size)


def _one(x, idx, size):
    return _seg(x[:, 0] if x.ndim == 2 else x, idx, size)


def _two(x, idx, size):
    import jax.numpy as jnp

    return jnp.stack([_seg(x[:, 0], idx, size), _seg(x[:, 1], idx, size)], axis=1)


def _interleaved(x, idx, size):
    import jax.numpy as jnp

    flat = _seg(x.reshape(-1), (2 * idx[:, None] + jnp.arange(2)[None, :]).reshape(-1), 2 * size)
    return flat.reshape(size, 2)


#: name -> (one feature's histogram ``fn(values, bins (n,), size)``, channels scattered per row):
#: ``values`` ``(n, 2)`` float32 give ``(size, 2)`` (the one-channel layouts: channel 0, ``(size,)``);
#: the int32 layout takes ``(n,)`` int32 values.
LAYOUTS = {
    "f32 (n, 2)": (_seg, 2),
    "f32 (n,) x 2": (_two, 2),
    "f32 (n,)": (_one, 1),
    "int32 (n,)": (_seg, 1),
    "f32 interleaved (2n,)": (_interleaved, 2),
}


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="rows (default 100000)")
    parser.add_argument("--features", type=int, default=50, help="features per loop (default 50)")
    parser.add_argument("--nodes", type=int, default=32, help="nodes of the level (default 32)")
    parser.add_argument("--repeats", type=int, default=9, help="timed calls per layout (default 9)")
    parser.add_argument("--rounds", type=int, default=100, help="boosting rounds for the floor row (default 100)")
    parser.add_argument("--depth", type=int, default=6, help="tree depth for the floor row (default 6)")
    parser.add_argument("--devices", type=int, default=2, help="devices sharing the features (default 2)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    args = parser.parse_args(argv)
    if min(args.n, args.features, args.nodes, args.repeats, args.rounds, args.depth, args.devices) < 1:
        parser.error("every count must be positive")
    return args


def main(argv=None) -> list[dict]:
    args = _parse(argv)
    import jax
    import jax.numpy as jnp
    import numpy as np

    n, d, n_nodes, nb = args.n, args.features, args.nodes, 257
    size = n_nodes * nb
    rng = np.random.default_rng(0)
    base = jnp.asarray(rng.integers(0, n_nodes, n) * nb + rng.integers(0, 256, n), jnp.int32)
    dense = jnp.asarray(rng.normal(size=(n, 2)), jnp.float32)
    ints = jnp.asarray(rng.integers(-1000, 1000, n), jnp.int32)

    layouts = {name: (fn, ints if name.startswith("int32") else dense, q) for name, (fn, q) in LAYOUTS.items()}

    def program(fn, x):
        def body(j, acc):  # a different bin offset per feature, as different columns would give
            return acc + jnp.sum(fn(x, (base + j * 7) % size, size))

        return jax.jit(lambda v: jax.lax.fori_loop(0, d, body, jnp.zeros((), v.dtype)))

    compiled = {name: (program(fn, x), x, q) for name, (fn, x, q) in layouts.items()}
    for f, x, _ in compiled.values():
        jax.block_until_ready(f(x))
    times = {name: [] for name in compiled}
    for _ in range(args.repeats):  # interleaved, so that machine noise hits every layout alike
        for name, (f, x, _) in compiled.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f(x))
            times[name].append(time.perf_counter() - t0)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    rows = []
    for name, (_, _, q) in compiled.items():
        med = statistics.median(times[name])
        rows.append(dict(layout=name, n=n, features=d, nodes=n_nodes, median_s=med,
                         ns_per_value=med / (n * d * q) * 1e9, loadavg=load))
        print(f"{name:24s} {med * 1e3:8.2f} ms per {d} features  {rows[-1]['ns_per_value']:.3f} ns per value",
              flush=True)
    per_value = rows[0]["ns_per_value"] * 1e-9
    floor = per_value * args.rounds * args.depth * n * 2 * d / args.devices
    rows.append(dict(layout="floor", n=n, features=d, rounds=args.rounds, depth=args.depth, devices=args.devices,
                     floor_s=floor, loadavg=load))
    print(f"scatter floor of {args.rounds} rounds x depth {args.depth} over {args.devices} devices: {floor:.2f} s "
          f"(load {load})", flush=True)
    if not args.no_record:
        from bench.common import append_results

        append_results("trees_scatter_floor", rows,
                       notes=f"n={n} features={d} nodes={n_nodes} repeats={args.repeats}; one device's loop")
    return rows


if __name__ == "__main__":
    main()
