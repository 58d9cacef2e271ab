r"""A guard against the kernel's limit on memory mappings, which compiled tree programs approach.

On Linux every compiled XLA:CPU program holds memory mappings for as long as JAX's in-memory
caches keep it — a tree program a few hundred, one per section of each of its kernels — and a
process may hold ``vm.max_map_count`` of them (65,530 by default). A long-lived process that
compiles hundreds of *distinct* tree programs (new shapes, depths or compiled-in settings) reaches
the limit; XLA's next compile then fails to map memory and the process dies, often of a
segmentation fault while the error is raised (seen in this project's test suite: a core file held
65,523 mappings; also reported for long JAX runs on CPU, e.g. jax-ml/jax#27201).

:func:`release_near_limit` runs before every tree fit: past :data:`MAPPING_SHARE` of the limit it
clears JAX's caches (``jax.clear_caches()``, which unmaps every compiled program; they compile
again when next used, from the persistent compilation cache where one is on) and says so in one
warning. Clearing is process-wide — it also drops the compiled programs of the caller's own code —
but a recompile is better than a dead process. Elsewhere than Linux nothing is counted.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

#: Past this share of ``vm.max_map_count`` a tree fit clears JAX's caches first (a new tree
#: program adds a few hundred mappings: at the default limit, 0.75 leaves room for ~40 of them).
MAPPING_SHARE = 0.75


def map_count() -> int | None:
    """The memory mappings this process holds (lines of ``/proc/self/maps``), or None where unknown."""
    try:
        return Path("/proc/self/maps").read_bytes().count(b"\n")
    except OSError:
        return None


@functools.cache
def max_map_count() -> int | None:
    """The kernel's per-process limit ``vm.max_map_count``, or None where unknown."""
    try:
        return int(Path("/proc/sys/vm/max_map_count").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def release_near_limit(share: float = MAPPING_SHARE) -> bool:
    """Clear JAX's caches, with a warning, when this process holds more than ``share`` of the
    memory mappings the kernel allows it.

    Args:
      share: the fraction of ``vm.max_map_count`` past which to clear, in ``(0, 1]``.

    Returns:
      Whether the caches were cleared (False where the counts are unknown: not Linux).

    Example:
      >>> from mlwork.trees._mappings import release_near_limit
      >>> release_near_limit()  # a fresh process is far below the limit
      False
    """
    limit, count = max_map_count(), map_count()
    if limit is None or count is None or count <= share * limit:
        return False
    import jax

    warnings.warn(f"this process holds {count:,} memory mappings of the {limit:,} the kernel allows it "
                  f"(vm.max_map_count), mostly compiled XLA programs: mlwork cleared JAX's compilation caches "
                  f"(jax.clear_caches()) so that the next compile does not fail; programs compile again when "
                  f"next used (raise vm.max_map_count to keep them)", RuntimeWarning, stacklevel=3)
    jax.clear_caches()
    return True
