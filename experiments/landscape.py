"""The loss landscape of the trained MLP, and what its first layer learned.

    python -m experiments.landscape                    # 3 epochs on the best available MNIST
    python -m experiments.landscape --epochs 10 --grid 41

Trains the deck's 784-256-128-10 MLP with :func:`mlwork.train.fit`, then evaluates the
cross-entropy (evaluation mode, on ``--eval-examples`` training and test images)

* along the straight line from the initial to the trained parameters,
  θ(α) = (1 − α)·θ₀ + α·θ₁ — one vmapped program;
* on a plane through the trained parameters along two random filter-normalised directions
  (Li et al., 2018), J(θ* + α·δ + β·η) on a ``--grid`` × ``--grid`` mesh — one program, vmapped
  in chunks.

Writes ``landscape_1d.png``, ``landscape_2d.png``, ``first_layer_weights.png`` (rows of W^[1]
as 28×28 images, trained and minus their initial values: the deck's "what do hidden layers
learn?") and ``landscape.json`` into ``--out``. Exit codes (:data:`EXIT_CODES`): 0 success, 2 bad input.
The command line is parsed before JAX is imported, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import json

HELP = """\
The loss landscape of the trained MLP, and what its first layer learned.

Trains the deck's 784-256-128-10 MLP with mlwork.train.fit, then evaluates the cross-entropy
(evaluation mode, on --eval-examples training and test images)

  - along the straight line from the initial to the trained parameters,
    theta(a) = (1 - a) theta_0 + a theta_1 (one vmapped program);
  - on a plane through the trained parameters along two random filter-normalised directions
    (Li et al., 2018), J(theta* + a d + b e) on a --grid x --grid mesh (one program, vmapped in
    chunks of --chunk parameter sets).

Writes landscape_1d.png, landscape_2d.png, first_layer_weights.png (rows of W[1] as 28x28
images, trained and minus their initial values: the deck's "what do hidden layers learn?") and
landscape.json into --out.

examples:
  python -m experiments.landscape                    # 3 epochs on the best available MNIST
  python -m experiments.landscape --epochs 10 --grid 41"""

EXIT_CODES = {
    0: "success",
    2: "bad input: a flag, or the data set could not be loaded (one line on stderr, nothing written)",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags -> namespace; exits 2 with one line on a bad flag. Imports no JAX."""
    from experiments._common import add_out_arg, experiment_parser
    from experiments._data import add_source_argument
    from mlwork.train.config import DATASETS

    p = experiment_parser("landscape", HELP, EXIT_CODES)
    p.add_argument("--dataset", choices=DATASETS, default="mnist", help="data set (default: %(default)s)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder with the four IDX files (default: none, the --source chain)")
    add_source_argument(p)
    p.add_argument("--epochs", type=int, default=3, metavar="N", help="epochs to train, >= 1 (default: %(default)s)")
    p.add_argument("--examples", type=int, default=None, metavar="N",
                   help="train on the first N training images, at least 128 (default: all)")
    p.add_argument("--eval-examples", type=int, default=1000, metavar="N",
                   help="images the loss is evaluated on, per split (default: %(default)s)")
    p.add_argument("--points", type=int, default=41, metavar="N",
                   help="points along the 1-D line, >= 2 (default: %(default)s)")
    p.add_argument("--line-range", type=float, nargs=2, default=(-0.25, 1.25), metavar=("START", "STOP"),
                   help="alpha range of the line, 0 = initial, 1 = trained (default: -0.25 1.25)")
    p.add_argument("--grid", type=int, default=25, metavar="N",
                   help="points per axis of the 2-D slice, >= 2 (default: %(default)s)")
    p.add_argument("--span", type=float, default=1.0,
                   help="the 2-D slice covers [-span, span]^2, > 0 (default: %(default)s)")
    p.add_argument("--chunk", type=int, default=32, metavar="N",
                   help="parameter sets evaluated at once (memory) (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default: %(default)s)")
    p.add_argument("--filters", type=int, default=32, metavar="N",
                   help="first-layer units to draw (default: %(default)s)")
    add_out_arg(p, "runs/landscape")
    args = p.parse_args(argv)
    for name in ("epochs", "eval_examples", "chunk", "filters"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer; got {getattr(args, name)}")
    for name in ("points", "grid"):
        if getattr(args, name) < 2:
            p.error(f"--{name} must be at least 2; got {getattr(args, name)}")
    if args.examples is not None and args.examples < 128:
        p.error(f"--examples must be at least 128; got {args.examples}")
    if not args.span > 0:
        p.error(f"--span must be positive; got {args.span}")
    return args


def plot_line(path, alphas, losses, names):
    from experiments._common import pyplot, save_figure

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, name in enumerate(names):
        ax.plot(alphas, losses[:, i], "-", label=name)
    for a, label in ((0.0, "initial θ₀"), (1.0, "trained θ₁")):
        ax.axvline(a, color="gray", ls=":", lw=1)
        ax.text(a, ax.get_ylim()[1], label, ha="center", va="bottom", fontsize=8)
    ax.set(xlabel="α   (θ = (1−α)·θ₀ + α·θ₁)", ylabel="cross-entropy (nats)", yscale="log",
           title="loss along the line from initial to trained parameters")
    ax.legend()
    return save_figure(fig, path)


def plot_plane(path, alphas, betas, surface):
    import numpy as np

    from experiments._common import pyplot, save_figure

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    z = np.log10(np.maximum(surface, 1e-12))
    levels = np.linspace(z.min(), min(z.max(), z.min() + 3.0), 25)
    cs = ax.contourf(alphas, betas, z, levels=levels, cmap="viridis", extend="max")
    ax.contour(alphas, betas, z, levels=levels[::3], colors="white", linewidths=0.5)
    ax.plot([0], [0], "r*", ms=12, label="trained θ*")
    fig.colorbar(cs, ax=ax, label="log₁₀ cross-entropy")
    ax.set(xlabel="α (filter-normalised direction δ)", ylabel="β (filter-normalised direction η)",
           title="loss on a random 2-D slice through θ*", aspect="equal")
    ax.legend(loc="upper right", fontsize=8)
    return save_figure(fig, path)


def plot_weights(path, w_trained, w_initial, n):
    """Rows of W^[1] as 28×28 images: the trained weights, and what training changed
    (trained − initial), where the learned strokes show through the random initialisation."""
    import numpy as np

    from experiments._common import pyplot, save_figure

    plt = pyplot()

    n = min(n, w_trained.shape[0])
    cols = 8
    rows = -(-n // cols)
    fig, axes = plt.subplots(2 * rows, cols, figsize=(cols * 1.1, 2 * rows * 1.15))
    axes = np.asarray(axes).reshape(2, rows * cols)
    for block, (weights, label) in enumerate(((w_trained, "trained W^[1]"),
                                              (w_trained - w_initial, "learned change W^[1] − W^[1]_init"))):
        for i, ax in enumerate(axes[block]):
            ax.axis("off")
            if i < n:
                w = weights[i].reshape(28, 28)
                lim = float(np.max(np.abs(w))) or 1.0
                ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[block][0].set_title(label, fontsize=9, loc="left")
    fig.suptitle(f"first-layer weights of {n} hidden units, one 28×28 image each (red +, blue −)")
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import dataclasses

    import jax
    import jax.numpy as jnp
    import numpy as np
    from tqdm.auto import tqdm

    from experiments._common import out_dir
    from experiments._data import load_or_report
    from mlwork import nn
    from mlwork.data import preprocess
    from mlwork.train import TrainConfig, fit, init_state
    from mlwork.train.diagnostics import filter_normalized_direction, loss_along_line, loss_surface
    from mlwork.train.errors import EXIT_BAD_INPUT

    dataset = load_or_report(args.dataset, args.data_dir, args.source)
    if dataset is None:
        return EXIT_BAD_INPUT
    if args.examples is not None:
        dataset = dataclasses.replace(dataset, train_images=dataset.train_images[: args.examples],
                                      train_labels=dataset.train_labels[: args.examples])
    out = out_dir(args.out)
    stages = tqdm(total=3, desc="landscape", disable=None)
    config = TrainConfig(model="mlp", dataset=args.dataset, epochs=args.epochs, seed=args.seed)
    result = fit(config, dataset)
    stages.update(1)
    model, mean, std = result.run.model, result.run.mean, result.run.std
    theta0, theta1 = init_state(result.run).params, result.state.params

    def split(images, labels):
        k = min(args.eval_examples, len(labels))
        return preprocess(jnp.asarray(images[:k]), mean, std), jnp.asarray(labels[:k], jnp.int32)

    x_tr, y_tr = split(dataset.train_images, dataset.train_labels)
    x_te, y_te = split(dataset.test_images, dataset.test_labels)

    def losses(params, x_tr, y_tr, x_te, y_te):  # train and test cross-entropy, evaluation mode
        def ce(x, y):
            return nn.softmax_cross_entropy(model.apply({"params": params, "state": {}}, x)[0], y)

        return jnp.stack([ce(x_tr, y_tr), ce(x_te, y_te)])

    data = (x_tr, y_tr, x_te, y_te)
    # the grid, plus the two endpoints exactly (α = 0: initial, α = 1: trained)
    alphas = np.union1d(np.linspace(*args.line_range, args.points), [0.0, 1.0]).astype(np.float32)
    line = np.asarray(loss_along_line(losses, theta0, theta1, alphas, *data, chunk=args.chunk))
    stages.update(1)
    k1, k2 = jax.random.split(jax.random.fold_in(jax.random.key(args.seed), 7))
    d1, d2 = filter_normalized_direction(k1, theta1), filter_normalized_direction(k2, theta1)
    grid = np.linspace(-args.span, args.span, args.grid, dtype=np.float32)
    plane = np.asarray(loss_surface(losses, theta1, d1, d2, grid, grid, *data, chunk=args.chunk))
    stages.update(1)
    stages.close()

    names = ["train", "test"]
    written = [plot_line(out / "landscape_1d.png", alphas, line, names),
               plot_plane(out / "landscape_2d.png", grid, grid, plane[..., 0]),
               plot_weights(out / "first_layer_weights.png", np.asarray(theta1[0]["W"]), np.asarray(theta0[0]["W"]),
                            args.filters)]
    at = {float(a): i for i, a in enumerate(alphas)}
    centre = args.grid // 2 if args.grid % 2 else None
    summary = {
        "dataset": dataset.name, "data_source": dataset.source, "epochs": args.epochs,
        "train_examples": int(len(dataset.train_labels)), "eval_examples": int(x_tr.shape[0]),
        "final_val_accuracy": result.history[-1]["val_accuracy"] if result.history else None,
        "alphas": alphas.tolist(), "line_train_loss": line[:, 0].tolist(), "line_test_loss": line[:, 1].tolist(),
        "grid": grid.tolist(), "surface_train_loss": plane[..., 0].tolist(),
        "loss_initial": line[at[0.0], 0].item() if 0.0 in at else None,
        "loss_trained": line[at[1.0], 0].item() if 1.0 in at else None,
        "surface_centre": plane[centre, centre, 0].item() if centre is not None else None,
        "surface_max": float(plane[..., 0].max()), "plots": [str(p) for p in written],
    }
    (out / "landscape.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"data: {dataset.source}; MLP trained {args.epochs} epochs on {summary['train_examples']} images "
          f"(validation accuracy {summary['final_val_accuracy']:.4f})")
    print("| point | train loss | test loss |")
    print("|---|---|---|")
    for a in (0.0, 0.5, 1.0):
        if a in at:
            print(f"| α = {a:g} | {line[at[a], 0]:.4f} | {line[at[a], 1]:.4f} |")
    i_min = int(np.argmin(line[:, 0]))
    print(f"| min on the line (α = {alphas[i_min]:.2f}) | {line[i_min, 0]:.4f} | {line[i_min, 1]:.4f} |")
    print(f"2-D slice ({args.grid}×{args.grid}, span ±{args.span:g}): train loss {plane[..., 0].min():.4f} – "
          f"{plane[..., 0].max():.4f}")
    print(f"outputs: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
