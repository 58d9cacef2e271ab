"""The deck's mathematical foundations (sections 1-7), worked example by worked example.

    python -m experiments.foundations [--out runs/foundations] [--sizes 4,5,4,2] [--seed 0]

Prints every worked example of sections 1-7 with the value mlwork.foundations computes for it,
and writes three figures into --out:

* secant_tangent.png: secants of f(x) = x^2 through x = 1 turning into the tangent (slope 2);
* riemann.png: left Riemann rectangles under x^2 on [0, 2] for n = 4, 8, 64 (exact area 8/3);
* mlp_graph.png: the MLP --sizes drawn as a layered graph, edges coloured by their weights.

The command line is parsed before JAX is imported, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from experiments._common import out_dir, pyplot, save_figure

if TYPE_CHECKING:
    from mlwork import foundations as fd

HELP = """\
The deck's mathematical foundations (sections 1-7), worked example by worked example.

Prints every worked example of sections 1-7 with the value mlwork.foundations computes for it,
and writes three figures into --out:

  secant_tangent.png  secants of f(x) = x^2 through x = 1 turning into the tangent (slope 2)
  riemann.png         left Riemann rectangles under x^2 on [0, 2] for n = 4, 8, 64 (exact area 8/3)
  mlp_graph.png       the MLP --sizes drawn as a layered graph, edges coloured by their weights"""

EXIT_CODES = {0: "success", 2: "bad input: a flag (one line on stderr, nothing written)"}

#: Widest layer the MLP drawing accepts (more neurons make an unreadable picture).
MAX_DRAWN_WIDTH = 32


def _heading(title: str) -> None:
    print(f"\n== {title} ==")


def _square(x):
    return x * x


def _estimate(result: fd.LimitResult) -> str:
    """A limit as an estimate: its value to the digits its error supports, and that error."""
    if result.kind != "converges":
        return f"{result.value:g} ({result.kind})"
    if not result.error > 0:
        return f"{result.value:g}"
    digits = max(0, min(12, -math.floor(math.log10(2 * result.error))))
    value = round(result.value, digits) + 0.0  # + 0.0: no "-0"
    return f"{value:g} (± {result.error:.0e})"


# ---------------------------------------------------------------------------------------------
# Sections 1-2: numbers
# ---------------------------------------------------------------------------------------------


def numbers_section() -> None:
    import jax.numpy as jnp

    from mlwork import foundations as fd

    _heading("1. Foundations of numbers")
    q_max = 10_000
    found = fd.sqrt_fractions(2, q_max)
    print(f"  p/q with p^2 = 2 q^2 and q <= {q_max}: {found if found else 'none'}  (sqrt 2 is irrational)")
    print("  truncations of sqrt 2: " + ", ".join(str(t) for t in fd.sqrt_convergents(2, 4))
          + "  (all rational; none squares to 2)")
    print(f"  density of Q: between 1/2 and 3/4 lies {fd.midpoint('1/2', '3/4')}; "
          f"and between 0 and 1: {', '.join(map(str, fd.rationals_between(0, 1, 4)))}")
    table = fd.closure_table()
    ops = list(next(iter(table.values())))
    print("  closure under " + "  ".join(f"{op:>5}" for op in ops))
    for system, row in table.items():
        print(f"    {system:<13}" + "  ".join(f"{'yes' if row[op].closed else 'no':>5}" for op in ops))
    for system, row in table.items():
        for op, cell in row.items():
            if not cell.closed:
                print(f"    {system} is not closed under {op}: {cell.counterexample}")

    _heading("2. Real and complex numbers")
    z = jnp.complex64(2 + 3j) * jnp.complex64(1 - 1j)
    print(f"  (2 + 3i)(1 - i) = {complex(z):.4g}   (deck: 5 + i)")
    euler = complex(fd.euler(jnp.pi)) + 1
    print(f"  e^(i pi) + 1 = {euler.real:.2g} {euler.imag:+.2g}i   (Euler's identity: 0, to float32)")
    print(f"  |3 + 4i| = {float(fd.modulus(3 + 4j)):.4g},  arg(-1) = {float(fd.argument(-1.0)):.6f} = pi")
    powers = [complex(fd.rotate(1.0, k * jnp.pi / 2)) for k in range(5)]
    print("  i^0..i^4 as rotations of 1 by 90 degrees: "
          + ", ".join(f"{round(p.real):+d}{round(p.imag):+d}i" for p in powers) + "  (period 4)")


# ---------------------------------------------------------------------------------------------
# Section 3: functions
# ---------------------------------------------------------------------------------------------


def functions_section() -> None:
    import jax.numpy as jnp
    import optax

    from mlwork import foundations as fd

    _heading("3. Functions and parameters")
    f = lambda x: fd.polynomial(x, {"a": jnp.array([0.0, 0.0, 1.0])})  # noqa: E731  x^2
    g = lambda x: fd.linear(x, {"m": 1.0, "b": 1.0})  # noqa: E731  x + 1
    print(f"  f(x) = x^2: f(3) = {float(f(3.0)):g};  g(x) = 2x + 1: g(-1) = "
          f"{float(fd.linear(-1.0, {'m': 2.0, 'b': 1.0})):g}")
    print(f"  composition with f = x^2, g = x + 1 at x = 2: (f o g)(2) = {float(fd.compose(f, g)(2.0)):g}, "
          f"(g o f)(2) = {float(fd.compose(g, f)(2.0)):g}  (order matters)")
    pairs = [("x + 3", lambda x: x + 3, 10.0), ("2x", lambda x: 2 * x, 10.0),
             ("e^x", jnp.exp, 10.0), ("x^2 (x >= 0)", _square, 9.0)]
    for name, fn, y in pairs:
        lo = 0.0 if "x >= 0" in name else -20.0
        print(f"  inverse of {name:<13} at y = {y:g}: {float(fd.inverse(fn, y, (lo, 20.0))):.6g}")
    x = jnp.linspace(-1.0, 1.0, 21)
    y = 2.0 * x - 0.5
    result = fd.fit_curve(fd.linear, {"m": 0.0, "b": 0.0}, x, y, optax.sgd(0.3), steps=100)
    print(f"  training = turning knobs: fit m x + b to y = 2x - 0.5 by SGD: m = "
          f"{float(result.params['m']):.4f}, b = {float(result.params['b']):.4f}, "
          f"loss {float(result.losses[0]):.3g} -> {float(result.losses[-1]):.2g}")


# ---------------------------------------------------------------------------------------------
# Sections 4-6: calculus
# ---------------------------------------------------------------------------------------------


def calculus_section() -> None:
    import jax
    import jax.numpy as jnp

    from mlwork import foundations as fd

    _heading("4. Limits")
    lim = fd.limit(lambda x: 3 * x + 1, 2.0)
    decades = {0.1, 0.01, 0.001}  # the deck's h = 0.1, 0.01, 0.001 (the table has more points)
    table = [(x, v) for x, v in lim.table if any(abs(abs(x - 2) - h) < 1e-3 * h for h in decades)]
    print("  x    : " + "  ".join(f"{x:7.4g}" for x, _ in table))
    print("  3x+1 : " + "  ".join(f"{v:7.4g}" for _, v in table))
    print(f"  lim x->2 (3x + 1) = {_estimate(lim)}")
    print(f"  lim x->0 sin(x)/x = {_estimate(fd.limit(lambda x: jnp.sin(x) / x, 0.0))}")
    print(f"  lim x->inf (2x + 1)/x = {_estimate(fd.limit(lambda x: (2 * x + 1) / x, math.inf))}")
    print(f"  lim x->inf 1/x = {_estimate(fd.limit(lambda x: 1 / x, math.inf))}")
    cancel = fd.limit(lambda x: (1 - jnp.cos(x)) / x**2, 0.0)
    print(f"  lim x->0 (1 - cos x)/x^2 = {_estimate(cancel)}  (rounding took over below h = "
          f"{cancel.precision_lost_at:.0e}: 1 - cos x cancels; in float32 it is exactly 0 below 1e-4)")
    step = fd.limit(lambda x: jnp.where(x >= 0, 1.0, 0.0), 0.0)
    print(f"  step function at 0: left {step.left:g}, right {step.right:g} -> {step.kind}, no limit")
    pole = fd.limit(lambda x: 1 / x, 0.0)
    print(f"  1/x at 0: left {pole.left}, right {pole.right} -> {pole.kind}")

    _heading("5. Differentiation")
    for method in ("forward", "central"):
        print(f"  d/dx x^2 at 3 ({method} difference, h = 1e-2): "
              f"{float(fd.derivative(_square, 3.0, 1e-2, method)):.6f}")
    print(f"  d/dx x^2 at 3 (jax.grad): {float(jax.grad(_square)(3.0)):g}   (deck: 2x = 6)")
    chain = fd.nth_derivative(lambda x: (x**2 + 1) ** 3, 1)(1.0)
    print(f"  d/dx (x^2 + 1)^3 at 1 = {float(chain):g}   (6x(x^2 + 1)^2 = 24)")
    h = lambda x, y: x**2 * y + 3 * x * y**2  # noqa: E731
    print(f"  f = x^2 y + 3 x y^2 at (1, 2): df/dx = {float(fd.partial(h, 0)(1.0, 2.0)):g} (2xy + 3y^2 = 16), "
          f"df/dy = {float(fd.partial(h, 1)(1.0, 2.0)):g} (x^2 + 6xy = 13)")
    print("  error of the difference quotient for (e^x)' at 0.5 (float32):")
    print("      h        forward    central")
    for step_h in (1e-1, 1e-2, 1e-3, 1e-5, 1e-7):
        errs = [abs(float(fd.derivative(jnp.exp, 0.5, step_h, m)) - math.exp(0.5))
                for m in ("forward", "central")]
        print(f"    {step_h:7.0e}  {errs[0]:9.2e}  {errs[1]:9.2e}")
    chosen = abs(float(fd.derivative(jnp.exp, 0.5)) - math.exp(0.5))
    print(f"    h=None: {chosen:.2e} (central quotients on a ladder of steps, extrapolated to h -> 0)")
    descent = fd.gradient_descent(lambda x: (x - 3.0) ** 2, 0.0, 0.1, 30)
    print(f"  gradient descent on (x - 3)^2 from 0, eta = 0.1: x_30 = {float(descent.path[-1]):.5f}, "
          f"f(x_30) = {float(descent.values[-1]):.2e}")

    _heading("6. Integration")
    for n in (4, 8, 64):
        left_sum = float(fd.riemann_sum(_square, 0.0, 2.0, n))
        print(f"  int_0^2 x^2 dx, left Riemann sum n = {n:2d}: {left_sum:.6f}")
    print(f"  trapezoid n = 64: {float(fd.trapezoid(_square, 0.0, 2.0, 64)):.6f}, "
          f"Simpson n = 2: {float(fd.simpson(_square, 0.0, 2.0, 2)):.6f}   (exact 8/3 = {8 / 3:.6f})")
    by_parts = fd.antiderivative(lambda t: t * jnp.exp(t), 0.0)
    print(f"  int_0^1 x e^x dx = {float(by_parts(1.0)):.6f}   (e^x (x - 1) from 0 to 1 = 1)")
    area = fd.antiderivative(jnp.cos, 0.0)
    print(f"  FTC: d/dx int_0^x cos t dt at x = 1 (jax.grad) = {float(jax.grad(area)(1.0)):.6f}, "
          f"cos 1 = {math.cos(1.0):.6f}")
    mu, sigma = 1.5, 0.7

    def pdf(x):
        return jax.scipy.stats.norm.pdf(x, mu, sigma)

    total = fd.integrate(pdf, -math.inf, math.inf)
    mean = fd.integrate(lambda x: x * pdf(x), -math.inf, math.inf)
    print(f"  Gaussian N({mu}, {sigma}^2): int p = {float(total):.6f}, E[X] = int x p = {float(mean):.6f}")


# ---------------------------------------------------------------------------------------------
# Section 7: graphs
# ---------------------------------------------------------------------------------------------


def graphs_section(sizes: list[int], seed: int) -> tuple[fd.LayeredGraph, list]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mlwork import foundations as fd
    from mlwork import nn

    _heading("7. Graph theory")
    A = fd.adjacency_matrix([(1, 2), (1, 3), (2, 3), (3, 4)], [1, 2, 3, 4])
    print("  G = (V, E), V = {1, 2, 3, 4}, E = {12, 13, 23, 34}:")
    print(f"    degrees {np.asarray(fd.degree(A)).tolist()}, connected: {bool(fd.is_connected(A))}, "
          f"bipartite: {bool(fd.is_bipartite(A))} (triangle 1-2-3)")
    cycle = jnp.array([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]], jnp.float32)
    print(f"  the deck's 4-cycle matrix: symmetric {bool(jnp.all(cycle == cycle.T))}, "
          f"bipartite {bool(fd.is_bipartite(cycle))}, groups "
          f"{(np.flatnonzero(~np.asarray(fd.bipartition(cycle))) + 1).tolist()} | "
          f"{(np.flatnonzero(np.asarray(fd.bipartition(cycle))) + 1).tolist()}, "
          f"distances from 1: {np.asarray(fd.shortest_path_lengths(cycle, 0)).astype(int).tolist()}")
    K5 = fd.complete_graph(5)
    print(f"  K5: {int(jnp.sum(K5)) // 2} edges, every degree {int(fd.degree(K5)[0])}")
    graph = fd.mlp_graph(sizes)
    model = nn.mlp(sizes, activation="relu")
    variables = model.init(jax.random.key(seed), (sizes[0],))
    x = jax.random.normal(jax.random.fold_in(jax.random.key(seed), 1), (sizes[0],))
    on_graph = fd.graph_forward(graph, variables["params"], "relu", x)
    direct, _ = model.apply(variables, x)
    print(f"  MLP {sizes} as a DAG: {int(jnp.sum(graph.adjacency))} edges, "
          f"is DAG {bool(fd.is_dag(graph.adjacency))}, {fd.graph_param_count(graph)} parameters "
          f"(nn.count_params: {nn.count_params(variables)})")
    print(f"  forward pass along the graph in topological order vs nn.mlp: max difference "
          f"{float(jnp.max(jnp.abs(on_graph - direct))):.1e}")
    return graph, variables["params"]


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def plot_secant_tangent(path: Path) -> Path:
    import jax
    import numpy as np

    from mlwork import foundations as fd

    plt = pyplot()

    x0 = 1.0
    xs = np.linspace(-0.2, 3.2, 200)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(xs, xs**2, color="black", lw=2, label="f(x) = x²")
    colors = plt.cm.viridis(np.linspace(0.1, 0.8, 4))
    for h, c in zip((2.0, 1.0, 0.5, 0.1), colors, strict=True):
        slope = float(fd.derivative(_square, x0, h, "forward"))
        ax.plot(xs, x0**2 + slope * (xs - x0), color=c, lw=1, label=f"secant h = {h:g}: slope {slope:.2f}")
        ax.plot([x0 + h], [(x0 + h) ** 2], "o", color=c, ms=4)
    tangent = float(jax.grad(_square)(x0))
    ax.plot(xs, x0**2 + tangent * (xs - x0), "r--", lw=2, label=f"tangent (jax.grad): slope {tangent:g}")
    ax.plot([x0], [x0**2], "ro")
    ax.set(xlim=(-0.2, 3.2), ylim=(-1, 10), xlabel="x", ylabel="y",
           title="From secant to tangent at x = 1 as h → 0")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_riemann(path: Path) -> Path:
    import numpy as np

    from mlwork import foundations as fd

    plt = pyplot()

    xs = np.linspace(0, 2, 200)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    for ax, n in zip(axes, (4, 8, 64), strict=True):
        dx = 2.0 / n
        left = np.arange(n) * dx
        ax.bar(left, left**2, width=dx, align="edge", color="tab:blue", alpha=0.4, edgecolor="tab:blue")
        ax.plot(xs, xs**2, color="black")
        total = float(fd.riemann_sum(_square, 0.0, 2.0, n))
        ax.set(title=f"n = {n}: sum = {total:.4f}", xlabel="x")
    axes[0].set_ylabel("f(x) = x²")
    fig.suptitle(f"Left Riemann sums of ∫₀² x² dx = 8/3 ≈ {8 / 3:.4f}", y=1.02)
    return save_figure(fig, path)


def plot_mlp_graph(graph: fd.LayeredGraph, params: list, path: Path) -> Path:
    import numpy as np

    from mlwork import foundations as fd

    plt = pyplot()

    sizes, layer = graph.sizes, np.asarray(graph.layer)
    index_in_layer = np.concatenate([np.arange(n) for n in sizes])
    pos = np.stack([layer.astype(float), index_in_layer - (np.asarray(sizes)[layer] - 1) / 2], axis=1)
    weights = np.asarray(fd.edge_weights(graph, params).edges)
    scale = np.abs(weights).max() or 1.0
    fig, ax = plt.subplots(figsize=(1.8 * len(sizes) + 1, 0.45 * max(sizes) + 1.5))
    for u, v in zip(*np.nonzero(np.asarray(graph.adjacency)), strict=True):
        w = weights[u, v]
        ax.plot(*zip(pos[u], pos[v], strict=True), color="tab:red" if w > 0 else "tab:blue",
                lw=0.3 + 2.5 * abs(w) / scale, alpha=0.7, zorder=1)
    ax.scatter(pos[:, 0], pos[:, 1], s=260, c="white", edgecolors="black", zorder=2)
    names = ["input"] + [f"hidden {l}" for l in range(1, len(sizes) - 1)] + ["output"]
    for l, name in enumerate(names):
        ax.text(l, -(max(sizes) + 0.2) / 2, f"{name}\n{sizes[l]}", ha="center", va="top", fontsize=9)
    ax.set_title(f"MLP {list(sizes)} as a weighted DAG: {fd.graph_param_count(graph)} parameters\n"
                 "(red: positive weight, blue: negative; width ∝ |w|)", fontsize=10)
    ax.axis("off")
    return save_figure(fig, path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags -> namespace (``sizes`` a list of ints); exits 2 with one line on a bad flag. Imports no JAX."""
    from experiments._common import add_out_arg, experiment_parser, int_list

    parser = experiment_parser("foundations", HELP, EXIT_CODES)
    add_out_arg(parser, "runs/foundations")
    parser.add_argument("--sizes", default="4,5,4,2",
                        help="MLP layer widths for the graph section, comma-separated, at most "
                             f"{MAX_DRAWN_WIDTH} each (default: the deck's %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed for the MLP's weights (default: %(default)s)")
    args = parser.parse_args(argv)
    args.sizes = int_list(parser, "--sizes", args.sizes, at_least=2)
    if max(args.sizes) > MAX_DRAWN_WIDTH:
        parser.error(f"--sizes must be widths of at most {MAX_DRAWN_WIDTH} (more neurons are too many to draw); "
                     f"got {max(args.sizes)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = args.sizes
    out = out_dir(args.out)

    print("From Numbers to Neural Networks, sections 1-7, computed with mlwork.foundations")
    numbers_section()
    functions_section()
    calculus_section()
    graph, params = graphs_section(sizes, args.seed)

    figures = [plot_secant_tangent(out / "secant_tangent.png"), plot_riemann(out / "riemann.png"),
               plot_mlp_graph(graph, params, out / "mlp_graph.png")]
    print("\nFigures: " + ", ".join(str(p) for p in figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
