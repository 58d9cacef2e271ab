"""What mlwork adapts to the machine it compiles for.

**Vector width on XLA:CPU.** XLA:CPU asks LLVM to prefer 256-bit vectors even on CPUs with
AVX-512, because 512-bit instructions used to lower the clock of older Intel parts. On a CPU with
AVX-512 (measured on an AMD EPYC Zen 5: the MNIST MLP epoch 12-16% faster at batch 64 and 128,
``bench.mnist_epoch``) the fused element-wise kernels and loop bodies run faster with 512-bit
vectors, so ``compiler_options()`` asks for them there. The user's choice wins:

* ``XLA_FLAGS=--xla_cpu_prefer_vector_width=...`` (any value) is left alone;
* ``MLWORK_CPU_VECTOR_WIDTH=128|256|512`` overrides the detection.

**Population blocks on XLA:CPU.** K models vmapped in lockstep touch K sets of parameters and
Adam moments on every step; once those outgrow the last-level cache, every step streams them from
memory and a member trained in a population costs more than one trained alone (measured:
1.05-1.14× at K = 16 for the MNIST MLP, 3.8 MB of state per member, 32 MiB L3). :func:`member_block` picks
how many members one vmapped block holds so a block's state fits in half the last-level cache;
the population program then runs the blocks one after another (``jax.lax.map`` with
``batch_size``), still one compiled program. GPUs and TPUs vmap every member at once.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Any

import jax

_FLAG = "xla_cpu_prefer_vector_width"
DEFAULT_CACHE_BYTES = 16 * 2**20  # when the last-level cache size cannot be read


@functools.cache
def _has_avx512() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return "avx512f" in line.split()
    except OSError:
        pass
    return False


def compiler_options(backend: str | None = None) -> dict[str, Any]:
    """The ``compiler_options`` for ``jax.jit(f).lower(...).compile(compiler_options=...)`` on
    ``backend`` (default: JAX's default backend): ``{"xla_cpu_prefer_vector_width": 512}`` on a
    CPU with AVX-512, ``{}`` elsewhere or when the user chose (see the module's docstring).

    Raises:
      ValueError: ``MLWORK_CPU_VECTOR_WIDTH`` is not 128, 256 or 512.
    """
    if (backend or jax.default_backend()) != "cpu" or _FLAG in os.environ.get("XLA_FLAGS", ""):
        return {}
    chosen = os.environ.get("MLWORK_CPU_VECTOR_WIDTH", "").strip()
    if chosen:
        if chosen not in ("128", "256", "512"):
            raise ValueError(f"MLWORK_CPU_VECTOR_WIDTH must be 128, 256 or 512, got {chosen!r}")
        return {_FLAG: int(chosen)}
    return {_FLAG: 512} if _has_avx512() else {}


def _parse_size(text: str) -> int:
    text = text.strip().upper()
    for suffix, scale in (("K", 2**10), ("M", 2**20), ("G", 2**30)):
        if text.endswith(suffix):
            return int(text[:-1]) * scale
    return int(text)


@functools.cache
def last_level_cache_bytes() -> int:
    """The largest CPU cache's size (Linux sysfs), or ``DEFAULT_CACHE_BYTES`` when unknown."""
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            sizes.append(_parse_size((index / "size").read_text()))
        except (OSError, ValueError):
            continue
    return max(sizes, default=DEFAULT_CACHE_BYTES)


def member_block(bytes_per_member: int, members: int, backend: str | None = None,
                 cache_bytes: int | None = None) -> int:
    """How many population members one vmapped block trains at once.

    On CPU: as many as fit in half the last-level cache (``cache_bytes``, default
    :func:`last_level_cache_bytes`) at ``bytes_per_member`` each (parameters, optimizer state
    and gradients), at least 1 and at most ``members``. On other backends: ``members``.
    """
    if isinstance(members, bool) or int(members) != members or members < 1:
        raise ValueError(f"members must be a positive integer, got {members!r}")
    if bytes_per_member <= 0:
        raise ValueError(f"bytes_per_member must be positive, got {bytes_per_member!r}")
    if (backend or jax.default_backend()) != "cpu":
        return int(members)
    budget = (last_level_cache_bytes() if cache_bytes is None else cache_bytes) // 2
    return int(max(1, min(members, budget // bytes_per_member)))
