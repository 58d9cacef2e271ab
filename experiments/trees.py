"""Decision trees, forests and boosting next to scikit-learn (deck sections 16-17).

    python -m experiments.trees

1. The deck's single tree: depth 3 on two features of iris (petal length and width), its
   decision regions as a PNG and the tree as text.
2. Bagging, random forest, AdaBoost, gradient boosting (first order, the deck) and XGBoost-style
   boosting (second order) on scikit-learn's bundled data sets, held-out accuracy (R² for
   diabetes) next to the matching scikit-learn estimator with the same hyperparameters.
3. Test accuracy against the number of estimators for the ensembles (one pass per model with
   ``staged_predict``), as a PNG.

The command line is parsed before JAX is imported, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse

from experiments._common import out_dir, pyplot, save_figure

DATASETS = ("breast_cancer", "wine", "digits", "diabetes")

HELP = """\
Decision trees, forests and boosting next to scikit-learn (deck sections 16-17).

1. The deck's single tree: depth 3 on two features of iris (petal length and width), its
   decision regions as a PNG (tree_regions.png) and the tree as text (tree.txt).
2. Bagging, random forest, AdaBoost, gradient boosting (first order, the deck) and XGBoost-style
   boosting (second order) on scikit-learn's bundled data sets, held-out accuracy (R^2 for
   diabetes) next to the matching scikit-learn estimator with the same hyperparameters
   (comparison.md).
3. Test accuracy against the number of estimators for the ensembles, one pass per model
   (accuracy_vs_estimators.png).

Everything is written into --out."""

EXIT_CODES = {0: "success", 2: "bad input: a flag (one line on stderr, nothing written)"}


def load(name: str, seed: int):
    """A bundled scikit-learn data set split 70/30 (stratified for classification)."""
    import numpy as np
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    classify = name != "diabetes"
    split = train_test_split(X.astype(np.float32), y, test_size=0.3, random_state=seed,
                             stratify=y if classify else None)
    return classify, split


def score(classify: bool, y_true, y_pred) -> float:
    """Accuracy, or R² for regression."""
    import numpy as np

    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    if classify:
        return float(np.mean(y_true == y_pred))
    return float(1 - np.sum((y_true - y_pred) ** 2) / np.sum((y_true - y_true.mean()) ** 2))


def models(classify: bool, n_classes: int, n_est: int, depth: int, seed: int):
    """(name, fit ours, scikit-learn estimator) triples with matching hyperparameters."""
    import jax
    from sklearn import ensemble, tree

    from mlwork import trees


    key = jax.random.key(seed)
    task = "classification" if classify else "regression"
    loss = "squared" if not classify else ("logistic" if n_classes == 2 else "softmax")
    sk_tree = tree.DecisionTreeClassifier if classify else tree.DecisionTreeRegressor
    out = [
        ("tree", lambda X, y: trees.fit_tree(X, y, task=task, max_depth=depth),
         sk_tree(max_depth=depth, random_state=seed)),
        ("bagging", lambda X, y: trees.fit_bagging(X, y, n_est, key=key, task=task, max_depth=depth,
                                                   compute_oob=False),
         (ensemble.BaggingClassifier if classify else ensemble.BaggingRegressor)(
             sk_tree(max_depth=depth), n_estimators=n_est, random_state=seed)),
        ("random forest", lambda X, y: trees.fit_random_forest(X, y, n_est, key=key, task=task, max_depth=depth,
                                                               compute_oob=False),
         (ensemble.RandomForestClassifier if classify else ensemble.RandomForestRegressor)(
             n_est, max_depth=depth, max_features="sqrt" if classify else 1 / 3, random_state=seed)),
    ]
    if classify:
        out.append(("AdaBoost (SAMME)", lambda X, y: trees.fit_adaboost(X, y, n_est, max_depth=2),
                    ensemble.AdaBoostClassifier(tree.DecisionTreeClassifier(max_depth=2), n_estimators=n_est,
                                                random_state=seed)))
    gb = ensemble.GradientBoostingClassifier if classify else ensemble.GradientBoostingRegressor
    hgb = ensemble.HistGradientBoostingClassifier if classify else ensemble.HistGradientBoostingRegressor
    out += [
        ("gradient boosting", lambda X, y: trees.fit_gradient_boosting(
            X, y, loss=loss, n_estimators=n_est, learning_rate=0.1, max_depth=3),
         gb(n_estimators=n_est, learning_rate=0.1, max_depth=3, random_state=seed)),
        ("XGBoost-style", lambda X, y: trees.fit_gradient_boosting(
            X, y, loss=loss, n_estimators=n_est, learning_rate=0.1, max_depth=3, second_order=True,
            reg_lambda=1.0, min_child_weight=1e-3),
         hgb(max_iter=n_est, learning_rate=0.1, max_depth=3, max_leaf_nodes=None, min_samples_leaf=1,
             l2_regularization=1.0, early_stopping=False, random_state=seed)),
    ]
    return out


def comparison(names, n_est: int, depth: int, seed: int):
    """Held-out scores: rows of dicts and the fitted ensembles of the first data set."""
    import numpy as np
    from tqdm.auto import tqdm

    from mlwork import trees

    rows, curves = [], {}
    for name in names:
        classify, (Xtr, Xte, ytr, yte) = load(name, seed)
        k = len(np.unique(ytr)) if classify else 0
        for label, fit, sk in tqdm(models(classify, k, n_est, depth, seed), desc=name, leave=False, disable=None):
            model = fit(Xtr, ytr)
            ours = score(classify, yte, trees.predict(model, Xte))
            theirs = score(classify, yte, sk.fit(Xtr, ytr).predict(Xte))
            rows.append(dict(dataset=name, model=label, mlwork=ours, sklearn=theirs, diff=ours - theirs))
            if name == names[0] and label != "tree":
                curves[label] = [score(classify, yte, p) for p in trees.staged_predict(model, Xte)]
    return rows, curves


def markdown(rows) -> str:
    lines = ["| data set | model | mlwork | scikit-learn | difference (points) |", "|---|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {r['model']} | {r['mlwork']:.4f} | {r['sklearn']:.4f} | "
              f"{100 * r['diff']:+.2f} |" for r in rows]
    return "\n".join(lines)


def deck_tree(out, seed: int) -> str:
    """Depth-3 tree on iris petal length/width: decision-region PNG and text rendering."""
    import numpy as np
    from sklearn.datasets import load_iris

    from mlwork import trees

    plt = pyplot()

    iris = load_iris()
    X, y = iris.data[:, 2:4].astype(np.float32), iris.target
    tree = trees.fit_tree(X, y, max_depth=3, criterion="gini", max_bins=None)
    names = ["petal length (cm)", "petal width (cm)"]
    text = trees.export_text(tree, feature_names=names, class_names=list(iris.target_names))
    xx, yy = np.meshgrid(np.linspace(0.5, 7.5, 300), np.linspace(-0.2, 2.8, 300))
    grid = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float32)
    zz = np.asarray(trees.predict(tree, grid)).reshape(xx.shape)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.contourf(xx, yy, zz, levels=[-0.5, 0.5, 1.5, 2.5], cmap="Pastel1", alpha=0.8)
    for k, name in enumerate(iris.target_names):
        ax.scatter(*X[y == k].T, s=14, label=name, edgecolor="k", linewidth=0.3)
    ax.set(xlabel=names[0], ylabel=names[1], title="Depth-3 decision tree (Gini) on iris")
    ax.legend(loc="upper left")
    save_figure(fig, out / "tree_regions.png")
    (out / "tree.txt").write_text(text + "\n")
    acc = score(True, y, trees.predict(tree, X))
    return f"training accuracy {acc:.4f}\n{text}"


def plot_curves(curves, dataset: str, out) -> None:
    import numpy as np

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, accs in curves.items():
        ax.plot(np.arange(1, len(accs) + 1), accs, label=label)
    ax.set(xlabel="number of estimators (trees / rounds)", ylabel="test score",
           title=f"Test score vs ensemble size ({dataset})")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, out / "accuracy_vs_estimators.png")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags -> namespace (``datasets`` a list of names); exits 2 with one line on a bad flag. Imports no JAX."""
    from experiments._common import add_out_arg, experiment_parser

    parser = experiment_parser("trees", HELP, EXIT_CODES)
    add_out_arg(parser, "runs/trees")
    parser.add_argument("--estimators", type=int, default=100, metavar="N",
                        help="trees / boosting rounds per ensemble, >= 1 (default: %(default)s)")
    parser.add_argument("--max-depth", type=int, default=8, metavar="D",
                        help="depth of tree, bagging and forest, in [1, 20] (default: %(default)s)")
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help="comma-separated subset of the data sets (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the splits and the ensembles' randomness (default: %(default)s)")
    args = parser.parse_args(argv)
    args.datasets = [d for d in args.datasets.split(",") if d]
    unknown = [d for d in args.datasets if d not in DATASETS]
    if not args.datasets or unknown:
        parser.error(f"--datasets must be a comma-separated subset of {','.join(DATASETS)}; "
                     f"got {','.join(unknown) or 'none'}")
    if args.estimators < 1:
        parser.error(f"--estimators must be a positive integer; got {args.estimators}")
    if not 1 <= args.max_depth <= 20:
        parser.error(f"--max-depth must be in [1, 20]; got {args.max_depth}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.datasets
    out = out_dir(args.out)

    print("1. Depth-3 tree on iris (petal length, petal width), exact splits")
    print(deck_tree(out, args.seed))
    print(f"\n2. Held-out scores ({args.estimators} estimators; accuracy, R² for diabetes)")
    rows, curves = comparison(names, args.estimators, args.max_depth, args.seed)
    table = markdown(rows)
    print(table)
    (out / "comparison.md").write_text(table + "\n")
    plot_curves(curves, names[0], out)
    print(f"\nWrote {out / 'tree_regions.png'}, {out / 'tree.txt'}, {out / 'comparison.md'} and "
          f"{out / 'accuracy_vs_estimators.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
