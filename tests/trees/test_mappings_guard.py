"""mlwork.trees._mappings: a tree fit clears JAX's caches, with one warning, near vm.max_map_count."""

import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlwork import trees
from mlwork.trees import _mappings

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")


@linux
def test_the_counts_are_read_from_proc():
    count, limit = _mappings.map_count(), _mappings.max_map_count()
    assert isinstance(count, int) and isinstance(limit, int)
    assert 0 < count < limit  # this process is alive, so below the limit
    assert not _mappings.release_near_limit()


@linux
def test_past_the_share_a_fit_clears_the_caches_and_warns_once(monkeypatch):
    f = jax.jit(lambda x: x * 2)
    f(jnp.ones(3))
    assert f._cache_size() == 1
    monkeypatch.setattr(_mappings, "max_map_count", lambda: _mappings.map_count())  # "at the limit" now
    X = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = (X[:, 0] > 20).astype(np.int32)
    with pytest.warns(RuntimeWarning, match=r"vm\.max_map_count.*jax\.clear_caches\(\)") as caught:
        tree = trees.fit_tree(X, y, max_depth=2)
    assert len([w for w in caught if "max_map_count" in str(w.message)]) == 1
    assert f._cache_size() == 0  # the caller's programs were released too (process-wide, as documented)
    np.testing.assert_array_equal(np.asarray(trees.predict(tree, X)), y)  # and the fit is right


@linux
def test_below_the_share_nothing_is_cleared(monkeypatch):
    f = jax.jit(lambda x: x + 1)
    f(jnp.ones(2))
    monkeypatch.setattr(_mappings, "max_map_count", lambda: 10 * _mappings.map_count())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not _mappings.release_near_limit()
    assert f._cache_size() == 1


def test_unknown_counts_never_clear(monkeypatch):
    monkeypatch.setattr(_mappings, "map_count", lambda: None)
    assert not _mappings.release_near_limit()
    monkeypatch.setattr(_mappings, "map_count", lambda: 10**9)
    monkeypatch.setattr(_mappings, "max_map_count", lambda: None)
    assert not _mappings.release_near_limit()
