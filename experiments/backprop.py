"""Backpropagation by hand vs ``jax.grad`` (deck section 13).

    python -m experiments.backprop

1. The deck's single neuron: z = w·x + b, a = σ(z), L = (a − y)² with x = (0.5, 0.8, −0.3),
   w = (0.2, 0.4, −0.5), b = 0.1, y = 1, with every chain-rule factor printed.
2. A deeper MLP: the hand-written delta recurrence (``mlwork.nn.backprop``) against ``jax.grad``,
   with the largest difference per layer.

The command line is parsed before JAX is imported, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse

HELP = """\
Backpropagation by hand vs jax.grad (deck section 13).

1. The deck's single neuron: z = w.x + b, a = sigmoid(z), L = (a - y)^2 with x = (0.5, 0.8, -0.3),
   w = (0.2, 0.4, -0.5), b = 0.1, y = 1, with every chain-rule factor printed.
2. A deeper MLP (--sizes): the hand-written delta recurrence (mlwork.nn.backprop) against
   jax.grad on a random batch, with the largest difference per layer."""

EXIT_CODES = {0: "success", 2: "bad input: a flag (one line on stderr)"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags -> namespace (``sizes`` a list of ints); exits 2 with one line on a bad flag. Imports no JAX."""
    from experiments._common import experiment_parser, int_list

    parser = experiment_parser("backprop", HELP, EXIT_CODES)
    parser.add_argument("--sizes", default="8,16,16,4",
                        help="MLP widths, input to output, comma-separated (default: %(default)s)")
    parser.add_argument("--activation", default="tanh", choices=["relu", "sigmoid", "tanh"],
                        help="hidden-layer activation (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=32, metavar="N",
                        help="examples in the random batch, >= 1 (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed (default: %(default)s)")
    args = parser.parse_args(argv)
    args.sizes = int_list(parser, "--sizes", args.sizes, at_least=2)
    if args.batch <= 0:
        parser.error(f"--batch must be a positive integer; got {args.batch}")
    return args


def single_neuron() -> dict[str, float | list[float]]:
    """The chain-rule factors of the deck's single-neuron example."""
    import jax
    import jax.numpy as jnp

    from mlwork import nn

    x = jnp.array([0.5, 0.8, -0.3], jnp.float32)
    w = jnp.array([0.2, 0.4, -0.5], jnp.float32)
    b, y = jnp.float32(0.1), jnp.float32(1.0)
    z = jnp.dot(w, x) + b
    a = nn.sigmoid(z)
    dL_da = 2.0 * (a - y)
    da_dz = nn.sigmoid_grad(z)
    dL_dz = dL_da * da_dz
    loss = lambda w, b: (nn.sigmoid(jnp.dot(w, x) + b) - y) ** 2  # noqa: E731
    auto_w, auto_b = jax.grad(loss, argnums=(0, 1))(w, b)
    return {
        "z": float(z), "a": float(a), "loss": float((a - y) ** 2), "dL/da": float(dL_da),
        "da/dz": float(da_dz), "dL/dz": float(dL_dz), "dL/dw": [float(v) for v in dL_dz * x],
        "dL/db": float(dL_dz), "jax dL/dw": [float(v) for v in auto_w], "jax dL/db": float(auto_b),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import jax
    import jax.numpy as jnp

    from mlwork import nn

    sizes = args.sizes

    r = single_neuron()
    print("Single neuron (deck section 13): z = w.x + b, a = sigmoid(z), L = (a - y)^2")
    print(f"  z = {r['z']:.4f}   a = {r['a']:.4f}   L = {r['loss']:.4f}")
    print(f"  dL/da = 2(a - y)        = {r['dL/da']:.5f}")
    print(f"  da/dz = a(1 - a)        = {r['da/dz']:.5f}")
    print(f"  dL/dz = dL/da * da/dz   = {r['dL/dz']:.5f}")
    print("  dL/dw = dL/dz * x       = (" + ", ".join(f"{v:.5f}" for v in r["dL/dw"]) + ")")
    print(f"  dL/db = dL/dz           = {r['dL/db']:.5f}")
    print("  jax.grad: dL/dw         = (" + ", ".join(f"{v:.5f}" for v in r["jax dL/dw"]) + ")"
          f", dL/db = {r['jax dL/db']:.5f}")

    model = nn.mlp(sizes, activation=args.activation)
    k_init, k_x, k_y = jax.random.split(jax.random.key(args.seed), 3)
    params = model.init(k_init, (sizes[0],))["params"]
    x = jax.random.normal(k_x, (args.batch, sizes[0]))
    labels = jax.random.randint(k_y, (args.batch,), 0, sizes[-1])
    cost = lambda p: nn.softmax_cross_entropy(model.apply({"params": p}, x)[0], labels)  # noqa: E731
    auto = jax.grad(cost)(params)
    hand = nn.backprop(params, x, labels, activation=args.activation, loss="softmax_cross_entropy")
    print(f"\nMLP {sizes} ({args.activation}, softmax cross-entropy, batch {args.batch}):"
          " hand-written backprop vs jax.grad")
    worst = 0.0
    for l, (h, a) in enumerate(zip(hand, auto, strict=True), start=1):
        dw = float(jnp.max(jnp.abs(h["W"] - a["W"])))
        db = float(jnp.max(jnp.abs(h["b"] - a["b"])))
        scale = float(jnp.max(jnp.abs(a["W"])))
        worst = max(worst, dw, db)
        print(f"  layer {l}: W{tuple(a['W'].shape)} max|diff| = {dw:.2e} (max|grad| {scale:.2e}),"
              f" b max|diff| = {db:.2e}")
    print(f"  largest difference over all parameters: {worst:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
