"""The tree tests compile without the session's persistent compilation cache.

Twice in the slow tier (CI of 2026-12-07, two runs) an xdist worker died of a segmentation
fault inside JAX's compile-and-write-to-cache path while compiling a tree program (a random
forest in ``backend_compile_and_load``, a boosting fit in ``put_executable_and_time``), with the
cache that tests/conftest.py shares between workers switched on. The same tests pass alone.
Until the cause is known, the tree tests compile in memory only; the cache stays on for every
other test (the trainer's programs, compiled in many tests and in subprocesses, are what it is for).
"""

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache


@pytest.fixture(autouse=True)
def _no_persistent_compilation_cache():
    enabled = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()  # JAX decides once whether the cache is used: ask again
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", enabled)
        compilation_cache.reset_cache()
