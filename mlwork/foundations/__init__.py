"""The deck's mathematical foundations (sections 1-7) as composable JAX functions.

* :mod:`~mlwork.foundations.numbers`: irrationality of √2 made computational, density of ℚ,
  closure tables for ℕ ⊂ ℤ ⊂ ℚ ⊂ ℝ ⊂ ℂ, complex numbers (modulus, argument, Euler, rotation).
* :mod:`~mlwork.foundations.functions`: parametric families f(x; θ), composition, inverses;
  :mod:`~mlwork.foundations.fitting`: :func:`fit_curve` (training = turning the knobs θ with an
  Optax optimizer).
* :mod:`~mlwork.foundations.limits`: limits from a table of values, with the precision they
  lost; :mod:`~mlwork.foundations.calculus`: finite differences next to ``jax.grad``, gradient
  descent; :mod:`~mlwork.foundations.integrals`: the deck's composite rules and an adaptive
  integral with an error estimate (infinite limits included), the FTC.
* :mod:`~mlwork.foundations.graphs`: adjacency matrices, degrees, paths, connectivity, DAGs,
  bipartite graphs; :mod:`~mlwork.foundations.layered`: an MLP as a weighted DAG whose forward
  pass equals ``mlwork.nn.mlp``'s.

Functions that take a user's function (``integrate``, ``simpson``, ``inverse``, ...) use it as it
is at each call: a closure whose captured values changed is traced again, never served stale.
This package imports nothing from :mod:`mlwork.nn`.
"""

import warnings as _warnings

from mlwork.foundations.calculus import (
    DescentPath,
    derivative,
    gradient,
    gradient_descent,
    hessian,
    nth_derivative,
    partial,
)
from mlwork.foundations.fitting import CurveFit, fit, fit_curve  # noqa: F401 - fit: deprecated alias
from mlwork.foundations.functions import (
    compose,
    exponential,
    inverse,
    linear,
    polynomial,
    sigmoid_family,
    sinusoid,
)
from mlwork.foundations.graphs import (
    MAX_VERTICES,
    adjacency_matrix,
    bipartition,
    complete_graph,
    degree,
    has_path,
    in_degree,
    is_bipartite,
    is_connected,
    is_dag,
    is_strongly_connected,
    out_degree,
    reachability,
    shortest_path_lengths,
    topological_order,
)
from mlwork.foundations.integrals import Integral, IntegrationWarning, integrate
from mlwork.foundations.layered import (
    GraphWeights,
    LayeredGraph,
    edge_weights,
    graph_forward,
    graph_param_count,
    mlp_graph,
)
from mlwork.foundations.limits import LimitResult, limit
from mlwork.foundations.numbers import (
    NUMBER_SYSTEMS,
    Closure,
    argument,
    closure_table,
    euler,
    from_polar,
    midpoint,
    modulus,
    rationals_between,
    rotate,
    sqrt_convergents,
    sqrt_fractions,
)
from mlwork.foundations.quadrature import antiderivative, riemann_sum, simpson, trapezoid

__all__ = [
    # numbers
    "NUMBER_SYSTEMS", "Closure", "argument", "closure_table", "euler", "from_polar", "midpoint",
    "modulus", "rationals_between", "rotate", "sqrt_convergents", "sqrt_fractions",
    # functions and fitting
    "CurveFit", "compose", "exponential", "fit_curve", "inverse", "linear", "polynomial",
    "sigmoid_family", "sinusoid",
    # limits, derivatives, integrals
    "DescentPath", "Integral", "IntegrationWarning", "LimitResult", "antiderivative", "derivative",
    "gradient", "gradient_descent", "hessian", "integrate", "limit", "nth_derivative", "partial",
    "riemann_sum", "simpson", "trapezoid",
    # graphs
    "MAX_VERTICES", "GraphWeights", "LayeredGraph", "adjacency_matrix", "bipartition",
    "complete_graph", "degree", "edge_weights", "graph_forward", "graph_param_count", "has_path",
    "in_degree", "is_bipartite", "is_connected", "is_dag", "is_strongly_connected", "mlp_graph",
    "out_degree", "reachability", "shortest_path_lengths", "topological_order",
]


def __getattr__(name: str):
    if name == "FitResult":  # deprecated alias (one version), like ``fit``
        _warnings.warn("mlwork.foundations.FitResult is deprecated; use CurveFit", DeprecationWarning,
                       stacklevel=2)
        return CurveFit
    raise AttributeError(f"module 'mlwork.foundations' has no attribute {name!r}")
