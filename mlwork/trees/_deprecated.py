"""The old names of 0.1 that still work in 0.2, each with a ``DeprecationWarning``.

``entropy``, ``gini`` and ``variance`` (node impurities) collided with
:func:`mlwork.theory.entropy` (the entropy of a distribution), ``LOSSES`` with
:data:`mlwork.nn.LOSSES`; they are now ``entropy_impurity``, ``gini_impurity``,
``variance_impurity`` and ``BOOSTING_LOSSES``. The old names are removed in 0.3.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

#: Old name -> new name, for the names of 0.1 that moved.
RENAMED = {"entropy": "entropy_impurity", "gini": "gini_impurity", "variance": "variance_impurity",
           "LOSSES": "BOOSTING_LOSSES"}


def module_getattr(module: str, namespace: dict[str, Any], renamed: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that answers each old name of ``renamed`` with the new name's object
    from ``namespace`` (the module's globals) and a ``DeprecationWarning`` naming the new one."""

    def __getattr__(name: str) -> Any:
        if name in renamed:
            new = renamed[name]
            warnings.warn(f"{module}.{name} is deprecated and will be removed in 0.3; use {module}.{new}",
                          DeprecationWarning, stacklevel=2)
            return namespace[new]
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def key_keyword(fn: Callable) -> Callable:
    """Let ``fn(X, y, ..., key=key)`` also be called as 0.1's ``fn(key, X, y, ...)`` until 0.3.

    When the first positional argument is a PRNG key (a typed key array, or a raw ``uint32``
    key of shape ``(2,)``), it is moved to ``key=`` with a ``DeprecationWarning``; a key given
    both ways is refused. The wrapper keeps ``fn``'s name, docstring and signature.
    """
    from mlwork.trees._checks import is_prng_key  # _checks imports jax; keep this module light

    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if args and is_prng_key(args[0]):
            if "key" in kwargs:
                raise ValueError(f"key must be given once; got a PRNG key as the first argument of "
                                 f"{name} and key=... as well")
            warnings.warn(f"{name}(key, X, y, ...) is deprecated and will be removed in 0.3; "
                          f"call {name}(X, y, ..., key=key)", DeprecationWarning, stacklevel=2)
            kwargs["key"], args = args[0], args[1:]
        return fn(*args, **kwargs)

    return wrapper
