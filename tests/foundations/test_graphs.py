import graphlib
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.sparse import csgraph

from mlwork import foundations as fd
from mlwork import nn

# The deck's example: V = {1, 2, 3, 4}, E = {{1,2}, {1,3}, {2,3}, {3,4}}.
DECK_EDGES = [(1, 2), (1, 3), (2, 3), (3, 4)]
# The deck's adjacency matrix: the 4-cycle 1-2-3-4-1.
CYCLE4 = jnp.array([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]], jnp.float32)


def test_deck_graph():
    A = fd.adjacency_matrix(DECK_EDGES, [1, 2, 3, 4])
    expected = [[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 0]]
    np.testing.assert_array_equal(A, expected)
    np.testing.assert_array_equal(A, A.T)  # undirected: symmetric
    np.testing.assert_array_equal(fd.degree(A), [2, 2, 3, 1])
    assert int(fd.degree(A).sum()) == 2 * len(DECK_EDGES)  # handshake lemma
    assert bool(fd.is_connected(A))
    assert not bool(fd.is_bipartite(A))  # the triangle 1-2-3 is an odd cycle
    assert bool(fd.has_path(A, 0, 3))
    np.testing.assert_array_equal(fd.shortest_path_lengths(A, source=0), [0, 1, 1, 2])


def test_deck_four_cycle_adjacency_matrix():
    np.testing.assert_array_equal(CYCLE4, CYCLE4.T)
    np.testing.assert_array_equal(fd.degree(CYCLE4), [2, 2, 2, 2])
    assert bool(fd.is_connected(CYCLE4)) and bool(fd.is_bipartite(CYCLE4))
    np.testing.assert_array_equal(fd.bipartition(CYCLE4), [False, True, False, True])  # {1,3} | {2,4}
    np.testing.assert_array_equal(fd.shortest_path_lengths(CYCLE4)[0], [0, 1, 2, 1])
    # (A^2)_ii counts closed walks of length 2 = the degree.
    np.testing.assert_array_equal(jnp.diagonal(CYCLE4 @ CYCLE4), fd.degree(CYCLE4))


def test_directed_degrees_and_disconnected_graph():
    D = fd.adjacency_matrix([("A", "B"), ("C", "A"), ("D", "A"), ("A", "C")], ["A", "B", "C", "D"],
                            directed=True)
    np.testing.assert_array_equal(fd.in_degree(D), [2, 1, 1, 0])  # in(A) = 2
    np.testing.assert_array_equal(fd.out_degree(D), [2, 0, 1, 1])
    assert not bool(fd.is_strongly_connected(D))  # nothing leaves B
    assert bool(fd.has_path(D, 3, 1)) and not bool(fd.has_path(D, 1, 3))
    weighted = fd.adjacency_matrix([("A", "B")], ["A", "B"], directed=True, weights=[0.7])
    np.testing.assert_array_equal(weighted, np.array([[0, 0.7], [0, 0]], np.float32))  # strength 0.7
    np.testing.assert_array_equal(fd.out_degree(weighted), [1, 0])  # degrees count edges
    two_parts = fd.adjacency_matrix([(0, 1), (2, 3)], 4)  # the deck's "NOT connected"
    assert not bool(fd.is_connected(two_parts))
    with pytest.raises(ValueError, match="not symmetric"):
        fd.is_connected(D)
    with pytest.raises(ValueError, match="not symmetric"):
        fd.degree(D)


def test_complete_graph():
    K5 = fd.complete_graph(5)
    np.testing.assert_array_equal(fd.degree(K5), [4] * 5)
    assert int(jnp.sum(K5)) // 2 == 10  # n(n-1)/2 edges
    assert bool(fd.is_connected(K5)) and not bool(fd.is_bipartite(K5))
    np.testing.assert_array_equal(fd.shortest_path_lengths(K5), 1 - np.eye(5))
    assert bool(fd.is_bipartite(fd.complete_graph(2)))
    np.testing.assert_array_equal(fd.degree(jnp.ones((1, 1))), [2])  # a self-loop counts twice


def test_dag_and_topological_order():
    # A small feedforward net: two inputs, one hidden neuron, one skip connection.
    D = fd.adjacency_matrix([(3, 2), (0, 2), (2, 1), (3, 1)], 4, directed=True)
    assert bool(fd.is_dag(D))
    order = [int(v) for v in fd.topological_order(D)]
    assert order == [0, 3, 2, 1]  # lowest-numbered available vertex first
    cyclic = fd.adjacency_matrix([(0, 1), (1, 2), (2, 0)], 3, directed=True)
    assert not bool(fd.is_dag(cyclic))
    with pytest.raises(ValueError, match="has a cycle"):
        fd.topological_order(cyclic)
    assert not bool(fd.is_dag(jnp.eye(2)))  # a self-loop is a cycle
    # Under jit there is no error: the vertices on the cycle get -1.
    np.testing.assert_array_equal(jax.jit(fd.topological_order)(cyclic), [-1, -1, -1])


def _random_graph(draw_bits, n, directed):
    A = np.array(draw_bits, np.float32).reshape(n, n)
    np.fill_diagonal(A, 0)
    return A if directed else np.maximum(A, A.T)


def _bits(n):
    return st.tuples(st.just(n), st.lists(st.booleans(), min_size=n * n, max_size=n * n))


# Few distinct sizes (each new n compiles the graph kernels once); 1 is the edge case.
@given(st.sampled_from([1, 4, 5]).flatmap(_bits), st.booleans())
def test_graph_algorithms_agree_with_scipy_and_brute_force(graph, directed):
    n, bits = graph
    A = _random_graph(bits, n, directed)
    # Shortest paths and connectivity: scipy's csgraph.
    np.testing.assert_array_equal(fd.shortest_path_lengths(A),
                                  csgraph.shortest_path(A, directed=True, unweighted=True))
    n_strong = csgraph.connected_components(A, directed=True, connection="strong")[0]
    assert bool(fd.is_strongly_connected(A)) == (n_strong == 1)
    # Cycles: the standard library's graphlib.
    try:
        tuple(graphlib.TopologicalSorter({v: set(np.flatnonzero(A[:, v])) for v in range(n)}).static_order())
        acyclic = True
    except graphlib.CycleError:
        acyclic = False
    assert bool(fd.is_dag(A)) == acyclic
    if acyclic:
        position = {int(v): k for k, v in enumerate(fd.topological_order(A))}
        assert sorted(position) == list(range(n))
        assert all(position[u] < position[v] for u, v in zip(*np.nonzero(A), strict=True))
    if not directed:
        # Bipartite: try every 2-colouring.
        edges = list(zip(*np.nonzero(A), strict=True))
        two_colourable = any(all(c[u] != c[v] for u, v in edges)
                             for c in itertools.product((0, 1), repeat=n))
        assert bool(fd.is_bipartite(A)) == two_colourable
        if two_colourable:
            side = np.asarray(fd.bipartition(A))
            assert all(side[u] != side[v] for u, v in edges)


def test_mlp_graph_structure_and_parameter_count():
    sizes = [4, 5, 4, 2]
    g = fd.mlp_graph(sizes)
    A = g.adjacency
    assert A.shape == (15, 15)
    assert bool(fd.is_dag(A))
    assert int(jnp.sum(A)) == 4 * 5 + 5 * 4 + 4 * 2
    variables = nn.mlp(sizes).init(jax.random.key(0), (4,))
    assert fd.graph_param_count(g) == nn.count_params(variables) == 59
    mnist = [784, 256, 128, 10]
    mnist_shapes = jax.eval_shape(nn.mlp(mnist).init, jax.random.key(0))  # no need to fill 235k floats
    assert fd.graph_param_count(fd.mlp_graph(mnist)) == nn.count_params(mnist_shapes) == 235_146
    # Adjacent layers form complete bipartite graphs K_{n_{l-1}, n_l}.
    off = g.offsets
    for l in range(1, len(sizes)):
        block = A[off[l - 1]:off[l - 1] + sizes[l - 1], off[l]:off[l] + sizes[l]]
        np.testing.assert_array_equal(block, np.ones((sizes[l - 1], sizes[l])))
    pair = np.r_[0:off[2]]  # the input and first hidden layer
    sub = A[np.ix_(pair, pair)]
    assert bool(fd.is_bipartite(sub + sub.T))
    np.testing.assert_array_equal(fd.bipartition(sub + sub.T), [False] * 4 + [True] * 5)
    np.testing.assert_array_equal(fd.in_degree(A), [0] * 4 + [4] * 5 + [5] * 4 + [4] * 2)


def test_graph_forward_equals_mlp_forward():
    sizes = [4, 5, 4, 2]
    g = fd.mlp_graph(sizes)
    x = jax.random.normal(jax.random.key(1), (6, 4))
    for act, out in (("relu", None), ("tanh", "softmax")):
        model = nn.mlp(sizes, activation=act, output_activation=out)
        variables = model.init(jax.random.key(2), (4,))
        expected, _ = model.apply(variables, x)
        got = fd.graph_forward(g, variables["params"], act, x, output_activation=out)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    single = fd.graph_forward(g, variables["params"], act, x[0], output_activation=out)
    np.testing.assert_allclose(single, expected[0], rtol=1e-5, atol=1e-6)


def test_graph_forward_on_the_deck_network_under_jit_and_grad():
    # The deck's 3 -> 2 -> 1 network (section 11): y_hat ≈ 0.669.
    params = [
        {"W": jnp.array([[0.2, 0.4, -0.5], [-0.3, 0.1, 0.2]]), "b": jnp.array([0.1, -0.2])},
        {"W": jnp.array([[0.6, -0.4]]), "b": jnp.array([0.3])},
    ]
    g = fd.mlp_graph([3, 2, 1])
    x = jnp.array([0.5, 0.8, -0.3])

    @jax.jit
    def forward(graph, params, x):
        return fd.graph_forward(graph, params, "relu", x, output_activation="sigmoid")[0]

    assert float(forward(g, params, x)) == pytest.approx(0.669, abs=5e-4)
    weights = fd.edge_weights(g, params)
    assert float(weights.edges[0, 3]) == pytest.approx(0.2)  # input 1 -> hidden 1 is W[1]_11
    assert float(weights.edges[3, 5]) == pytest.approx(0.6)
    model = nn.mlp([3, 2, 1], activation="relu", output_activation="sigmoid")
    grads = jax.grad(forward, argnums=1)(g, params, x)
    expected = jax.grad(lambda p: model.apply({"params": p, "state": {}}, x)[0][0])(params)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_bad_graph_input():
    with pytest.raises(ValueError, match=r"square \(n, n\) matrix"):
        fd.degree(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"square \(n, n\) matrix"):
        fd.is_dag(jnp.ones(4))
    with pytest.raises(ValueError, match="adjacency must be finite"):
        fd.is_dag(jnp.array([[0.0, jnp.nan], [0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"edges\[1\]"):
        fd.adjacency_matrix([(1, 2), (2, 5)], [1, 2, 3])
    with pytest.raises(ValueError, match="source must be a vertex index"):
        fd.has_path(CYCLE4, 4, 0)
    with pytest.raises(ValueError, match="adjacency must be a bipartite graph"):
        fd.bipartition(fd.complete_graph(3))
    with pytest.raises(ValueError, match=r"sizes\[1\] must be a positive integer"):
        fd.mlp_graph([3, 0, 1])
    g = fd.mlp_graph([3, 2, 1])
    with pytest.raises(ValueError, match=r"params\[0\] must be"):
        bad = [{"W": jnp.ones((3, 3)), "b": jnp.ones(2)}, {"W": jnp.ones((1, 2)), "b": jnp.ones(1)}]
        fd.graph_forward(g, bad, "relu", jnp.ones(3))
    with pytest.raises(ValueError, match=r"x must be of shape \(3,\) or \(batch, 3\)"):
        fd.graph_forward(g, nn.mlp([3, 2, 1]).init(jax.random.key(0))["params"], "relu", jnp.ones(4))
    with pytest.raises(ValueError, match=r"activation must be elementwise \('softmax' is not"):
        fd.graph_forward(g, nn.mlp([3, 2, 1]).init(jax.random.key(0))["params"], "softmax", jnp.ones(3))
    with pytest.raises(ValueError, match="activation must be one of 'sigmoid', 'relu'"):
        fd.graph_forward(g, nn.mlp([3, 2, 1]).init(jax.random.key(0))["params"], "swish", jnp.ones(3))
    # Counts of any integer type keep their value (no wrap-around) or are refused by name.
    for big in (2**31 + 5, np.int64(2**32 + 1000)):
        with pytest.raises(ValueError, match=r"n must be an integer in \[1, 65536\]; got"):
            fd.complete_graph(big)
        with pytest.raises(ValueError, match=r"vertices must be an integer in \[1, 65536\]"):
            fd.adjacency_matrix([], big)
        with pytest.raises(ValueError, match=r"source must be an integer in \[0, 3\]"):
            fd.shortest_path_lengths(CYCLE4, big)
        with pytest.raises(ValueError, match="source must be a vertex index"):
            fd.has_path(CYCLE4, big, 0)
    with pytest.raises(ValueError, match="sizes must be at most 65536 neurons"):
        fd.mlp_graph([2**16, 2])
