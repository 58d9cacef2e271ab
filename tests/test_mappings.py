"""The premise of tests/conftest.py's mapping guard: a compiled tree program holds hundreds of
memory mappings until ``jax.clear_caches()`` releases it (Linux only)."""

import jax
import numpy as np
import pytest

from mlwork import trees
from tests.conftest import _memory_mappings

pytestmark = pytest.mark.skipif(_memory_mappings() is None, reason="counts /proc/self/maps (Linux)")


def test_a_compiled_tree_program_holds_mappings_until_the_caches_are_cleared():
    X = np.random.default_rng(0).normal(size=(37, 3)).astype(np.float32)  # a shape no other test uses
    y = (X[:, 0] > 0).astype(np.int64)
    trees.fit_tree(X[:29], y[:29], max_depth=5)  # the process's one-time set-up (thread pools) first
    jax.clear_caches()
    before = _memory_mappings()
    trees.fit_tree(X, y, max_depth=5)
    held = _memory_mappings() - before
    assert held > 50, held
    jax.clear_caches()
    assert _memory_mappings() - before < held / 2  # (allocator arenas and the like stay)
