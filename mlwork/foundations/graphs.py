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

A multilayer perceptron drawn as such a graph is in :mod:`~mlwork.foundations.layered`.

References:
  deck section 7; T. H. Cormen et al., *Introduction to Algorithms*, 3rd ed., ch. 22
  (breadth-first search, topological sort) and §25.1-25.2 (matrix products by repeated
  squaring, transitive closure);
  A. B. Kahn (1962), "Topological sorting of large networks", CACM 5(11); D. König (1936)
  (a graph is bipartite iff it has no odd cycle).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import check_finite, check_int, concrete, fail

Array = jax.Array


# ---------------------------------------------------------------------------------------------
# Building and checking adjacency matrices
# ---------------------------------------------------------------------------------------------


#: The most vertices a graph here may have: every function holds an (n, n) matrix (16 GiB of
#: float32 at this size); larger counts are refused with a ValueError naming the argument.
MAX_VERTICES = 2**16


def _check_adjacency(adjacency: Any, name: str = "adjacency") -> Array:
    A = jnp.asarray(adjacency)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        fail(name, "a square (n, n) matrix", f"shape {A.shape}")
    if A.shape[0] == 0:
        fail(name, "a matrix with at least one vertex", f"shape {A.shape}")
    if jnp.issubdtype(A.dtype, jnp.complexfloating):
        fail(name, "real", f"dtype {A.dtype}")
    check_finite(A, name)
    return A


def _edges(adjacency: Any, name: str = "adjacency") -> Array:
    """The 0/1 float32 edge indicator :math:`[A_{ij} \\ne 0]`."""
    return (_check_adjacency(adjacency, name) != 0).astype(jnp.float32)


def _check_undirected(adjacency: Array, function: str) -> None:
    values = concrete(adjacency)
    if values is not None and not np.array_equal(values, values.T):
        fail("adjacency", f"symmetric for {function}, which is for undirected graphs (for a directed "
             "graph use in_degree/out_degree or is_strongly_connected)", "a matrix that is not symmetric (A != A^T)")


def adjacency_matrix(
    edges: Sequence[tuple[Hashable, Hashable]],
    vertices: int | Sequence[Hashable],
    *,
    directed: bool = False,
    weights: Sequence[float] | None = None,
) -> Array:
    r"""The adjacency matrix of a graph :math:`G = (V, E)` (deck section 7).

    .. math:: A_{ij} = \begin{cases} w_{ij} & \text{if } (i, j) \in E \\ 0 & \text{otherwise}
              \end{cases}

    with :math:`w_{ij} = 1` when ``weights`` is ``None``. Row/column ``k`` is the ``k``-th
    vertex label; undirected edges fill both :math:`A_{ij}` and :math:`A_{ji}`.

    Args:
      edges: pairs ``(u, v)`` of vertex labels.
      vertices: the number of vertices :math:`n` (labels ``0..n-1``, at most
        :data:`MAX_VERTICES`), or the list of distinct labels.
      directed: ``True`` for a digraph (only :math:`A_{uv}` is set).
      weights: one finite weight per edge, or ``None`` for 1.

    Returns:
      The ``(n, n)`` float32 matrix.

    Raises:
      ValueError: a bad vertex count or repeated labels, an edge with an unknown label (naming
        ``edges[k]``), a ``weights`` list of the wrong length or with a non-finite entry.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(fd.adjacency_matrix([(1, 2), (1, 3), (2, 3), (3, 4)], [1, 2, 3, 4]))  # the deck's
      [[0. 1. 1. 0.]
       [1. 0. 1. 0.]
       [1. 1. 0. 1.]
       [0. 0. 1. 0.]]
    """
    if isinstance(vertices, (int, np.integer)) and not isinstance(vertices, bool):
        labels = list(range(check_int(vertices, "vertices", minimum=1, maximum=MAX_VERTICES)))
    else:
        labels = list(vertices)
        if not labels or len(set(labels)) != len(labels):
            fail("vertices", "a count or a list of distinct labels", repr(vertices))
        if len(labels) > MAX_VERTICES:
            fail("vertices", f"at most {MAX_VERTICES} labels", len(labels))
    index = {v: k for k, v in enumerate(labels)}
    edges = list(edges)
    if weights is None:
        weights = [1.0] * len(edges)
    weights = [float(w) for w in weights]
    if len(weights) != len(edges):
        fail("weights", f"one weight per edge ({len(edges)})", f"{len(weights)} entries")
    A = np.zeros((len(labels), len(labels)), np.float32)
    for k, edge in enumerate(edges):
        try:
            u, v = edge
            i, j = index[u], index[v]
        except (KeyError, TypeError, ValueError):
            fail(f"edges[{k}]", f"a pair of vertices from {labels[:10]}{'...' if len(labels) > 10 else ''}", repr(edge))
        if not math.isfinite(weights[k]):
            fail(f"weights[{k}]", "finite", weights[k])
        A[i, j] = weights[k]
        if not directed:
            A[j, i] = weights[k]
    return jnp.asarray(A)


def complete_graph(n: int) -> Array:
    r"""The complete graph :math:`K_n`: every vertex joined to every other.

    .. math:: A = \mathbf{1}\mathbf{1}^\top - I

    It has :math:`n(n-1)/2` edges and every degree is :math:`n - 1`; a "fully connected" layer
    is its bipartite cousin.

    Args:
      n: the number of vertices, a positive integer (at most :data:`MAX_VERTICES`).

    Returns:
      The ``(n, n)`` float32 adjacency matrix.

    Raises:
      ValueError: ``n`` not an integer in ``[1, MAX_VERTICES]``.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(int(fd.complete_graph(5).sum()) // 2)  # edges of K5
      10
    """
    n = check_int(n, "n", minimum=1, maximum=MAX_VERTICES)
    return jnp.ones((n, n), jnp.float32) - jnp.eye(n, dtype=jnp.float32)


# ---------------------------------------------------------------------------------------------
# Degrees
# ---------------------------------------------------------------------------------------------


def degree(adjacency: Any) -> Array:
    r"""Degrees of an undirected graph: the number of edges at each vertex.

    .. math:: \deg(i) = \#\{j : A_{ij} \ne 0\} + [A_{ii} \ne 0]

    (a self-loop counts twice, so :math:`\sum_i \deg(i) = 2|E|`, the handshake lemma).

    Args:
      adjacency: an ``(n, n)`` real matrix, finite; nonzero entries are edges. Symmetric.

    Returns:
      int32 degrees, shape ``(n,)``.

    Raises:
      ValueError: ``adjacency`` not a finite square real matrix, or (when concrete) not
        symmetric (use :func:`in_degree`/:func:`out_degree` for digraphs).

    Example:
      >>> from mlwork import foundations as fd
      >>> print(fd.degree(fd.adjacency_matrix([(1, 2), (1, 3), (2, 3), (3, 4)], [1, 2, 3, 4])))
      [2 2 3 1]
    """
    E = _edges(adjacency)
    _check_undirected(E, "degree")
    return (jnp.sum(E, axis=1) + jnp.diagonal(E)).astype(jnp.int32)


def in_degree(adjacency: Any) -> Array:
    r"""In-degrees of a digraph, the edges coming in (column counts).

    .. math:: \mathrm{in}(j) = \#\{i : A_{ij} \ne 0\}

    Args:
      adjacency: an ``(n, n)`` real matrix, finite; nonzero entries are edges.

    Returns:
      int32 in-degrees, shape ``(n,)``.

    Raises:
      ValueError: ``adjacency`` not a finite square real matrix.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(fd.in_degree(fd.adjacency_matrix([(0, 1), (0, 2), (1, 2)], 3, directed=True)))
      [0 1 2]
    """
    return jnp.sum(_edges(adjacency), axis=0).astype(jnp.int32)


def out_degree(adjacency: Any) -> Array:
    r"""Out-degrees of a digraph, the edges going out (row counts).

    .. math:: \mathrm{out}(i) = \#\{j : A_{ij} \ne 0\}

    Args:
      adjacency: an ``(n, n)`` real matrix, finite; nonzero entries are edges.

    Returns:
      int32 out-degrees, shape ``(n,)``.

    Raises:
      ValueError: ``adjacency`` not a finite square real matrix.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(fd.out_degree(fd.adjacency_matrix([(0, 1), (0, 2), (1, 2)], 3, directed=True)))
      [2 1 0]
    """
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
    r"""The reachability matrix: whether a path :math:`i \to \dots \to j` exists, the path of
    length 0 included (:math:`R_{ii}` is true).

    .. math:: R = \big[(I + A)^{n-1} \ne 0\big]

    computed by :math:`\lceil \log_2 n \rceil` Boolean squarings, :math:`O(n^3 \log n)`
    (Cormen et al., *Introduction to Algorithms*, §25.2).

    Args:
      adjacency: an ``(n, n)`` real matrix, finite; nonzero entries are edges.

    Returns:
      bool ``(n, n)``.

    Raises:
      ValueError: ``adjacency`` not a finite square real matrix.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(fd.reachability(fd.adjacency_matrix([(0, 1)], 3, directed=True)).astype(int))
      [[1 1 0]
       [0 1 0]
       [0 0 1]]
    """
    return _closure(_edges(adjacency)) > 0


def has_path(adjacency: Any, source: Any, target: Any) -> Array:
    r"""Whether a path :math:`v_0 = \text{source} \to v_1 \to \dots \to v_k = \text{target}`
    exists, following edge directions (a vertex reaches itself by the empty path).

    Args:
      adjacency: an ``(n, n)`` real matrix, finite; nonzero entries are edges.
      source, target: vertex indices in ``[0, n)`` (integer scalars; may be traced).

    Returns:
      A bool scalar.

    Raises:
      ValueError: ``adjacency`` not a finite square real matrix, or (when concrete) an index
        out of range.

    Example:
      >>> from mlwork import foundations as fd
      >>> A = fd.adjacency_matrix([(0, 1), (1, 2)], 3, directed=True)
      >>> print(bool(fd.has_path(A, 0, 2)), bool(fd.has_path(A, 2, 0)))
      True False
    """
    A = _check_adjacency(adjacency)
    n = A.shape[0]
    for name, v in (("source", source), ("target", target)):
        value = concrete(v)
        if value is not None and not (value.shape == () and 0 <= value < n):
            fail(name, f"a vertex index in [0, {n - 1}]", value)
    return reachability(A)[source, target]


def is_connected(adjacency: Any) -> Array:
    r"""Whether an undirected graph is connected: a path joins every pair of vertices,
    :math:`R = \mathbf{1}\mathbf{1}^\top` (see :func:`reachability`).

    Args:
      adjacency: an ``(n, n)`` real matrix, finite; nonzero entries are edges. Symmetric.

    Returns:
      A bool scalar.

    Raises:
      ValueError: ``adjacency`` not a finite square real matrix, or (when concrete) not
        symmetric (use :func:`is_strongly_connected` for digraphs).

    Example:
      >>> from mlwork import foundations as fd
      >>> print(bool(fd.is_connected(fd.adjacency_matrix([(0, 1), (2, 3)], 4))))
      False
    """
    A = _check_adjacency(adjacency)
    _check_undirected(A, "is_connected")
    return jnp.all(reachability(A))


def is_strongly_connected(adjacency: Any) -> Array:
    r"""Whether a directed graph is strongly connected: a directed path :math:`i \to j` for
    every ordered pair, :math:`R = \mathbf{1}\mathbf{1}^\top`.

    Args:
      adjacency: an ``(n, n)`` real matrix, finite; nonzero entries are edges.

    Returns:
      A bool scalar.

    Raises:
      ValueError: ``adjacency`` not a finite square real matrix.

    Example:
      >>> from mlwork import foundations as fd
      >>> cycle = fd.adjacency_matrix([(0, 1), (1, 2), (2, 0)], 3, directed=True)
      >>> print(bool(fd.is_strongly_connected(cycle)))
      True
    """
    return jnp.all(reachability(adjacency))


def is_dag(adjacency: Any) -> Array:
    r"""Whether a directed graph is acyclic (a DAG, like a feedforward network): no vertex
    reaches itself by a path of length :math:`\ge 1` (a self-loop is a cycle).

    .. math:: \big(A\,R\big)_{ii} = 0 \quad \text{for all } i

    Args:
      adjacency: an ``(n, n)`` real matrix, finite; nonzero entries are edges.

    Returns:
      A bool scalar.

    Raises:
      ValueError: ``adjacency`` not a finite square real matrix.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(bool(fd.is_dag(fd.mlp_graph([2, 3, 1]).adjacency)))
      True
    """
    return _acyclic(_edges(adjacency))


@jax.jit
def _acyclic(E: Array) -> Array:
    return ~jnp.any(jnp.diagonal(E @ _closure(E)) > 0)


def topological_order(adjacency: Any) -> Array:
    r"""An order of the vertices in which every edge :math:`u \to v` has :math:`u` before
    :math:`v` (Kahn's algorithm, Kahn 1962): repeatedly take the lowest-numbered vertex with no
    incoming edges from the vertices not yet taken. Deterministic.

    Args:
      adjacency: an ``(n, n)`` real matrix, finite; nonzero entries are edges. Acyclic.

    Returns:
      int32 vertex indices, shape ``(n,)``. Under ``jit`` the vertices on or behind a cycle
      cannot be taken and their slots hold ``-1``.

    Raises:
      ValueError: ``adjacency`` not a finite square real matrix, or (when concrete) cyclic.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(fd.topological_order(fd.adjacency_matrix([(2, 0), (0, 1)], 3, directed=True)))
      [2 0 1]
    """
    order = _kahn(_edges(adjacency))
    values = concrete(order)
    if values is not None and np.any(values < 0):
        fail("adjacency", "a directed acyclic graph for topological_order", "a graph that has a cycle")
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
    level (Cormen et al., §22.2):

    .. math:: F_0 = I, \quad F_{k} = \big[F_{k-1} A \ne 0\big] \wedge \neg(F_0 \vee \dots \vee
              F_{k-1}), \qquad d(i, j) = k \text{ where } (F_k)_{ij} = 1

    Edge weights are ignored (length = edge count, as the deck defines it).

    Args:
      adjacency: an ``(n, n)`` real matrix, finite; nonzero entries are edges.
      source: a vertex index in ``[0, n)`` for one row, or ``None`` for all.

    Returns:
      float32 :math:`d(i, j)`, ``(n, n)`` (or ``(n,)`` for ``source``), ``inf`` where :math:`j`
      is not reachable from :math:`i`.

    Raises:
      ValueError: ``adjacency`` not a finite square real matrix, ``source`` not an index.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(fd.shortest_path_lengths(fd.adjacency_matrix([(0, 1), (1, 2)], 4), source=0))
      [ 0.  1.  2. inf]
    """
    E = _edges(adjacency)
    n = E.shape[0]
    if source is not None:
        source = check_int(source, "source", minimum=0, maximum=n - 1)
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
    edge between the groups (adjacent layers of a network are). Equivalently (König 1936), no
    closed walk of odd length, which is checked on the double cover
    :math:`\begin{pmatrix} 0 & A \\ A & 0 \end{pmatrix}`: vertex :math:`i` must not reach its
    own copy :math:`n + i`.

    Args:
      adjacency: an ``(n, n)`` real matrix, finite; nonzero entries are edges. Symmetric.

    Returns:
      A bool scalar.

    Raises:
      ValueError: ``adjacency`` not a finite square real matrix, or (when concrete) not
        symmetric.

    Example:
      >>> from mlwork import foundations as fd
      >>> triangle = fd.adjacency_matrix([(0, 1), (1, 2), (2, 0)], 3)
      >>> print(bool(fd.is_bipartite(triangle)), bool(fd.is_bipartite(fd.adjacency_matrix([(0, 1)], 2))))
      False True
    """
    E = _edges(adjacency)
    _check_undirected(E, "is_bipartite")
    _, odd = _odd_even_closure(E)
    return ~jnp.any(jnp.diagonal(odd))


def bipartition(adjacency: Any) -> Array:
    r"""The two groups of a bipartite undirected graph, as a bool mask (``True`` = second group):
    a vertex is in the second group iff an odd-length walk joins it to the lowest-numbered
    vertex of its connected component.

    Args:
      adjacency: an ``(n, n)`` real matrix, finite; nonzero entries are edges. Symmetric and bipartite.

    Returns:
      bool, shape ``(n,)``. Under ``jit`` a graph that is not bipartite gives a meaningless
      mask (check :func:`is_bipartite`).

    Raises:
      ValueError: ``adjacency`` not a finite square real matrix, or (when concrete) not
        symmetric or not bipartite.

    Example:
      >>> from mlwork import foundations as fd
      >>> print(fd.bipartition(fd.adjacency_matrix([(0, 1), (1, 2), (2, 3), (3, 0)], 4)))
      [False  True False  True]
    """
    A = _check_adjacency(adjacency)
    values = concrete(A)
    if values is not None and not bool(is_bipartite(values)):
        fail("adjacency", "a bipartite graph", "a graph with a cycle of odd length")
    E = _edges(A)
    _check_undirected(E, "bipartition")
    even, odd = _odd_even_closure(E)
    root = jnp.argmax(even | odd, axis=0)  # lowest-numbered vertex of each vertex's component
    return odd[root, jnp.arange(E.shape[0])]
