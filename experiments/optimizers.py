"""SGD, momentum, RMSprop and Adam on the deck's two classic landscapes, and every schedule.

    python -m experiments.optimizers [--steps 3000] [--out runs/optimizers]

Each optimizer runs as one compiled ``lax.scan`` on an ill-conditioned 2-D quadratic
(condition number 25) and on Rosenbrock's banana. Writes:

* ``trajectories.png`` — the paths over the loss contours,
* ``loss.png`` — loss vs step (log scale),
* ``schedules.png`` — every learning-rate schedule over 100 epochs,

and prints a table of final losses and the steps each needed to get within tolerance.
The command line is parsed before JAX is imported, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jax
    import numpy as np
    import optax

HELP = """\
SGD, momentum, RMSprop and Adam on the deck's two classic landscapes, and every schedule.

Each optimizer runs as one compiled program (a lax.scan over the steps) on an ill-conditioned
2-D quadratic, 1/2 (x^2 + 25 y^2) (condition number 25), and on Rosenbrock's banana,
(1 - x)^2 + 100 (y - x^2)^2. Writes trajectories.png (the paths over the loss contours),
loss.png (loss vs step, log scale) and schedules.png (every learning-rate schedule over 100
epochs) into --out, and prints a table of final losses and the steps each optimizer needed to
get within tolerance."""

EPILOG = """\
exit codes:
    0  success
    2  bad input: a flag (one line on stderr, nothing written)
(the exit codes of every experiment: the docs' reliability guide)"""

QUAD_SCALES = (1.0, 25.0)


def quadratic(x: jax.Array) -> jax.Array:
    """½(x² + 25 y²): minimum 0 at the origin, condition number 25."""
    import jax.numpy as jnp

    return 0.5 * jnp.sum(jnp.asarray(QUAD_SCALES) * x * x)


def rosenbrock(x: jax.Array) -> jax.Array:
    """(1 − x)² + 100 (y − x²)²: minimum 0 at (1, 1) at the end of a curved valley."""
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


PROBLEMS = {
    "quadratic": {"f": quadratic, "x0": (-4.0, 1.5), "tol": 1e-6,
                  "box": ((-4.5, 4.5), (-2.0, 2.0))},
    "rosenbrock": {"f": rosenbrock, "x0": (-1.5, 2.0), "tol": 1e-4,
                   "box": ((-2.0, 2.0), (-1.0, 3.0))},
}

# (optimizer, learning rate on the quadratic, on Rosenbrock): each near its best on the problem.
RUNS = [("sgd", 0.07, 1e-3), ("momentum", 0.02, 3e-4), ("rmsprop", 0.01, 3e-3), ("adam", 0.1, 0.03)]


def trajectory(tx: optax.GradientTransformation, f, x0: jax.Array, steps: int):
    """Run ``tx`` on ``f`` from ``x0`` for ``steps`` steps in one ``lax.scan``; returns the
    path (steps + 1, d) and the losses along it (steps + 1,)."""
    import jax
    import jax.numpy as jnp
    import optax

    def body(carry, _):
        x, state = carry
        loss, g = jax.value_and_grad(f)(x)
        updates, state = tx.update(g, state, x)
        return (optax.apply_updates(x, updates), state), (x, loss)

    (x_last, _), (xs, losses) = jax.lax.scan(body, (x0, tx.init(x0)), None, length=steps)
    return jnp.concatenate([xs, x_last[None]]), jnp.concatenate([losses, f(x_last)[None]])


def steps_to_tolerance(losses: np.ndarray, tol: float) -> int | None:
    """First step whose loss is below ``tol`` and stays below it, or None."""
    import numpy as np

    below = losses < tol
    if not below[-1]:
        return None
    above = np.nonzero(~below)[0]
    return 0 if above.size == 0 else int(above[-1] + 1)


def schedules_over(epochs: int = 100) -> dict[str, np.ndarray]:
    """Every schedule of :mod:`mlwork.optim` evaluated over ``epochs`` (one step per epoch)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mlwork import optim

    kinds = {
        "constant": optim.schedule("constant", value=0.1),
        "step (s=20, γ=0.5)": optim.schedule("step", init_value=0.1, step_size=20, gamma=0.5),
        "exponential_decay (λ=0.03)": optim.schedule("exponential", init_value=0.1, rate=0.03),
        "cosine": optim.schedule("cosine", init_value=0.1, total_steps=epochs, min_value=0.001),
        "warmup_cosine (10)": optim.schedule("warmup_cosine", peak_value=0.1, warmup_steps=10,
                                             total_steps=epochs),
        "onecycle": optim.schedule("onecycle", peak_value=0.1, total_steps=epochs),
    }
    t = jnp.arange(epochs + 1)
    return {name: np.asarray(jax.vmap(s)(t)) for name, s in kinds.items()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags -> namespace; exits 2 with one line on a bad flag. Imports no JAX."""
    parser = argparse.ArgumentParser(prog="python -m experiments.optimizers", description=HELP, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, metavar="N",
                        help="optimizer steps per run, a positive integer (default: %(default)s)")
    parser.add_argument("--out", default="runs/optimizers", metavar="DIR",
                        help="folder for the plots, created if missing (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.steps <= 0:
        parser.error(f"--steps must be a positive integer; got {args.steps}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import jax
    import jax.numpy as jnp
    import numpy as np

    from experiments._common import out_dir, plt, save_figure
    from mlwork import optim

    out = out_dir(args.out)

    results, rows = {}, []
    for problem, spec in PROBLEMS.items():
        x0 = jnp.array(spec["x0"], jnp.float32)
        for name, lr_quad, lr_rosen in RUNS:
            lr = lr_quad if problem == "quadratic" else lr_rosen
            tx = optim.optimizer(name, lr)
            run = jax.jit(functools.partial(trajectory, tx, spec["f"], steps=args.steps))
            xs, losses = (np.asarray(a) for a in run(x0))
            results[problem, name] = (xs, losses)
            hit = steps_to_tolerance(losses, spec["tol"])
            rows.append((problem, name, lr, float(losses[-1]), hit))

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, (problem, spec) in zip(axes, PROBLEMS.items(), strict=True):
        (x_lo, x_hi), (y_lo, y_hi) = spec["box"]
        gx, gy = np.meshgrid(np.linspace(x_lo, x_hi, 300), np.linspace(y_lo, y_hi, 300))
        grid = jnp.stack([jnp.asarray(gx, jnp.float32), jnp.asarray(gy, jnp.float32)], -1).reshape(-1, 2)
        z = np.asarray(jax.vmap(spec["f"])(grid)).reshape(gx.shape)
        ax.contour(gx, gy, np.log10(z + 1e-3), levels=25, cmap="Greys", linewidths=0.6)
        for name, *_ in RUNS:
            xs, _ = results[problem, name]
            ax.plot(xs[:, 0], xs[:, 1], ".-", ms=2, lw=1, label=name)
        ax.plot(*spec["x0"], "ko")
        ax.plot(*((0, 0) if problem == "quadratic" else (1, 1)), "r*", ms=12)
        ax.set(title=f"{problem}: optimizer paths", xlim=(x_lo, x_hi), ylim=(y_lo, y_hi))
        ax.legend()
    save_figure(fig, out / "trajectories.png")

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for ax, problem in zip(axes, PROBLEMS, strict=True):
        for name, *_ in RUNS:
            ax.semilogy(np.maximum(results[problem, name][1], 1e-16), label=name)
        ax.set(title=f"{problem}: loss vs step", xlabel="step", ylabel="loss")
        ax.legend()
    save_figure(fig, out / "loss.png")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, values in schedules_over(100).items():
        ax.plot(values, label=name)
    ax.set(title="learning-rate schedules over 100 epochs", xlabel="epoch", ylabel="learning rate")
    ax.legend()
    save_figure(fig, out / "schedules.png")

    print(f"{'problem':<11} {'optimizer':<9} {'lr':>7} {'final loss':>11} {'steps to tol':>13}")
    for problem, name, lr, final, hit in rows:
        hit_s = str(hit) if hit is not None else f">{args.steps}"
        final_s = f"{final:.3e}" if math.isfinite(final) else "diverged"
        print(f"{problem:<11} {name:<9} {lr:>7g} {final_s:>11} {hit_s:>13}")
    tols = ", ".join(f"{p} {spec['tol']:g}" for p, spec in PROBLEMS.items())
    print(f"tolerances: {tols}")
    print(f"plots: {out / 'trajectories.png'}, {out / 'loss.png'}, {out / 'schedules.png'}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
