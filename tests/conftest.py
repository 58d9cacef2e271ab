"""Test configuration shared by the whole suite.

Strict dtype promotion and rank promotion that raises (as equinox's test suite does) so a
silent float64 upcast or an accidental broadcast between (n,) and (n, 1) fails loudly.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

# JAX compiles on first use, which hypothesis would otherwise report as a slow example.
settings.register_profile(
    "mlwork", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=50
)
settings.load_profile("mlwork")


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    """One persistent compilation cache for the session (and the subprocesses it starts, through
    MLWORK_CACHE_DIR): the trainer compiles the same programs in many tests."""
    from mlwork.train.compile_cache import enable_compilation_cache

    path = tmp_path_factory.mktemp("jax-cache")
    os.environ["MLWORK_CACHE_DIR"] = str(path)
    enable_compilation_cache()
    yield path
    jax.config.update("jax_compilation_cache_dir", None)
