"""A user's function as a static ``jax.jit`` argument that can never serve a stale program.

``jax.jit`` looks compiled programs up by the hash and equality of their static arguments, and a
function's are its identity. A closure whose captured values changed since the last call, or a
notebook's ``lambda x: jnp.exp(-k * x)`` after ``k`` was rebound, is the same object: the program
traced with the old values would run again and return the old result. (The calculus functions of
:mod:`mlwork.foundations` key their programs on the trace's text instead; see
``mlwork/foundations/_staging.py``.) Inside bigger compiled programs — a boosting fit, a
loss-landscape scan, the debugging checklist's steps — a user's function is wrapped in a
:class:`ThisCall` made anew by every public call: it equals only itself, so every call traces the
function as it is now. The cost is one compilation per call that passes such a function; the
library's own functions (named in ``known``) are passed unwrapped and cached as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class ThisCall:
    """``fn`` as a static argument equal only to itself (identity hash and equality, one per call)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"ThisCall({self.fn!r})"


def this_call(fn: Callable[..., Any], known: Iterable[Callable[..., Any]] = ()) -> Callable[..., Any]:
    """``fn`` unchanged when it is one of the library's ``known`` functions (or already wrapped),
    else wrapped in a fresh :class:`ThisCall`."""
    if isinstance(fn, ThisCall) or any(fn is k for k in known):
        return fn
    return ThisCall(fn)
