"""Test configuration shared by the whole suite.

Strict dtype promotion and rank promotion that raises (as equinox's test suite does) so a
silent float64 upcast or an accidental broadcast between (n,) and (n, 1) fails loudly.
"""

import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # a bare machine without hypothesis (bench.gpu_check): its test modules are not collected
    settings = None
if settings is not None:
    # JAX compiles on first use, which hypothesis would otherwise report as a slow example.
    # 12 examples per property keeps the default run under 10 minutes on 2 cores (inputs are
    # drawn afresh on every run, so runs add up to a longer search); a longer hunt at once:
    # MLWORK_HYPOTHESIS_EXAMPLES=500 uv run pytest tests/theory (tests with their own
    # max_examples keep theirs).
    settings.register_profile(
        "mlwork", deadline=None, suppress_health_check=[HealthCheck.too_slow],
        max_examples=int(os.environ.get("MLWORK_HYPOTHESIS_EXAMPLES", "12")),
    )
    settings.load_profile("mlwork")


@pytest.fixture
def key():
    return jax.random.key(0)


#: A test worker releases JAX's compiled programs once its memory mappings pass this count.
MAPPINGS_BEFORE_CLEARING = 40_000


def _memory_mappings() -> int | None:
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux
        return None


@pytest.fixture(autouse=True)
def _release_compiled_programs_before_the_mapping_limit():
    """Every compiled XLA:CPU program holds memory mappings (a tree program several hundred, one
    per kernel section) for as long as JAX's in-memory caches keep it; Linux allows a process
    ``vm.max_map_count`` of them (65,530 by default). A long-lived xdist worker compiling
    hundreds of distinct programs (the slow tier: scikit-learn's estimator suite, hypothesis over
    shapes) reached it: XLA's next compile failed to map memory and the worker died of a
    segmentation fault while the error was being raised (four slow-tier runs in a row on
    2026-12-07; a core file showed 65,523 mappings). So after a test that leaves the worker past
    MAPPINGS_BEFORE_CLEARING, ``jax.clear_caches()`` releases them (later tests recompile, from
    the persistent cache where they can)."""
    yield
    count = _memory_mappings()
    if count is not None and count > MAPPINGS_BEFORE_CLEARING:
        jax.clear_caches()


@pytest.fixture(scope="session", autouse=True)
def compilation_cache():
    """One persistent compilation cache for the session, shared by the xdist workers and the
    subprocesses the tests start (through MLWORK_CACHE_DIR): the trainer compiles the same
    programs in many tests. JAX writes cache entries atomically, so workers may share it."""
    from mlwork.train.compile_cache import enable_compilation_cache

    path = Path(os.environ["MLWORK_TEST_JAX_CACHE"])
    os.environ["MLWORK_CACHE_DIR"] = str(path)
    enable_compilation_cache()
    yield path
    jax.config.update("jax_compilation_cache_dir", None)


#: The default run (``-m "not slow"``) on a CPU compiles with XLA's backend optimisation off: JAX
#: compilation dominates most tests, and this cuts the run by about 30%. The slow tier
#: (``-m slow``), the benchmarks and every user run keep XLA's default; the guarantees that
#: depend on how XLA optimises (a row's value independent of its batch) are also checked at
#: the default level in a subprocess (tests/theory/test_information_signs.py).
FAST_TIER_XLA_FLAG = "--xla_backend_optimization_level=0"


def _cpu_only() -> bool:
    """No accelerator plugin installed (or JAX told to use the CPU): the -O0 flag is for XLA:CPU;
    the GPU check (bench/gpu_check.py) runs the default tier on the GPU as users compile."""
    import importlib.metadata
    import pkgutil

    if os.environ.get("JAX_PLATFORMS", "").strip().lower() == "cpu":
        return True
    if importlib.metadata.entry_points(group="jax_plugins"):  # how JAX finds CUDA/ROCm plugins
        return False
    return not any(m.name.startswith(("jax_cuda", "jax_rocm", "libtpu")) for m in pkgutil.iter_modules())


def pytest_configure(config):
    if config.option.markexpr == "not slow" and any("::" in arg for arg in config.args):
        config.option.markexpr = ""  # a test named by its node id runs, slow or not
    if (config.option.markexpr == "not slow" and os.environ.get("MLWORK_TEST_XLA_DEFAULT_OPT") != "1"
            and FAST_TIER_XLA_FLAG not in os.environ.get("XLA_FLAGS", "") and _cpu_only()):
        # Before any backend starts; xdist workers and test subprocesses inherit it.
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_TIER_XLA_FLAG}".strip()
    # The suite never downloads: the data chain skips its download and TFDS sources unless a test
    # turns them back on against its own 127.0.0.1 server (tests/data/test_download.py).
    os.environ.setdefault("MLWORK_OFFLINE", "1")
    # Where the fuzz tests (tests/test_fuzz.py) leave their per-process counts; set before any
    # xdist worker starts, so workers inherit it.
    if "MLWORK_FUZZ_COUNTS" not in os.environ:
        os.environ["MLWORK_FUZZ_COUNTS"] = tempfile.mkdtemp(prefix="mlwork-fuzz-")
    if "MLWORK_TEST_JAX_CACHE" not in os.environ:  # the controller makes it; workers inherit it
        os.environ["MLWORK_TEST_JAX_CACHE"] = tempfile.mkdtemp(prefix="mlwork-jax-cache-")
        config._mlwork_cache_owner = True


def pytest_unconfigure(config):
    if getattr(config, "_mlwork_cache_owner", False):
        import shutil

        shutil.rmtree(os.environ.pop("MLWORK_TEST_JAX_CACHE"), ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    if hasattr(terminalreporter.config, "workerinput"):  # an xdist worker: the controller reports
        return
    folder = Path(os.environ.get("MLWORK_FUZZ_COUNTS", ""))
    files = list(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        return
    totals: dict[str, list[int]] = {}
    for f in files:
        for name, (calls, errors) in json.loads(f.read_text()).items():
            t = totals.setdefault(name, [0, 0])
            t[0] += calls
            t[1] += errors
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    calls = sum(c for c, _ in totals.values())
    errors = sum(e for _, e in totals.values())
    terminalreporter.write_line(
        f"fuzz: {calls} calls of {len(totals)} public functions — {errors} raised ValueError, "
        f"{calls - errors} returned results without NaN; no other outcome occurred")
    only_errors = sorted(name for name, (c, e) in totals.items() if c == e)
    if only_errors:
        terminalreporter.write_line(f"fuzz: these only ever raised (no valid input drawn): {', '.join(only_errors)}")
    if terminalreporter.verbosity > 0:
        for name, (c, e) in sorted(totals.items()):
            terminalreporter.write_line(f"  {name:<40} {c:5d} calls {e:5d} ValueError")
