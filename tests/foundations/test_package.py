"""The foundations package as a whole: what it imports, and its deprecated names."""

import subprocess
import sys

import jax.numpy as jnp
import optax
import pytest

from mlwork import foundations as fd


def test_foundations_imports_nothing_from_nn():
    # In a fresh interpreter, with a network drawn and run on the graph by activation name.
    code = (
        "import sys, jax.numpy as jnp\n"
        "import mlwork.foundations as fd\n"
        "g = fd.mlp_graph([2, 3, 1])\n"
        "p = [{'W': jnp.ones((3, 2)), 'b': jnp.zeros(3)}, {'W': jnp.ones((1, 3)), 'b': jnp.zeros(1)}]\n"
        "fd.graph_forward(g, p, 'relu', jnp.ones(2), output_activation='sigmoid')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('mlwork'))\n"
        "assert 'mlwork.nn' not in sys.modules, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_fit_and_FitResult_are_deprecated_aliases_of_fit_curve_and_CurveFit():
    x = jnp.linspace(-1.0, 1.0, 8)
    with pytest.warns(DeprecationWarning, match="use fit_curve"):
        result = fd.fit(fd.linear, {"m": 0.0, "b": 0.0}, x, 2 * x, optax.sgd(0.3), steps=50)
    assert isinstance(result, fd.CurveFit)
    with pytest.warns(DeprecationWarning, match="use CurveFit"):
        assert fd.FitResult is fd.CurveFit
    assert "fit" not in fd.__all__ and "FitResult" not in fd.__all__
