"""Compiled programs around a user's function, looked up by what the function computes now.

``jax.jit`` with a function as a static argument caches the compiled program on the function
*object*: a closure whose captured values change later (``k`` in ``lambda x: jnp.exp(-k * x)``)
keeps the program traced with the old values and silently returns the old result. Here the
user's function is traced on every call instead (``jax.make_jaxpr``: one Python pass over its
operations, no compilation), and the compiled program is looked up by the *text* of that trace,
with the arrays the function closes over passed in as arguments. Two traces with the same text
compute the same thing, so a changed closure either reuses a program compiled for exactly its
computation or gets a new one; it never runs a stale one. (The trace is taken through a fresh
wrapper each time: ``jax.make_jaxpr`` itself caches traces on the function object.)

When any argument is a tracer (the caller's own ``jit``, ``vmap`` or ``grad``), or the function
closes over one (``jax.grad`` with respect to a parameter the function captures), ``body`` is
simply called with the function: the caller's transformation traces everything afresh.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax


class _Traced:
    """A traced function: its jaxpr, the pytree structure of its output, and the trace's text."""

    __slots__ = ("jaxpr", "out_tree", "text")

    def __init__(self, jaxpr: Any, out_tree: Any):
        self.jaxpr, self.out_tree, self.text = jaxpr, out_tree, str(jaxpr)

    def __call__(self, consts: Sequence[Any], *args: Any) -> Any:
        out = jax.core.eval_jaxpr(self.jaxpr, consts, *jax.tree.leaves(args))
        return jax.tree.unflatten(self.out_tree, out)


class _Program:
    """The static key of a compiled program: the body, its static options and the traces' text."""

    __slots__ = ("body", "static", "traced", "_key", "_hash")

    def __init__(self, body: Callable, static: tuple, traced: tuple[_Traced, ...]):
        self.body, self.static, self.traced = body, static, traced
        self._key = (body, static, tuple((t.text, t.out_tree) for t in traced))
        self._hash = hash(self._key)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Program) and self._key == other._key


@functools.partial(jax.jit, static_argnums=0)
def _run(program: _Program, consts: tuple, args: tuple) -> Any:
    fns = [functools.partial(t, c) for t, c in zip(program.traced, consts, strict=True)]
    return program.body(*fns, *args, **dict(program.static))


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


class Staged:
    """User functions traced once, for several compiled calls within one public call.

    ``Staged(fns)(body, args, **static)`` is ``body(*functions, *args, **static)``, compiled
    once per distinct computation (see the module docstring).

    Args:
      fns: ``(function, example_inputs)`` pairs; ``example_inputs`` is a tuple of
        ``jax.ShapeDtypeStruct`` (or arrays) on which the function is traced, as the bodies
        call it.
    """

    def __init__(self, fns: Sequence[tuple[Callable, tuple]]):
        self.functions = tuple(fn for fn, _ in fns)
        self.traced: tuple[_Traced, ...] | None = None
        traced, consts = [], []
        for fn, example in fns:
            # A fresh wrapper each call: make_jaxpr caches traces on the function object too.
            closed, out_shape = jax.make_jaxpr(lambda *xs, fn=fn: fn(*xs), return_shape=True)(*example)
            if any(_is_tracer(c) for c in closed.consts):
                return  # fn closes over a tracer of the caller's transformation: call it directly
            traced.append(_Traced(closed.jaxpr, jax.tree.structure(out_shape)))
            consts.append(tuple(closed.consts))
        self.traced, self.consts = tuple(traced), tuple(consts)

    @property
    def direct(self) -> bool:
        """Whether a function closes over a tracer, so that bodies are called with it directly."""
        return self.traced is None

    def __call__(self, body: Callable, args: tuple, **static: Any) -> Any:
        """``body(*functions, *args, **static)``.

        Args:
          body: a module-level function (its identity is part of the cache key) taking the
            user's functions first, then ``args`` (arrays), then the hashable options ``static``.
          args: the array arguments of ``body``.
          **static: hashable options of ``body`` (panel counts, rule names).
        """
        if self.traced is None or any(_is_tracer(x) for x in jax.tree.leaves(args)):
            return body(*self.functions, *args, **static)
        program = _Program(body, tuple(sorted(static.items())), self.traced)
        return _run(program, self.consts, tuple(args))


def call(body: Callable, fns: Sequence[tuple[Callable, tuple]], args: tuple, **static: Any) -> Any:
    """``Staged(fns)(body, args, **static)``: one compiled call (tracing is skipped when an
    argument is already a tracer)."""
    if any(_is_tracer(x) for x in jax.tree.leaves(args)):
        return body(*(fn for fn, _ in fns), *args, **static)
    return Staged(fns)(body, args, **static)
