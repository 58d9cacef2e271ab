"""Run the deck's debugging checklist on a model and a data set, and print what it measured.

    python -m experiments.checklist                        # the MLP on the best available MNIST
    python -m experiments.checklist --model cnn
    python -m experiments.checklist --fault unnormalised   # see a check catch a planted bug

The eight checks (:mod:`mlwork.train.diagnostics.checklist`): overfit one batch, labels,
normalisation, gradient flow, loss/task match, train/eval mode, shapes, initial loss ≈ ln 10.
``--fault`` plants one of the classic bugs first — a detached layer, un-normalised inputs,
shuffled labels, MSE on softmax outputs, a 10× too high learning rate — so the table shows which
check catches it and what it names as the likely cause.

Writes ``checklist.md`` (the table) and ``checklist.json`` (every measured value) into
``--out``. Exit codes (:data:`EXIT_CODES`): 0 every check passed, 1 some check failed, 2 bad input.
The command line is parsed before JAX is imported, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import functools
import json

FAULTS = ("none", "detached", "unnormalised", "shuffled-labels", "mse-softmax", "high-lr")

HELP = """\
Run the deck's debugging checklist on a model and a data set, and print what it measured.

The eight checks (mlwork.train.diagnostics.checklist): overfit one batch, labels, normalisation,
gradient flow, loss/task match, train/eval mode, shapes, initial loss ~ ln 10. --fault plants one
of the classic bugs first (a detached layer, un-normalised inputs, shuffled labels, MSE on softmax
outputs, a 10x too high learning rate), so the table shows which check catches it and what it
names as the likely cause. Writes checklist.md (the table) and checklist.json (every measured
value) into --out.

examples:
  python -m experiments.checklist                        # the MLP on the best available MNIST
  python -m experiments.checklist --model cnn
  python -m experiments.checklist --fault unnormalised   # see a check catch a planted bug"""

EXIT_CODES = {
    0: "every check passed",
    1: "some check failed (the table printed says which, and the likely cause)",
    2: "bad input: a flag, or the data set could not be loaded (one line on stderr, nothing written)",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags -> namespace; exits 2 with one line on a bad flag. Imports no JAX."""
    from experiments._common import add_out_arg, experiment_parser
    from experiments._data import add_source_argument
    from mlwork.train.config import DATASETS, OPTIMIZERS

    p = experiment_parser("checklist", HELP, EXIT_CODES)
    p.add_argument("--model", choices=("mlp", "cnn"), default="mlp",
                   help="the deck's 784-256-128-10 MLP, or the CNN (default: %(default)s)")
    p.add_argument("--dataset", choices=DATASETS, default="mnist", help="data set (default: %(default)s)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder with the four IDX files (default: none, the --source chain)")
    add_source_argument(p)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="Optax optimizer (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate, > 0 (default: %(default)s)")
    p.add_argument("--dropout", type=float, default=0.2, help="dropout probability, in [0, 1) (default: %(default)s)")
    p.add_argument("--examples", type=int, default=5000, metavar="N",
                   help="training examples the checks look at, at least 128 (default: %(default)s)")
    p.add_argument("--overfit-steps", type=int, default=100, metavar="N",
                   help="steps for check 1 (overfit one batch), >= 1 (default: %(default)s)")
    p.add_argument("--fault", choices=FAULTS, default="none",
                   help="plant a bug first, to see which check catches it (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default: %(default)s)")
    add_out_arg(p, "runs/checklist")
    args = p.parse_args(argv)
    if args.examples < 128:
        p.error(f"--examples must be at least 128; got {args.examples}")
    if args.overfit_steps < 1:
        p.error(f"--overfit-steps must be a positive integer; got {args.overfit_steps}")
    if not args.lr > 0:
        p.error(f"--lr must be positive; got {args.lr}")
    if not 0.0 <= args.dropout < 1.0:
        p.error(f"--dropout must be in [0, 1); got {args.dropout}")
    return args


def detach_layer(model, layer: str):
    """``model`` with one layer cut out of backpropagation (``stop_gradient`` on its
    parameters): the forward pass is unchanged, that layer's gradient is exactly zero."""
    import jax

    from mlwork.train.diagnostics import layer_groups

    def apply(variables, x, *, train=False, key=None):
        params = variables["params"]
        names = list(layer_groups(params))
        if layer not in names:
            raise ValueError(f"no layer {layer!r}; the model's layers are {names}")
        frozen = [jax.lax.stop_gradient(p) if n == layer else p for n, p in zip(names, layer_groups(params).values(),
                                                                               strict=True)]
        params = type(params)(frozen) if isinstance(params, (list, tuple)) else dict(zip(names, frozen, strict=True))
        return model.apply({**variables, "params": params}, x, train=train, key=key)

    return model._replace(apply=apply)


def with_softmax_outputs(model):
    """``model`` whose outputs are softmax probabilities (declared ``output_activation='softmax'``)."""
    import jax

    def apply(variables, x, *, train=False, key=None):
        out, state = model.apply(variables, x, train=train, key=key)
        return jax.nn.softmax(out, axis=-1), state

    return model._replace(apply=apply, output_activation="softmax")


def mse_on_probabilities(n_classes: int):
    """The classic mistake: mean squared error between softmax probabilities and one-hot labels."""
    import jax

    from mlwork import nn

    def mse_on_one_hot(probs, labels):
        return nn.mse(probs, jax.nn.one_hot(labels, n_classes, dtype=probs.dtype))

    return mse_on_one_hot


@functools.lru_cache(maxsize=16)
def model_and_loss(kind: str, dropout: float, fault: str):
    """The model and loss for ``kind`` with a model-side ``fault`` planted (memoised, so
    repeated runs in one process reuse their compiled programs)."""
    from mlwork import nn

    model = nn.mlp([784, 256, 128, 10], dropout=dropout) if kind == "mlp" else nn.cnn(dropout=dropout)
    if fault == "detached":
        return detach_layer(model, "layer_1" if kind == "mlp" else "Conv_0"), nn.softmax_cross_entropy
    if fault == "mse-softmax":
        return with_softmax_outputs(model), mse_on_probabilities(10)
    return model, nn.softmax_cross_entropy


@functools.lru_cache(maxsize=16)
def optimizer(name: str, lr: float):
    from mlwork import optim

    return optim.optimizer(name, lr)


def build(args: argparse.Namespace, dataset):
    """The model, optimizer, loss, preprocessed inputs, labels and key the checklist sees,
    with ``--fault`` planted."""
    import jax
    import jax.numpy as jnp

    from mlwork.data import preprocess

    model, loss_fn = model_and_loss(args.model, args.dropout, args.fault)
    tx = optimizer(args.optimizer, args.lr * (10.0 if args.fault == "high-lr" else 1.0))
    mean, std = (0.0, 1.0) if args.fault == "unnormalised" else dataset.mean_std
    labels = jnp.asarray(dataset.train_labels[: args.examples], jnp.int32)
    key = jax.random.key(args.seed)
    if args.fault == "shuffled-labels":
        labels = jax.random.permutation(jax.random.fold_in(key, 1), labels)
    x = preprocess(jnp.asarray(dataset.train_images[: args.examples]), mean, std)
    return model, tx, loss_fn, x, labels, jax.random.fold_in(key, 2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tqdm.auto import tqdm

    from experiments._common import out_dir
    from experiments._data import load_or_report
    from mlwork.train import diagnostics as dg
    from mlwork.train.errors import EXIT_BAD_INPUT

    dataset = load_or_report(args.dataset, args.data_dir, args.source)
    if dataset is None:
        return EXIT_BAD_INPUT
    model, tx, loss_fn, x, y, key = build(args, dataset)
    print(f"checklist: {args.model} on {dataset.name} ({dataset.source}, {x.shape[0]} examples), "
          f"{args.optimizer} lr={args.lr:g}, fault: {args.fault}")
    with tqdm(total=1, desc="checklist", disable=None) as bar:
        results = dg.run_checklist(model, x, y, tx=tx, key=key, loss_fn=loss_fn, overfit_steps=args.overfit_steps)
        bar.update(1)
    table = dg.format_table(results)
    print(table)
    out = out_dir(args.out)
    (out / "checklist.md").write_text(table + "\n")
    record = {"model": args.model, "dataset": dataset.name, "data_source": dataset.source, "fault": args.fault,
              "optimizer": args.optimizer, "lr": args.lr, "examples": int(x.shape[0]),
              "results": [r.as_dict() for r in results]}
    (out / "checklist.json").write_text(json.dumps(record, indent=2, default=float) + "\n")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
