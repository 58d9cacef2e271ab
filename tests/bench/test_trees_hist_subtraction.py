"""bench.trees_hist_subtraction: the subtracted histograms it times are the right histograms."""

import jax.numpy as jnp
import numpy as np
import pytest

from bench import trees_hist_subtraction as bench


def _oracle(Xb, g, h, node, shift, n_nodes):
    """Float64 NumPy histogram (Q=2, L, B + 1) of (g - c h, h) about each node's own shift c."""
    out = np.zeros((2, n_nodes, bench.N_BINS + 1))
    c = shift.astype(np.float64)[node]
    np.add.at(out[0], (node, Xb), g.astype(np.float64) - c * h.astype(np.float64))
    np.add.at(out[1], (node, Xb), h.astype(np.float64))
    return out


@pytest.mark.slow  # ~4 s under load: compiles two programs with 256-bin histograms
def test_subtracted_histograms_match_a_float64_oracle_and_the_parent_splits_into_its_children():
    _, _, _, hists, first_subtracted = bench._programs()
    rng = np.random.default_rng(1)
    n, n_nodes = 3001, 4
    Xb = rng.integers(0, bench.N_BINS + 1, (2, n)).astype(np.uint8)
    g, h = rng.normal(5.0, 1.0, n).astype(np.float32), rng.uniform(0.05, 0.25, n).astype(np.float32)
    # uneven children, so that the smaller one is the right child in one pair and the left in the other
    node = np.where(rng.uniform(size=n) < 0.5, rng.choice([0, 3], n), rng.choice([0, 1, 2, 3], n)).astype(np.int32)
    shift = rng.normal(5.0, 0.5, n_nodes).astype(np.float32)
    pshift = rng.normal(5.0, 0.5, n_nodes // 2).astype(np.float32)
    gh = jnp.asarray(np.stack([g, h], 1))
    parent = hists(n_nodes // 2, jnp.asarray(Xb), gh, jnp.asarray(node >> 1), jnp.asarray(pshift))
    got = np.asarray(first_subtracted(n_nodes, jnp.asarray(Xb), gh, jnp.asarray(node), jnp.asarray(shift),
                                      parent, jnp.asarray(pshift)), np.float64)
    want = _oracle(Xb[0], g, h, node, shift, n_nodes)
    scale = np.max(np.abs(want))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale)
    # a wrong sign in the shift move (c' - c) would be off by 2 |c' - c| h per bin: far above the tolerance
    assert np.max(np.abs(got[0] - want[0])) < 0.01 * np.max(np.abs(want[1]) * np.abs(shift - pshift.repeat(2))[:, None])
