"""Smoke test of a built mlwork wheel, run by .ci/run inside a fresh virtual environment.

    python .ci/wheel_smoke.py dist/mlwork-<version>-py3-none-any.whl

Run with the fresh environment's interpreter from a folder outside the repository, so that
``import mlwork`` finds the installed wheel, not the source tree. Checks the wheel file itself
(``py.typed``, the version in its metadata, the LICENSE), that the installed package is that
wheel, and that the library works there: a model trained a few steps by an optimizer, a tree,
a learning-theory bound. Prints one line per check; exits non-zero on the first failure.
"""

from __future__ import annotations

import sys
import zipfile
from importlib import metadata, resources
from pathlib import Path


def check(what: str, ok: bool, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        raise SystemExit(1)


def main(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    check("the wheel holds mlwork/py.typed", "mlwork/py.typed" in names)
    check("the wheel holds no tests, experiments or docs",
          not any(n.split("/")[0] in ("tests", "experiments", "docs", "bench") for n in names))
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    fields = dict(line.split(": ", 1) for line in zipfile.ZipFile(wheel).read(meta).decode().splitlines()
                  if ": " in line and not line.startswith(" "))
    check("the wheel's metadata names its license", fields.get("License-Expression") == "Apache-2.0",
          fields.get("License-Expression", "none"))
    check("the wheel holds the LICENSE file", any(n.endswith("licenses/LICENSE") for n in names))

    import mlwork

    installed = Path(mlwork.__file__).resolve()
    check("mlwork is imported from the installed wheel", "site-packages" in installed.parts, str(installed))
    check("mlwork.__version__ equals the wheel's version",
          mlwork.__version__ == metadata.version("mlwork") == fields["Version"], mlwork.__version__)
    check("py.typed is installed", resources.files("mlwork").joinpath("py.typed").is_file())

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from mlwork import nn, optim, theory, trees

    model = nn.mlp([2, 8, 2])
    x = jax.random.normal(jax.random.key(0), (64, 2))
    y = (x[:, 0] + x[:, 1] > 0).astype(jnp.int32)
    params = model.init(jax.random.key(1))["params"]
    tx = optim.optimizer("adam", 0.05)
    state = tx.init(params)

    def loss(p):
        return nn.softmax_cross_entropy(model.apply({"params": p, "state": {}}, x)[0], y)

    first = float(loss(params))
    for _ in range(50):
        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    check("an MLP trained by optim.optimizer lowers its loss", float(loss(params)) < 0.5 * first,
          f"{first:.3f} -> {float(loss(params)):.3f}")

    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]], np.float32)
    labels = np.array([0, 0, 0, 1, 1, 1])
    tree = trees.fit_tree(X, labels, max_depth=1)
    check("a depth-1 tree separates two classes", (np.asarray(trees.predict(tree, X)) == labels).all())

    bound = float(theory.vc_bound(0.1, vc_dim=3, n=1000))
    check("the VC bound is a finite number above the training error", 0.1 < bound < 1.0, f"{bound:.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python .ci/wheel_smoke.py WHEEL")
    main(Path(sys.argv[1]).resolve())
