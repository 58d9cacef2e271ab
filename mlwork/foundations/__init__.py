"""The deck's mathematical foundations (sections 1-7) as composable JAX functions.

* :mod:`~mlwork.foundations.numbers`: irrationality of √2 made computational, density of ℚ,
  closure tables for ℕ ⊂ ℤ ⊂ ℚ ⊂ ℝ ⊂ ℂ, complex numbers (modulus, argument, Euler, rotation).
* :mod:`~mlwork.foundations.functions`: parametric families f(x; θ), composition, inverses,
  and :func:`fit` (training = turning the knobs θ with an Optax optimizer).
* :mod:`~mlwork.foundations.calculus`: limits, finite differences next to ``jax.grad``,
  quadrature (Riemann, trapezoid, Simpson, infinite limits), the FTC, gradient descent.
* :mod:`~mlwork.foundations.graphs`: adjacency matrices, degrees, paths, connectivity, DAGs,
  bipartite graphs, and an MLP as a weighted DAG whose forward pass equals ``mlwork.nn.mlp``.
"""

from mlwork.foundations.calculus import (
    DescentPath,
    LimitResult,
    antiderivative,
    derivative,
    gradient,
    gradient_descent,
    hessian,
    integrate,
    limit,
    nth_derivative,
    partial,
    riemann_sum,
    simpson,
    trapezoid,
)
from mlwork.foundations.functions import (
    FitResult,
    compose,
    exponential,
    fit,
    inverse,
    linear,
    polynomial,
    sigmoid_family,
    sinusoid,
)
from mlwork.foundations.graphs import (
    GraphWeights,
    LayeredGraph,
    adjacency_matrix,
    bipartition,
    complete_graph,
    degree,
    edge_weights,
    graph_forward,
    graph_param_count,
    has_path,
    in_degree,
    is_bipartite,
    is_connected,
    is_dag,
    is_strongly_connected,
    mlp_graph,
    out_degree,
    reachability,
    shortest_path_lengths,
    topological_order,
)
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

__all__ = [
    # numbers
    "NUMBER_SYSTEMS", "Closure", "argument", "closure_table", "euler", "from_polar", "midpoint",
    "modulus", "rationals_between", "rotate", "sqrt_convergents", "sqrt_fractions",
    # functions
    "FitResult", "compose", "exponential", "fit", "inverse", "linear", "polynomial",
    "sigmoid_family", "sinusoid",
    # calculus
    "DescentPath", "LimitResult", "antiderivative", "derivative", "gradient", "gradient_descent",
    "hessian", "integrate", "limit", "nth_derivative", "partial", "riemann_sum", "simpson",
    "trapezoid",
    # graphs
    "GraphWeights", "LayeredGraph", "adjacency_matrix", "bipartition", "complete_graph", "degree",
    "edge_weights", "graph_forward", "graph_param_count", "has_path", "in_degree", "is_bipartite",
    "is_connected", "is_dag", "is_strongly_connected", "mlp_graph", "out_degree", "reachability",
    "shortest_path_lengths", "topological_order",
]
