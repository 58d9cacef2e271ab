"""The cost of never serving a stale closure: mlwork.foundations' functions that take a function,
against the identity-keyed jit cache they replaced, in one process.

    uv run python -m bench.calculus [--repeats 30] [--no-record]

Until issue 25, ``simpson``/``trapezoid``/``riemann_sum``/``antiderivative``/``inverse`` (and
``integrate``, which used ``simpson`` on a mapped range) kept the user's function as a static
``jax.jit`` argument: one compiled program per function *object*, so a closure whose captured
values changed was silently ignored. The baseline here is that scheme, reproduced
(``_old_*``: the same bodies under ``jax.jit`` with the function static). The new functions
trace the function at every call and look the compiled program up by the trace's text
(``mlwork.foundations._staging``).

The integrand is :math:`e^{-k x^2}` (``inverse`` solves :math:`f(x) = 1/2` on [0, 2]). Three
ways of calling, each timed as the median of ``--repeats`` calls after a warm-up:

* ``same``: the same closure again and again (the old scheme's best case: one dispatch);
* ``array k``: ``lambda x: exp(-k x²)`` rebuilt for each of ``--repeats`` values of ``k``, an
  array (the old scheme compiled every new lambda; the new one reuses the program, ``k`` being
  an argument);
* ``float k``: the same with a Python float ``k`` (a literal in the trace: both compile each
  new value; the old one also for an unchanged value in a new lambda).

``integrate`` is also a different algorithm now (adaptive Gauss-Kronrod with an error
estimate over ~10^5 points on an infinite range, against 513 Simpson points that could miss the
mass entirely), so its row is the price of the answer, not only of the cache. Times in ms;
``ratio`` is new / old. Machines here are shared: compare within one run.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import time
from unittest import mock

import jax
import jax.numpy as jnp

from bench.common import append_results, print_table
from mlwork import foundations as fd
from mlwork.foundations import _staging
from mlwork.foundations.quadrature import _composite


@functools.partial(jax.jit, static_argnums=(0, 1, 3))
def _by_identity(body, functions, args, static):
    return body(*functions, *args, **dict(static))


def _identity_cached_call(body, fns, args, **static):
    """The replaced scheme: the functions themselves are the static cache key (by identity)."""
    return _by_identity(body, tuple(fn for fn, _ in fns), tuple(args), tuple(sorted(static.items())))


def _old(public):
    """``public`` with its compiled programs cached by the function's identity, as before."""
    def call(f):
        with mock.patch.object(_staging, "call", _identity_cached_call):
            return public(f)

    return call


@functools.partial(jax.jit, static_argnames=("f", "n"))
def _old_simpson_01(f, n):
    return _composite(f, jnp.float32(-1.0), jnp.float32(1.0), n=n, rule="simpson")


def _old_integrate_line(f, n=512):
    """The old integral over ℝ: Simpson's rule (n = 512) on t in (-1, 1) for x = t / (1 - t²),
    with the mapped integrand a new function at every call (so compiled at every call)."""
    def g(t):
        at_infinity = jnp.abs(t) >= 1.0
        safe = jnp.where(at_infinity, 0.0, t)
        jacobian = (1 + safe * safe) / jnp.square(1 - safe * safe)
        return jnp.where(at_infinity, 0.0, f(safe / (1 - safe * safe)) * jacobian)

    return _old_simpson_01(g, n)


def _new_and_old(public):
    return public, _old(public)


CASES = {
    "simpson (n=512)": _new_and_old(lambda f: fd.simpson(f, 0.0, 1.0, 512)),
    "trapezoid (n=512)": _new_and_old(lambda f: fd.trapezoid(f, 0.0, 1.0, 512)),
    "antiderivative(1.0)": _new_and_old(lambda f: fd.antiderivative(f, 0.0)(1.0)),
    "inverse (bisection)": _new_and_old(lambda f: fd.inverse(f, 0.5, (0.0, 2.0))),
    "integrate over R": (lambda f: fd.integrate(f, -math.inf, math.inf), _old_integrate_line),
}


def _median_ms(calls) -> float:
    times = []
    for call in calls:
        t = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def _gaussian(k):
    """exp(-k x²), a new function object each call (k an array or a Python float)."""
    return lambda x: jnp.exp(-k * x * x)


def run(repeats: int) -> list[dict]:
    rows = []
    ks = [1.0 + i / repeats for i in range(repeats)]
    same = _gaussian(1.5)
    for name, (new, old) in CASES.items():
        row = {"function": name}
        for label, fn in (("new", new), ("old", old)):
            jax.block_until_ready(fn(same))  # warm-up: compile once
            row[f"same {label}"] = _median_ms([functools.partial(fn, same)] * repeats)
            row[f"array k {label}"] = _median_ms(
                [lambda k=k, fn=fn: fn(_gaussian(jnp.float32(k))) for k in ks])
            row[f"float k {label}"] = _median_ms([lambda k=k, fn=fn: fn(_gaussian(k + 0.5)) for k in ks])
        for way in ("same", "array k", "float k"):
            row[f"{way} ratio"] = row[f"{way} new"] / row[f"{way} old"]
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="calls per median (default 30)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")
    rows = run(args.repeats)
    columns = ["function"] + [f"{w} {s}" for w in ("same", "array k", "float k") for s in ("old", "new", "ratio")]
    print_table(rows, columns)
    if not args.no_record:
        append_results("calculus", rows, notes=f"median of {args.repeats} calls per cell, ms; ratio = new / old")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
