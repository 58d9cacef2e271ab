"""The deck's worked forward pass (section 11), step by step, then on a batch with ``jax.vmap``.

    python -m experiments.forward_pass

Network 3 -> 2 -> 1 (ReLU hidden layer, sigmoid output) with the deck's weights, input
x = (0.5, 0.8, -0.3): z^[1] = (0.67, -0.33), a^[1] = (0.67, 0), z^[2] = 0.702, ŷ ≈ 0.669.

The command line is parsed before JAX is imported, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlwork import nn

HELP = """\
The deck's worked forward pass (section 11), step by step, then on a batch with jax.vmap.

Network 3 -> 2 -> 1 (ReLU hidden layer, sigmoid output) with the deck's weights, input
x = (0.5, 0.8, -0.3): z[1] = (0.67, -0.33), a[1] = (0.67, 0), z[2] = 0.702, y_hat ~ 0.669."""

EXIT_CODES = {0: "success", 2: "bad input: a flag (one line on stderr)"}

W1 = [[0.2, 0.4, -0.5], [-0.3, 0.1, 0.2]]
B1 = [0.1, -0.2]
W2 = [[0.6, -0.4]]
B2 = [0.3]
X = [0.5, 0.8, -0.3]


def deck_network() -> tuple[nn.Model, dict]:
    """The deck's 3 -> 2 -> 1 network and its variables."""
    import jax.numpy as jnp

    from mlwork import nn

    model = nn.mlp([3, 2, 1], activation="relu", output_activation="sigmoid")
    params = [
        {"W": jnp.array(W1, jnp.float32), "b": jnp.array(B1, jnp.float32)},
        {"W": jnp.array(W2, jnp.float32), "b": jnp.array(B2, jnp.float32)},
    ]
    return model, {"params": params, "state": {}}


def _fmt(v) -> str:
    import numpy as np

    return "(" + ", ".join(f"{float(t):.4g}" for t in np.ravel(v)) + ")"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags -> namespace; exits 2 with one line on a bad flag. Imports no JAX."""
    from experiments._common import experiment_parser

    parser = experiment_parser("forward_pass", HELP, EXIT_CODES)
    parser.add_argument("--batch", type=int, default=4, metavar="N",
                        help="batch size for the vmap demo, >= 1 (row 0 is the deck's x) (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed of the other rows (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.batch <= 0:
        parser.error(f"--batch must be a positive integer; got {args.batch}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mlwork import nn

    model, variables = deck_network()
    x = jnp.array(X, jnp.float32)
    zs, acts = nn.forward_cache(variables["params"], x, "relu", "sigmoid")
    print("Forward pass of the deck's 3 -> 2 -> 1 network (section 11)")
    print(f"  x        = {_fmt(x)}")
    print(f"  W[1]     = {W1},  b[1] = {B1}")
    print(f"  z[1]     = W[1] x + b[1]      = {_fmt(zs[0])}")
    print(f"  a[1]     = ReLU(z[1])         = {_fmt(acts[1])}")
    print(f"  W[2]     = {W2},  b[2] = {B2}")
    print(f"  z[2]     = W[2] a[1] + b[2]   = {_fmt(zs[1])}")
    print(f"  y_hat    = sigmoid(z[2])      = {_fmt(acts[2])}")
    y_hat, _ = model.apply(variables, x)
    print(f"  model.apply gives y_hat = {float(y_hat[0]):.4f}  (deck: 0.669)")

    key = jax.random.key(args.seed)
    xs = jnp.concatenate([x[None], jax.random.normal(key, (args.batch - 1, 3))])[: args.batch]
    batched = jax.vmap(lambda xi: model.apply(variables, xi)[0])(xs)
    print(f"\nThe same network on a batch of {args.batch} with jax.vmap (row 0 is the deck's x):")
    for xi, yi in zip(np.asarray(xs), np.asarray(batched), strict=True):
        print(f"  x = {_fmt(xi):32s} -> y_hat = {float(yi[0]):.4f}")
    direct, _ = model.apply(variables, xs)
    print(f"  max |vmap - batched apply| = {float(jnp.max(jnp.abs(batched - direct))):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
