r"""Graphs as adjacency matrices (deck section 7), and a neural network as a weighted DAG.

A graph on :math:`n` vertices is its :math:`n \times n` adjacency matrix :math:`A` as a ``jnp``
array: :math:`A_{ij} \ne 0` iff there is an edge :math:`i \to j`, and the entry is the edge's
weight (1 for an unweighted graph). An undirected graph has a symmetric :math:`A = A^\top`.
(An edge of weight exactly 0 is indistinguishable from no edge.)

Graph questions become matrix algebra: :math:`(A^k)_{ij}` counts walks of length :math:`k`,
so reachability is the Boolean closure of :math:`I + A` (by repeated squaring), shortest path
lengths are breadth-first search with one matrix product per level, a cycle is a vertex that
reaches itself, and bipartiteness is "no closed walk of odd length". All of these are pure and
``jit``-able (the number of vertices is static).

:func:`mlp_graph` builds a multilayer perceptron as the deck draws it — neurons are vertices,
adjacent layers are complete bipartite, weights are edge values — and :func:`graph_forward`
propagates values vertex by vertex in topological order, which is exactly
:func:`mlwork.nn.mlp`'s forward pass.

References:
  deck section 7; T. H. Cormen et al., *Introduction to Algorithms*, 3rd ed., ch. 22
  (breadth-first search, topological sort) and §25.1-25.2 (matrix products by repeated
  squaring, transitive closure);
  A. B. Kahn (1962), "Topological sorting of large networks", CACM 5(11); D. König (1936)
  (a graph is bipartite iff it has no odd cycle).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import concrete
from mlwork.foundations._checks import as_float, check_finite, check_int
from mlwork.nn.activations import check_activation, get_activation

Array = jax.Array


# ---------------------------------------------------------------------------------------------
# Building and checking adjacency matrices
# ---------------------------------------------------------------------------------------------


def _check_adjacency(adjacency: Any, name: str = "adjacency") -> Array:
    A = jnp.asarray(adjacency)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix, got shape {A.shape}")
    if A.shape[0] == 0:
        raise ValueError(f"{name} must have at least one vertex, got shape {A.shape}")
    if jnp.issubdtype(A.dtype, jnp.complexfloating):
        raise ValueError(f"{name} must be real, got dtype {A.dtype}")
    check_finite(A, name)
    return A


def _edges(adjacency: Any, name: str = "adjacency") -> Array:
    """The 0/1 float32 edge indicator :math:`[A_{ij} \\ne 0]`."""
    return (_check_adjacency(adjacency, name) != 0).astype(jnp.float32)


def _check_undirected(adjacency: Array, function: str) -> None:
    values = concrete(adjacency)
    if values is not None and not np.array_equal(values, values.T):
        raise ValueError(
            f"{function} is for undirected graphs, but adjacency is not symmetric (A != A^T); "
            "for a directed graph use in_degree/out_degree or is_strongly_connected"
        )


def adjacency_matrix(
    edges: Sequence[tuple[Hashable, Hashable]],
    vertices: int | Sequence[Hashable],
    *,
    directed: bool = False,
    weights: Sequence[float] | None = None,
) -> Array:
    r"""The adjacency matrix of :math:`G = (V, E)`:

    .. math:: A_{ij} = \begin{cases} w_{ij} & \text{if } (i, j) \in E \\ 0 & \text{otherwise}
              \end{cases}

    with :math:`w_{ij} = 1` when ``weights`` is ``None``. ``vertices`` is either the number of
    vertices :math:`n` (labels ``0..n-1``) or the list of labels, e.g. the deck's
    ``adjacency_matrix([(1, 2), (1, 3), (2, 3), (3, 4)], [1, 2, 3, 4])``; row/column ``k`` is
    the ``k``-th label. Undirected edges fill both :math:`A_{ij}` and :math:`A_{ji}`.
    Returns float32. Unknown labels, repeated labels or a ``weights`` list of the wrong length
    raise ``ValueError``.
    """
    if isinstance(vertices, (int, np.integer)) and not isinstance(vertices, bool):
        labels = list(range(check_int(vertices, "vertices")))
    else:
        labels = list(vertices)
        if not labels or len(set(labels)) != len(labels):
            raise ValueError(f"vertices must be a count or a list of distinct labels, got {vertices!r}")
    index = {v: k for k, v in enumerate(labels)}
    edges = list(edges)
    if weights is None:
        weights = [1.0] * len(edges)
    weights = [float(w) for w in weights]
    if len(weights) != len(edges):
        raise ValueError(f"weights has {len(weights)} entries but there are {len(edges)} edges")
    A = np.zeros((len(labels), len(labels)), np.float32)
    for k, edge in enumerate(edges):
        try:
            u, v = edge
            i, j = index[u], index[v]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"edges[{k}] = {edge!r} is not a pair of vertices from {labels}") from e
        if not math.isfinite(weights[k]):
            raise ValueError(f"weights[{k}] must be finite, got {weights[k]}")
        A[i, j] = weights[k]
        if not directed:
            A[j, i] = weights[k]
    return jnp.asarray(A)


def complete_graph(n: int) -> Array:
    r"""The complete graph :math:`K_n`: every vertex joined to every other,
    :math:`A = \mathbf{1}\mathbf{1}^\top - I` (float32). It has :math:`n(n-1)/2` edges and every
    degree is :math:`n - 1` — a "fully connected" layer is its bipartite cousin."""
    n = check_int(n, "n")
    return jnp.ones((n, n), jnp.float32) - jnp.eye(n, dtype=jnp.float32)


# ---------------------------------------------------------------------------------------------
# Degrees
# ---------------------------------------------------------------------------------------------


def degree(adjacency: Any) -> Array:
    r"""Degrees of an undirected graph: the number of edges at each vertex,
    :math:`\deg(i) = \#\{j : A_{ij} \ne 0\}`, with a self-loop counted twice (so
    :math:`\sum_i \deg(i) = 2|E|`). int32. A non-symmetric ``adjacency`` raises ``ValueError``
    when concrete (use :func:`in_degree`/:func:`out_degree` for digraphs)."""
    E = _edges(adjacency)
    _check_undirected(E, "degree")
    return (jnp.sum(E, axis=1) + jnp.diagonal(E)).astype(jnp.int32)


def in_degree(adjacency: Any) -> Array:
    r"""In-degrees of a digraph, edges coming in: :math:`\mathrm{in}(j) = \#\{i : A_{ij} \ne 0\}`
    (column counts). int32."""
    return jnp.sum(_edges(adjacency), axis=0).astype(jnp.int32)


def out_degree(adjacency: Any) -> Array:
    r"""Out-degrees of a digraph, edges going out: :math:`\mathrm{out}(i) = \#\{j : A_{ij}
    \ne 0\}` (row counts). int32."""
    return jnp.sum(_edges(adjacency), axis=1).astype(jnp.int32)


# ---------------------------------------------------------------------------------------------
# Paths and connectivity
# ---------------------------------------------------------------------------------------------


@jax.jit
def _closure(E: Array) -> Array:
    """Reflexive-transitive closure of a 0/1 float matrix by repeated Boolean squaring."""
    n = E.shape[0]
    R = jnp.maximum(E, jnp.eye(n, dtype=E.dtype))
    for _ in range(max(1, math.ceil(math.log2(n)))):  # covers paths of length <= 2^k >= n - 1
        R = (R @ R > 0).astype(E.dtype)
    return R


def reachability(adjacency: Any) -> Array:
    r"""The reachability matrix :math:`R_{ij} = [\text{there is a path } i \to \dots \to j]`,
    counting the path of length 0 (:math:`R_{ii}` is true).

    .. math:: R = \big[(I + A)^{n-1} \ne 0\big]

    computed by :math:`\lceil \log_2 n \rceil` Boolean squarings (:math:`O(n^3 \log n)`). bool.
    """
    return _closure(_edges(adjacency)) > 0


def has_path(adjacency: Any, source: Any, target: Any) -> Array:
    r"""Whether a path :math:`v_0 = \text{source} \to v_1 \to \dots \to v_k = \text{target}`
    exists (following edge directions; a vertex reaches itself by the empty path). Indices out
    of range raise ``ValueError`` when concrete."""
    A = _check_adjacency(adjacency)
    n = A.shape[0]
    for name, v in (("source", source), ("target", target)):
        value = concrete(v)
        if value is not None and not (value.shape == () and 0 <= value < n):
            raise ValueError(f"{name} must be a vertex index in [0, {n - 1}], got {value}")
    return reachability(A)[source, target]


def is_connected(adjacency: Any) -> Array:
    r"""Whether an undirected graph is connected: a path joins every pair of vertices,
    :math:`R = \mathbf{1}\mathbf{1}^\top`. A non-symmetric ``adjacency`` raises ``ValueError``
    when concrete (use :func:`is_strongly_connected`)."""
    A = _check_adjacency(adjacency)
    _check_undirected(A, "is_connected")
    return jnp.all(reachability(A))


def is_strongly_connected(adjacency: Any) -> Array:
    r"""Whether a directed graph is strongly connected: a directed path :math:`i \to j` for every
    ordered pair, :math:`R = \mathbf{1}\mathbf{1}^\top`."""
    return jnp.all(reachability(adjacency))


def is_dag(adjacency: Any) -> Array:
    r"""Whether a directed graph is acyclic (a DAG, like a feedforward network): no vertex
    reaches itself by a path of length :math:`\ge 1`,

    .. math:: \big(A\,R\big)_{ii} = 0 \quad \text{for all } i

    (a self-loop is a cycle)."""
    return _acyclic(_edges(adjacency))


@jax.jit
def _acyclic(E: Array) -> Array:
    return ~jnp.any(jnp.diagonal(E @ _closure(E)) > 0)


def topological_order(adjacency: Any) -> Array:
    r"""An order of the vertices in which every edge :math:`u \to v` has :math:`u` before
    :math:`v` (Kahn's algorithm): repeatedly take the lowest-numbered vertex with no incoming
    edges from the vertices not yet taken. Deterministic; int32 of shape ``(n,)``.

    Only a DAG has one: a cyclic graph raises ``ValueError`` when concrete. Under ``jit`` the
    vertices on or behind a cycle cannot be taken and their slots are filled with ``-1``.
    """
    order = _kahn(_edges(adjacency))
    values = concrete(order)
    if values is not None and np.any(values < 0):
        raise ValueError("adjacency has a cycle; topological_order needs a directed acyclic graph")
    return order


@jax.jit
def _kahn(E: Array) -> Array:
    n = E.shape[0]

    def take(k, carry):
        remaining_in, taken, order = carry
        available = (remaining_in == 0) & ~taken
        v = jnp.argmax(available)  # lowest index among the available vertices
        ok = available[v]
        order = order.at[k].set(jnp.where(ok, v, -1))
        taken = taken.at[v].set(taken[v] | ok)
        remaining_in = remaining_in - jnp.where(ok, E[v], jnp.zeros_like(E[v]))
        return remaining_in, taken, order

    init = (jnp.sum(E, axis=0), jnp.zeros(n, bool), jnp.full(n, -1, jnp.int32))
    return jax.lax.fori_loop(0, n, take, init)[2].astype(jnp.int32)


def shortest_path_lengths(adjacency: Any, source: int | None = None) -> Array:
    r"""Shortest path lengths (number of edges) by breadth-first search, one matrix product per
    level:

    .. math:: F_0 = I, \quad F_{k} = \big[F_{k-1} A \ne 0\big] \wedge \neg(F_0 \vee \dots \vee
              F_{k-1}), \qquad d(i, j) = k \text{ where } (F_k)_{ij} = 1

    Returns the ``(n, n)`` float32 matrix :math:`d(i, j)` (``inf`` where :math:`j` is not
    reachable from :math:`i`), or row ``source`` when given. Edge weights are ignored (length =
    edge count, as the deck defines it).
    """
    E = _edges(adjacency)
    n = E.shape[0]
    if source is not None:
        source = check_int(source, "source", minimum=0)
        if source >= n:
            raise ValueError(f"source must be a vertex index in [0, {n - 1}], got {source}")
    dist = _bfs(E)
    return dist if source is None else dist[source]


@jax.jit
def _bfs(E: Array) -> Array:
    n = E.shape[0]
    eye = jnp.eye(n, dtype=E.dtype)

    def level(k, carry):
        frontier, reached, dist = carry
        new = (frontier @ E > 0) & (reached == 0)
        dist = jnp.where(new, k.astype(dist.dtype), dist)
        new = new.astype(E.dtype)
        return new, jnp.maximum(reached, new), dist

    dist0 = jnp.where(eye > 0, 0.0, jnp.inf).astype(jnp.float32)
    return jax.lax.fori_loop(1, n, level, (eye, eye, dist0))[2]


@jax.jit
def _odd_even_closure(E: Array) -> tuple[Array, Array]:
    """Closure of the bipartite double cover [[0, A], [A, 0]], split into "an even-length walk
    joins u and v" (top-left block) and "an odd-length walk does" (top-right block)."""
    n, zero = E.shape[0], jnp.zeros_like(E)
    R = _closure(jnp.block([[zero, E], [E, zero]])) > 0
    return R[:n, :n], R[:n, n:]


def is_bipartite(adjacency: Any) -> Array:
    r"""Whether an undirected graph is bipartite: its vertices split into two groups with every
    edge between the groups (adjacent layers of a network are). Equivalently, no closed walk of
    odd length, which is checked on the double cover :math:`\begin{pmatrix} 0 & A \\ A & 0
    \end{pmatrix}`: vertex :math:`i` must not reach its own copy :math:`n + i`. A non-symmetric
    ``adjacency`` raises ``ValueError`` when concrete."""
    E = _edges(adjacency)
    _check_undirected(E, "is_bipartite")
    _, odd = _odd_even_closure(E)
    return ~jnp.any(jnp.diagonal(odd))


def bipartition(adjacency: Any) -> Array:
    r"""The two groups of a bipartite undirected graph as a bool mask (``True`` = second group):
    a vertex is in the second group iff an odd-length walk joins it to the lowest-numbered
    vertex of its connected component. A graph that is not bipartite raises ``ValueError``
    when concrete (under ``jit`` the mask is then meaningless; check :func:`is_bipartite`)."""
    A = _check_adjacency(adjacency)
    values = concrete(A)
    if values is not None and not bool(is_bipartite(values)):
        raise ValueError("adjacency is not bipartite (it has a cycle of odd length)")
    E = _edges(A)
    _check_undirected(E, "bipartition")
    even, odd = _odd_even_closure(E)
    root = jnp.argmax(even | odd, axis=0)  # lowest-numbered vertex of each vertex's component
    return odd[root, jnp.arange(E.shape[0])]


# ---------------------------------------------------------------------------------------------
# A multilayer perceptron as a weighted DAG
# ---------------------------------------------------------------------------------------------


@flax.struct.dataclass
class LayeredGraph:
    """A layered DAG (from :func:`mlp_graph`): vertices are numbered layer by layer, inputs
    first and outputs last.

    Attributes:
      adjacency: ``(N, N)`` float32 0/1 matrix, :math:`A_{uv} = 1` for an edge :math:`u \\to v`.
      layer: ``(N,)`` int32, the layer index :math:`l` of each vertex (0 = input).
      sizes: the layer widths :math:`(n_0, \\dots, n_L)` (static metadata, not a pytree leaf, so
        a ``LayeredGraph`` can be passed through ``jit``).
    """

    adjacency: Array
    layer: Array
    sizes: tuple[int, ...] = flax.struct.field(pytree_node=False)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Index of the first vertex of each layer."""
        return tuple(int(o) for o in np.cumsum((0, *self.sizes[:-1])))


class GraphWeights(NamedTuple):
    """Edge values and vertex biases of a layered graph.

    Attributes:
      edges: ``(N, N)``, :math:`w_{uv}` on each edge :math:`u \\to v` (0 elsewhere).
      bias: ``(N,)``, the bias :math:`b_v` of each neuron (0 for inputs).
    """

    edges: Array
    bias: Array


def mlp_graph(sizes: Sequence[int]) -> LayeredGraph:
    r"""The multilayer perceptron with layer widths ``sizes`` = :math:`(n_0, n_1, \dots, n_L)` as
    a directed graph: one vertex per neuron (:math:`N = \sum_l n_l`), and an edge from every
    neuron of layer :math:`l-1` to every neuron of layer :math:`l`, so adjacent layers form the
    complete bipartite graph :math:`K_{n_{l-1}, n_l}`:

    .. math:: |E| = \sum_{l=1}^{L} n_{l-1} n_l

    The graph is a DAG (information flows forward only). With one bias per non-input vertex,
    :func:`graph_param_count` gives :math:`\sum_l (n_{l-1} n_l + n_l)`, the count of
    :func:`mlwork.nn.count_params` (59 for the deck's ``[4, 5, 4, 2]``).
    """
    try:
        sizes = tuple(sizes)
    except TypeError as e:
        raise ValueError(f"sizes must be a sequence of layer widths, got {sizes!r}") from e
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least the input and output widths, got {sizes}")
    sizes = tuple(check_int(n, f"sizes[{i}]") for i, n in enumerate(sizes))
    layer = np.repeat(np.arange(len(sizes)), sizes)
    A = (layer[None, :] == layer[:, None] + 1).astype(np.float32)  # u in layer l-1 -> v in l
    return LayeredGraph(jnp.asarray(A), jnp.asarray(layer, jnp.int32), sizes)


def graph_param_count(graph: LayeredGraph) -> int:
    r"""Learnable numbers of a network drawn as a graph: one weight per edge plus one bias per
    vertex that has incoming edges, :math:`|E| + |\{v : \mathrm{in}(v) > 0\}|`."""
    E = np.asarray(graph.adjacency) != 0
    return int(E.sum() + np.count_nonzero(E.sum(axis=0)))


def _check_params(graph: LayeredGraph, params: Sequence[dict[str, Any]]) -> None:
    sizes = graph.sizes
    if not isinstance(params, (list, tuple)) or len(params) != len(sizes) - 1:
        got = len(params) if isinstance(params, (list, tuple)) else type(params).__name__
        raise ValueError(f"params must be a list of {len(sizes) - 1} layers for sizes {sizes}, got {got}")
    for l, layer in enumerate(params, start=1):
        expected = {"W": (sizes[l], sizes[l - 1]), "b": (sizes[l],)}
        got = {k: np.shape(layer.get(k)) for k in expected} if isinstance(layer, dict) else None
        if got != expected:
            raise ValueError(f"params[{l - 1}] must be {{'W': {expected['W']}, 'b': {expected['b']}}}, "
                             f"got {got}")


def edge_weights(graph: LayeredGraph, params: Sequence[dict[str, Any]]) -> GraphWeights:
    r"""Put an MLP's parameters on the graph's edges: the weight of the edge from neuron
    :math:`i` of layer :math:`l-1` to neuron :math:`j` of layer :math:`l` is
    :math:`W^{[l]}_{ji}`, and neuron :math:`j` of layer :math:`l` carries the bias
    :math:`b^{[l]}_j`. ``params`` is :func:`mlwork.nn.mlp`'s layout, a list of
    ``{"W": (n_l, n_{l-1}), "b": (n_l,)}``. Differentiable in ``params``."""
    _check_params(graph, params)
    params = [{"W": as_float(layer["W"]), "b": as_float(layer["b"])} for layer in params]
    return _place_weights(params, sizes=graph.sizes)


@functools.partial(jax.jit, static_argnames="sizes")
def _place_weights(params, *, sizes):
    N, off = sum(sizes), np.cumsum((0, *sizes[:-1]))
    edges = jnp.zeros((N, N), jnp.float32)
    bias = jnp.zeros((N,), jnp.float32)
    for l, layer in enumerate(params, start=1):
        rows = slice(off[l - 1], off[l - 1] + sizes[l - 1])
        cols = slice(off[l], off[l] + sizes[l])
        edges = edges.at[rows, cols].set(layer["W"].T.astype(jnp.float32))
        bias = bias.at[cols].set(layer["b"].astype(jnp.float32))
    return GraphWeights(edges, bias)


def graph_forward(
    graph: LayeredGraph,
    weights: GraphWeights | Sequence[dict[str, Any]],
    activation: str | Callable[[Array], Array] | None,
    x: Any,
    *,
    output_activation: str | Callable[[Array], Array] | None = None,
) -> Array:
    r"""Forward propagation on the graph: visit the vertices in topological order and give each
    non-input neuron :math:`v` the value

    .. math:: a_v = \sigma\Big(\sum_{u \to v} w_{uv}\, a_u + b_v\Big)

    ("values propagate along edges"), with the inputs :math:`a_v = x_v` at the sources and the
    output activation (``None``: identity; ``"softmax"`` acts on the whole output layer) at the
    sinks. This is :math:`a^{[l]} = \sigma(W^{[l]} a^{[l-1]} + b^{[l]})` one neuron at a time,
    so it equals ``mlwork.nn.mlp(sizes, activation, output_activation)``'s forward pass.

    ``weights`` is a :class:`GraphWeights` or the MLP ``params`` (converted by
    :func:`edge_weights`). ``activation`` is a name from :mod:`mlwork.nn.activations` or an
    elementwise function. ``x`` has shape ``(n_0,)`` or ``(batch, n_0)``. Pure; jit/vmap/grad
    apply (one sequential step per vertex, so it is a teaching tool, not a fast path).
    """
    if not isinstance(graph, LayeredGraph):
        raise ValueError(f"graph must be a LayeredGraph from mlp_graph, got {type(graph).__name__}")
    if not isinstance(weights, GraphWeights):
        weights = edge_weights(graph, weights)
    N, n_in, n_out = sum(graph.sizes), graph.sizes[0], graph.sizes[-1]
    if weights.edges.shape != (N, N) or weights.bias.shape != (N,):
        raise ValueError(f"weights must have edges ({N}, {N}) and bias ({N},), got "
                         f"{weights.edges.shape} and {weights.bias.shape}")
    sigma = _activation(activation, "activation")
    sigma_out = _activation(output_activation, "output_activation")
    x = as_float(x)
    if x.ndim not in (1, 2) or x.shape[-1] != n_in:
        raise ValueError(f"x must have shape ({n_in},) or (batch, {n_in}), got {x.shape}")
    check_finite(x, "x")
    order = topological_order(graph.adjacency)
    return _propagate(order, weights.edges.astype(x.dtype), weights.bias.astype(x.dtype), x,
                      n_in=n_in, n_out=n_out, sigma=sigma, sigma_out=sigma_out)


@functools.partial(jax.jit, static_argnames=("n_in", "n_out", "sigma", "sigma_out"))
def _propagate(order, edges, bias, x, *, n_in, n_out, sigma, sigma_out):
    N = edges.shape[0]

    def one(x):
        def visit(k, a):
            v = order[k]
            z = edges[:, v] @ a + bias[v]
            value = jnp.where(v >= N - n_out, z, sigma(z))  # outputs keep z until the end
            return jnp.where(v < n_in, a, a.at[v].set(value))

        a = jax.lax.fori_loop(0, N, visit, jnp.zeros((N,), x.dtype).at[:n_in].set(x))
        return sigma_out(a[N - n_out:])

    return one(x) if x.ndim == 1 else jax.vmap(one)(x)


def _activation(activation: Any, name: str) -> Callable[[Array], Array]:
    if callable(activation):
        return activation
    canonical = check_activation(activation, name)
    if name == "activation" and canonical == "softmax":
        raise ValueError("activation='softmax' is not elementwise; use it as output_activation")
    return get_activation(canonical)
