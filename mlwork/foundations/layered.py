r"""A multilayer perceptron as a weighted DAG (deck section 7, meeting sections 9-11).

:func:`mlp_graph` builds the network as the deck draws it — neurons are vertices, adjacent
layers are complete bipartite, weights are edge values — and :func:`graph_forward` propagates
values vertex by vertex in topological order, which is exactly ``mlwork.nn.mlp``'s forward
pass (tested against it; this module does not import :mod:`mlwork.nn`).

References: deck sections 7 and 10; A. B. Kahn (1962), "Topological sorting of large
networks", CACM 5(11).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import check_finite, check_int, fail
from mlwork.foundations import _staging
from mlwork.foundations._checks import as_float
from mlwork.foundations.graphs import MAX_VERTICES, topological_order

Array = jax.Array

#: The activations :func:`graph_forward` takes by name: the deck's, the same ``jax.nn``
#: functions ``mlwork.nn`` uses (``None`` and ``"linear"`` mean the identity).
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "identity": lambda z: z,
    "softmax": jax.nn.softmax,
}

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
    r"""The multilayer perceptron with layer widths :math:`(n_0, n_1, \dots, n_L)` as a directed
    graph: one vertex per neuron, and an edge from every neuron of layer :math:`l-1` to every
    neuron of layer :math:`l`, so adjacent layers form the complete bipartite graph
    :math:`K_{n_{l-1}, n_l}`:

    .. math:: N = \sum_{l=0}^{L} n_l, \qquad |E| = \sum_{l=1}^{L} n_{l-1} n_l

    The graph is a DAG (information flows forward only). With one bias per non-input vertex,
    :func:`graph_param_count` gives :math:`\sum_l (n_{l-1} n_l + n_l)`, the parameter count of
    ``mlwork.nn.mlp(sizes)`` (59 for the deck's ``[4, 5, 4, 2]``).

    Args:
      sizes: at least two positive integer widths, input first.

    Returns:
      :class:`LayeredGraph` with an ``(N, N)`` adjacency matrix.

    Raises:
      ValueError: ``sizes`` not a sequence of at least two positive integers (naming
        ``sizes[i]``), or more than ``graphs.MAX_VERTICES`` neurons in all.

    Example:
      >>> from mlwork import foundations as fd
      >>> g = fd.mlp_graph([4, 5, 4, 2])
      >>> print(int(g.adjacency.sum()), fd.graph_param_count(g))  # edges, parameters
      48 59
    """
    try:
        sizes = tuple(sizes)
    except TypeError:
        fail("sizes", "a sequence of layer widths", repr(sizes))
    if len(sizes) < 2:
        fail("sizes", "at least the input and output widths", repr(sizes))
    sizes = tuple(check_int(n, f"sizes[{i}]", minimum=1) for i, n in enumerate(sizes))
    if sum(sizes) > MAX_VERTICES:
        fail("sizes", f"at most {MAX_VERTICES} neurons in all (the graph is an N x N matrix)", sum(sizes))
    layer = np.repeat(np.arange(len(sizes)), sizes)
    A = (layer[None, :] == layer[:, None] + 1).astype(np.float32)  # u in layer l-1 -> v in l
    return LayeredGraph(jnp.asarray(A), jnp.asarray(layer, jnp.int32), sizes)


def graph_param_count(graph: LayeredGraph) -> int:
    r"""The learnable numbers of a network drawn as a graph: one weight per edge plus one bias
    per vertex that has incoming edges.

    .. math:: |E| + |\{v : \mathrm{in}(v) > 0\}|

    Args:
      graph: a :class:`LayeredGraph` (any graph with an ``adjacency`` attribute).

    Returns:
      The count, a Python ``int``.

    Example:
      >>> from mlwork import foundations as fd
      >>> fd.graph_param_count(fd.mlp_graph([3, 2, 1]))  # 3·2 + 2 + 2·1 + 1
      11
    """
    E = np.asarray(graph.adjacency) != 0
    return int(E.sum() + np.count_nonzero(E.sum(axis=0)))


def _check_params(graph: LayeredGraph, params: Sequence[dict[str, Any]]) -> None:
    sizes = graph.sizes
    if not isinstance(params, (list, tuple)) or len(params) != len(sizes) - 1:
        got = len(params) if isinstance(params, (list, tuple)) else type(params).__name__
        fail("params", f"a list of {len(sizes) - 1} layers for sizes {sizes}", got)
    for l, layer in enumerate(params, start=1):
        expected = {"W": (sizes[l], sizes[l - 1]), "b": (sizes[l],)}
        got = {k: np.shape(layer.get(k)) for k in expected} if isinstance(layer, dict) else None
        if got != expected:
            fail(f"params[{l - 1}]", f"{{'W': {expected['W']}, 'b': {expected['b']}}}", got)


def edge_weights(graph: LayeredGraph, params: Sequence[dict[str, Any]]) -> GraphWeights:
    r"""Put an MLP's parameters on the graph's edges and vertices.

    The edge from neuron :math:`i` of layer :math:`l-1` to neuron :math:`j` of layer :math:`l`
    carries :math:`W^{[l]}_{ji}`, and neuron :math:`j` of layer :math:`l` carries the bias
    :math:`b^{[l]}_j` (deck section 10's notation). Differentiable in ``params``.

    Args:
      graph: the :class:`LayeredGraph` of ``mlp_graph(sizes)``.
      params: ``mlwork.nn.mlp``'s layout: a list of ``{"W": (n_l, n_{l-1}), "b": (n_l,)}``.

    Returns:
      :class:`GraphWeights` ``(edges (N, N), bias (N,))``, float32.

    Raises:
      ValueError: ``params`` has the wrong number of layers or shapes (naming ``params[i]``).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> g = fd.mlp_graph([2, 1])
      >>> w = fd.edge_weights(g, [{"W": jnp.array([[3.0, 4.0]]), "b": jnp.array([5.0])}])
      >>> print(w.edges[:, 2], w.bias)
      [3. 4. 0.] [0. 0. 5.]
    """
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
    output activation at the sinks. This is :math:`a^{[l]} = \sigma(W^{[l]} a^{[l-1]} +
    b^{[l]})` one neuron at a time, so it equals ``mlwork.nn.mlp(sizes, activation,
    output_activation)``'s forward pass. Pure; ``jit``/``vmap``/``grad`` apply (one sequential
    step per vertex: a teaching tool, not a fast path). A callable activation is used as it is
    at each call.

    Args:
      graph: the :class:`LayeredGraph` of ``mlp_graph(sizes)``.
      weights: a :class:`GraphWeights`, or the MLP ``params`` (converted by
        :func:`edge_weights`).
      activation: the hidden activation: a name from ``foundations.layered.ACTIVATIONS`` (not ``"softmax"``),
        ``"linear"``, ``None`` (identity) or an elementwise function of a scalar.
      x: the input, shape ``(n_0,)`` or ``(batch, n_0)``, finite.
      output_activation: as ``activation`` (``"softmax"`` acts on the whole output layer; a
        function gets the output vector of shape ``(n_L,)``); default identity.

    Returns:
      The outputs, shape ``(n_L,)`` or ``(batch, n_L)``.

    Raises:
      ValueError: ``graph`` not a :class:`LayeredGraph`, weights of the wrong shapes, an unknown
        activation name (or ``activation="softmax"``), ``x`` of the wrong shape or not finite.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> g = fd.mlp_graph([2, 1])
      >>> params = [{"W": jnp.array([[3.0, 4.0]]), "b": jnp.array([-10.0])}]
      >>> print(fd.graph_forward(g, params, "relu", jnp.array([1.0, 1.0])))  # 3 + 4 - 10
      [-3.]
    """
    if not isinstance(graph, LayeredGraph):
        fail("graph", "a LayeredGraph from mlp_graph", type(graph).__name__)
    if not isinstance(weights, GraphWeights):
        weights = edge_weights(graph, weights)
    N, n_in, n_out = sum(graph.sizes), graph.sizes[0], graph.sizes[-1]
    if weights.edges.shape != (N, N) or weights.bias.shape != (N,):
        fail("weights", f"edges ({N}, {N}) and bias ({N},)",
             f"{weights.edges.shape} and {weights.bias.shape}")
    sigma = _activation(activation, "activation")
    sigma_out = _activation(output_activation, "output_activation")
    x = as_float(x)
    if x.ndim not in (1, 2) or x.shape[-1] != n_in:
        fail("x", f"of shape ({n_in},) or (batch, {n_in})", f"shape {x.shape}")
    check_finite(x, "x")
    order = topological_order(graph.adjacency)
    fns = [(sigma, (jax.ShapeDtypeStruct((), x.dtype),)),
           (sigma_out, (jax.ShapeDtypeStruct((n_out,), x.dtype),))]
    args = (order, weights.edges.astype(x.dtype), weights.bias.astype(x.dtype), x)
    return _staging.call(_propagate, fns, args, n_in=n_in, n_out=n_out)


def _propagate(sigma, sigma_out, order, edges, bias, x, *, n_in, n_out):
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
    if activation is None or activation == "linear":
        return ACTIVATIONS["identity"]
    names = (*ACTIVATIONS, "linear", None)
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        fail(name, "one of " + ", ".join(map(repr, names)) + " or a function", repr(activation))
    if name == "activation" and activation == "softmax":
        fail(name, "elementwise ('softmax' is not; use it as output_activation)", repr(activation))
    return ACTIVATIONS[activation]
