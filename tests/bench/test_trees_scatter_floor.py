"""bench.trees_scatter_floor: every layout it times builds the histogram it stands for."""

import jax.numpy as jnp
import numpy as np
import pytest

from bench import trees_scatter_floor as bench


@pytest.mark.parametrize("name", list(bench.LAYOUTS))
def test_each_layout_scatters_the_histogram_of_a_numpy_oracle(name):
    rng = np.random.default_rng(0)
    n, size = 500, 37
    idx = rng.integers(0, size, n)
    dense = rng.normal(size=(n, 2)).astype(np.float32)
    ints = rng.integers(-1000, 1000, n).astype(np.int32)
    fn, channels = bench.LAYOUTS[name]
    values = ints if name.startswith("int32") else dense
    got = np.asarray(fn(jnp.asarray(values), jnp.asarray(idx, jnp.int32), size))
    want = np.zeros((size, 2) if values.ndim == 2 else (size,), np.float64)
    np.add.at(want, idx, values.astype(np.float64))
    if channels == 1 and values.ndim == 2:  # one channel of the float rows
        want = want[:, 0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_bad_counts_are_refused():
    with pytest.raises(SystemExit):
        bench._parse(["--features", "0"])
