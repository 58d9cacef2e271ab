"""The old names of 0.1 that still work in 0.2, each with a ``DeprecationWarning``.

``entropy``, ``gini`` and ``variance`` (node impurities) collided with
:func:`mlwork.theory.entropy` (the entropy of a distribution), ``LOSSES`` with
:data:`mlwork.nn.LOSSES`; they are now ``entropy_impurity``, ``gini_impurity``,
``variance_impurity`` and ``BOOSTING_LOSSES``. The old names are removed in 0.3.
"""

from __future__ import annotations

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
