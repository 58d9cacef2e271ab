"""JAX's persistent compilation cache, so a second run does not pay compilation again."""

from __future__ import annotations

import os
from pathlib import Path

import jax


def default_cache_dir() -> Path:
    base = os.environ.get("MLWORK_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlwork" / "jax-compilation-cache"


def enable_compilation_cache(path: str | Path | None = None) -> Path:
    """Turn on JAX's persistent compilation cache, so a second run loads its programs instead of compiling them.

    Every program is cached however quickly it compiled (the minimum compile time and entry size
    are set to 0). The setting is global to the process.

    Args:
      path: the cache folder, created if missing; default
        ``<cache>/mlwork/jax-compilation-cache``, ``<cache>`` being ``$MLWORK_CACHE_DIR``,
        ``$XDG_CACHE_HOME`` or ``~/.cache``.

    Returns:
      The folder used.

    Raises:
      OSError: the folder cannot be created.

    Example (it changes the process's JAX configuration, so it is not run here):

    .. code-block:: python

        from mlwork.train import enable_compilation_cache

        enable_compilation_cache("/tmp/jax-cache")  # PosixPath('/tmp/jax-cache')
    """
    path = Path(path) if path is not None else default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
