r"""Number systems and complex numbers (deck sections 1-2).

Exact rationals are Python's :class:`fractions.Fraction`; this module adds what the deck
*demonstrates* about them, made computational:

* :func:`sqrt_fractions` searches for :math:`p/q` with :math:`p^2 = n q^2` (for :math:`n = 2`
  there is none: the deck's proof by contradiction, checked for every :math:`q \le N`);
* :func:`midpoint` / :func:`rationals_between`: the density of :math:`\mathbb{Q}`;
* :func:`closure_table`: which of :math:`+, -, \times, \div, \sqrt{\cdot}` keep you inside
  :math:`\mathbb{N} \subset \mathbb{Z} \subset \mathbb{Q} \subset \mathbb{R} \subset \mathbb{C}`,
  with the counterexample that shows each "no";
* complex numbers as ``jnp`` complex arrays: :func:`modulus`, :func:`argument`, :func:`euler`,
  :func:`rotate`, :func:`from_polar`. These are pure, elementwise and work under
  ``jit``/``vmap``; ``jax.grad`` applies to their real-valued outputs (modulus, argument).
  Angles are in radians.

References: deck sections 1-2; G. H. Hardy, E. M. Wright, *An Introduction to the Theory of
Numbers*, ch. 4 (irrationality of :math:`\sqrt 2`); T. Needham, *Visual Complex Analysis*, ch. 1
(complex multiplication as rotation and scaling).
"""

from __future__ import annotations

import cmath
import itertools
import math
import operator
from collections.abc import Callable, Sequence
from fractions import Fraction
from numbers import Rational
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import check_choice, check_finite, check_int, concrete, fail
from mlwork.foundations._checks import broadcast

Array = jax.Array

# ---------------------------------------------------------------------------------------------
# Irrationality of sqrt(n), made computational
# ---------------------------------------------------------------------------------------------


def sqrt_fractions(n: int = 2, max_denominator: int = 10_000) -> list[tuple[int, int]]:
    r"""All fractions :math:`p/q` in lowest terms with :math:`(p/q)^2 = n` and
    :math:`1 \le q \le N` (``max_denominator``).

    The deck's proof that :math:`\sqrt 2 \notin \mathbb{Q}` assumes :math:`\sqrt 2 = p/q` in
    lowest terms and derives :math:`p^2 = 2q^2`, hence both :math:`p` and :math:`q` even, a
    contradiction. This function searches for such a pair directly: for every :math:`q \le N` it
    takes :math:`p = \lfloor \sqrt{n q^2} \rfloor` (exact integer square root) and tests
    :math:`p^2 = n q^2` in exact integer arithmetic. For :math:`n = 2` the list is empty for every
    :math:`N`; for a perfect square :math:`n = k^2` it is ``[(k, 1)]``.

    Python integers (arbitrary precision) are used because :math:`n q^2` overflows ``int32``
    quickly; this is number theory on the host, not an array computation.

    Args:
      n: the number whose square root is sought, a positive integer (any size).
      max_denominator: :math:`N`, the largest denominator tried, a positive integer.

    Returns:
      The pairs ``(p, q)`` found, in increasing ``q``.

    Raises:
      ValueError: ``n`` or ``max_denominator`` not a positive integer.

    Example:
      >>> from mlwork import foundations as fd
      >>> fd.sqrt_fractions(2, 1000), fd.sqrt_fractions(9, 1000)
      ([], [(3, 1)])
    """
    n = check_int(n, "n", minimum=1)
    max_denominator = check_int(max_denominator, "max_denominator", minimum=1)
    found = []
    for q in range(1, max_denominator + 1):
        target = n * q * q
        p = math.isqrt(target)
        if p * p == target and math.gcd(p, q) == 1:
            found.append((p, q))
    return found


def sqrt_convergents(n: int = 2, digits: int = 6) -> list[Fraction]:
    r"""The decimal truncations :math:`1, 1.4, 1.41, 1.414, \dots` of :math:`\sqrt n` as exact
    rationals, :math:`\lfloor 10^k \sqrt n \rfloor / 10^k` for :math:`k = 0, \dots,` ``digits``.

    The deck's example that :math:`\mathbb{Q}` is not complete: each term is rational, the
    sequence converges (to :math:`\sqrt 2`), but its limit is not rational — every term squared
    misses :math:`n` (checked exactly with :class:`~fractions.Fraction`).

    Args:
      n: a positive integer (any size).
      digits: the number of decimals of the last term, a non-negative integer.

    Returns:
      ``digits + 1`` exact fractions.

    Raises:
      ValueError: ``n`` not a positive integer or ``digits`` negative.

    Example:
      >>> from mlwork import foundations as fd
      >>> [str(q) for q in fd.sqrt_convergents(2, 3)]
      ['1', '7/5', '141/100', '707/500']
    """
    n = check_int(n, "n", minimum=1)
    digits = check_int(digits, "digits", minimum=0)
    return [Fraction(math.isqrt(n * 10 ** (2 * k)), 10**k) for k in range(digits + 1)]


# ---------------------------------------------------------------------------------------------
# Density of Q
# ---------------------------------------------------------------------------------------------


def _as_fraction(x: Any, name: str) -> Fraction:
    if isinstance(x, (Rational, str)) and not isinstance(x, bool):
        try:
            return Fraction(x)
        except (ValueError, ZeroDivisionError):
            pass
    fail(name, "an exact rational (int, Fraction or a string such as '1/3')", repr(x))


def midpoint(a: Any, b: Any) -> Fraction:
    r"""The midpoint :math:`\frac{a + b}{2}` of two rationals, exactly.

    The deck's density argument: for :math:`a < b` in :math:`\mathbb{Q}`,
    :math:`a < \frac{a+b}{2} < b` and the midpoint is again rational. Inputs are ``int``,
    :class:`~fractions.Fraction` or strings such as ``"1/3"`` (floats are refused: they are
    binary approximations, not the rationals the argument is about).

    Args:
      a, b: exact rationals.

    Returns:
      :math:`(a + b)/2` as a :class:`~fractions.Fraction`.

    Raises:
      ValueError: an argument that is not an exact rational (a float, a malformed string).

    Example:
      >>> from mlwork import foundations as fd
      >>> str(fd.midpoint("1/2", "3/4"))
      '5/8'
    """
    return (_as_fraction(a, "a") + _as_fraction(b, "b")) / 2


def rationals_between(a: Any, b: Any, count: int = 5) -> list[Fraction]:
    r"""``count`` distinct rationals strictly between :math:`a < b`, by repeated midpoints
    :math:`m_1 = \frac{a+b}{2},\ m_{k+1} = \frac{a + m_k}{2}` — "between any two rationals
    there is another one", iterated as often as you like.

    Args:
      a, b: exact rationals with :math:`a < b`.
      count: how many, a positive integer.

    Returns:
      ``count`` fractions in increasing order.

    Raises:
      ValueError: ``a`` or ``b`` not exact rationals, ``a >= b``, ``count`` not positive.

    Example:
      >>> from mlwork import foundations as fd
      >>> [str(q) for q in fd.rationals_between(0, 1, 3)]
      ['1/8', '1/4', '1/2']
    """
    fa, fb = _as_fraction(a, "a"), _as_fraction(b, "b")
    if not fa < fb:
        fail("a", f"smaller than b={fb}", fa)
    count = check_int(count, "count", minimum=1)
    points, right = [], fb
    for _ in range(count):
        right = midpoint(fa, right)
        points.append(right)
    return sorted(points)


# ---------------------------------------------------------------------------------------------
# Closure tables for N ⊂ Z ⊂ Q ⊂ R ⊂ C
# ---------------------------------------------------------------------------------------------


def _exact_sqrt(x: Any) -> Any:
    """Principal square root that stays exact on rationals: a Fraction when the root is
    rational, a float when it is a positive irrational, a complex number for x < 0."""
    if isinstance(x, Fraction):
        if x < 0:
            return complex(0.0, math.sqrt(-x))
        p, q = x.numerator, x.denominator
        rp, rq = math.isqrt(p), math.isqrt(q)
        if rp * rp == p and rq * rq == q:
            return Fraction(rp, rq)
        return math.sqrt(x)  # irrational: sqrt(p/q) with p or q not a perfect square
    if isinstance(x, complex):
        return cmath.sqrt(x)
    return math.sqrt(x) if x >= 0 else complex(0.0, math.sqrt(-x))


def _in_set(value: Any, name: str) -> bool:
    if name == "C":
        return isinstance(value, (Fraction, float, complex))
    if name == "R":
        return isinstance(value, (Fraction, float))
    if not isinstance(value, Fraction):
        return False
    if name == "Q":
        return True
    if name == "Z":
        return value.denominator == 1
    return value.denominator == 1 and value >= 1  # N = {1, 2, 3, ...} as in the deck


_SMALL_INTEGERS = (0, 1, 2, 3, 4, 5, -1, -2, -3, -4)  # non-negative first: the deck's examples

#: Sample elements of each number system used by :func:`closure_table`, in search order.
NUMBER_SYSTEMS: dict[str, tuple[Any, ...]] = {
    "N": tuple(Fraction(k) for k in range(1, 7)),
    "Z": tuple(Fraction(k) for k in _SMALL_INTEGERS),
    "Q": tuple(Fraction(p, q) for q in (1, 2, 3) for p in _SMALL_INTEGERS),
    "R": (Fraction(-3), Fraction(0), Fraction(1, 2), Fraction(2), math.sqrt(2), -math.pi, math.e),
    "C": (Fraction(-1), Fraction(0), Fraction(2), math.pi, complex(3, 2), complex(-1, -4), 2j),
}

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


class Closure(NamedTuple):
    """One cell of :func:`closure_table`: whether the sample is closed under the operation
    and, if not, the counterexample found (e.g. ``"3 - 5 = -2"``)."""

    closed: bool
    counterexample: str | None


def _fmt_number(v: Any) -> str:
    if isinstance(v, complex):
        return f"({v.real:g}{v.imag:+g}i)"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def closure_table(
    systems: Sequence[str] = ("N", "Z", "Q", "R", "C"),
    operations: Sequence[str] = ("+", "-", "*", "/", "sqrt"),
) -> dict[str, dict[str, Closure]]:
    r"""Closure of :math:`\mathbb{N} \subset \mathbb{Z} \subset \mathbb{Q} \subset \mathbb{R}
    \subset \mathbb{C}` under :math:`+, -, \times, \div` (by non-zero numbers) and the principal
    square root, found by searching for counterexamples.

    For each system a handful of sample elements (:data:`NUMBER_SYSTEMS`; rationals exact as
    :class:`~fractions.Fraction`, irrationals as floats, complex as ``complex``) are combined in
    every pair, and each result is tested for membership. A "no" comes with the counterexample
    that proves it — the deck's :math:`3 - 5 \notin \mathbb{N}`, :math:`1 \div 2 \notin
    \mathbb{Z}`, :math:`\sqrt 2 \notin \mathbb{Q}` (decided exactly: :math:`\sqrt{p/q}` is
    rational iff :math:`p` and :math:`q` are perfect squares), :math:`\sqrt{-1} \notin
    \mathbb{R}`. A "yes" means no counterexample among the samples; that it holds for *all*
    elements is the theorem the deck states.

    Args:
      systems: names from ``NUMBER_SYSTEMS`` (``"N"``, ``"Z"``, ``"Q"``, ``"R"``, ``"C"``).
      operations: names from ``"+"``, ``"-"``, ``"*"``, ``"/"``, ``"sqrt"``.

    Returns:
      ``table[system][operation] -> Closure(closed, counterexample)``.

    Raises:
      ValueError: an unknown system or operation (naming ``systems[i]``/``operations[i]``).

    Example:
      >>> from mlwork import foundations as fd
      >>> fd.closure_table(["N"], ["-"])["N"]["-"]
      Closure(closed=False, counterexample='1 - 1 = 0')
    """
    for i, name in enumerate(systems):
        check_choice(name, f"systems[{i}]", tuple(NUMBER_SYSTEMS))
    for i, op in enumerate(operations):
        check_choice(op, f"operations[{i}]", (*_BINARY, "sqrt"))
    table: dict[str, dict[str, Closure]] = {}
    for s in systems:
        sample = NUMBER_SYSTEMS[s]
        row = {}
        for op in operations:
            witness = None
            if op == "sqrt":
                # non-negative numbers first, so that sqrt(2) is found before sqrt(-1)
                for a in sorted(sample, key=lambda v: isinstance(v, complex) or v < 0):
                    r = _exact_sqrt(a)
                    if not _in_set(r, s):
                        witness = f"sqrt({_fmt_number(a)}) = {_fmt_number(r)}"
                        break
            else:
                for a, b in itertools.product(sample, repeat=2):
                    if op == "/" and b == 0:
                        continue
                    r = _BINARY[op](a, b)
                    if not _in_set(r, s):
                        witness = f"{_fmt_number(a)} {op} {_fmt_number(b)} = {_fmt_number(r)}"
                        break
            row[op] = Closure(witness is None, witness)
        table[s] = row
    return table


# ---------------------------------------------------------------------------------------------
# Complex numbers
# ---------------------------------------------------------------------------------------------


def _as_complex(z: Any) -> Array:
    z = jnp.asarray(z)
    if not jnp.issubdtype(z.dtype, jnp.complexfloating):
        if not jnp.issubdtype(z.dtype, jnp.floating):
            z = z.astype(jnp.float32)
        z = jax.lax.complex(z, jnp.zeros_like(z))
    return z


def _as_real(x: Any, name: str) -> Array:
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        fail(name, "real", f"dtype {x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def _check_no_nan(z: Array) -> None:
    """NaN parts are refused when concrete (±inf parts are fine: |z| = inf, arg is a limit)."""
    values = concrete(z)
    if values is not None and values.size and np.isnan(values).any():
        fail("z", "free of NaN (±inf parts are fine)", "NaN")


def modulus(z: Any) -> Array:
    r"""Modulus (magnitude) of :math:`z = a + bi`:

    .. math:: |z| = \sqrt{a^2 + b^2}

    computed as ``hypot(a, b)`` (no overflow for large parts). Elementwise; real inputs are
    treated as :math:`a + 0i`. Differentiable away from :math:`z = 0`.

    Args:
      z: complex or real numbers, any shape.

    Returns:
      :math:`|z|`, real, the shape of ``z``.

    Raises:
      ValueError: a NaN part (when concrete).

    Example:
      >>> from mlwork import foundations as fd
      >>> float(fd.modulus(3 + 4j))
      5.0
    """
    z = _as_complex(z)
    _check_no_nan(z)
    return jnp.hypot(jnp.real(z), jnp.imag(z))


def argument(z: Any) -> Array:
    r"""Argument (angle) of :math:`z = a + bi` in radians, in :math:`(-\pi, \pi]`:

    .. math:: \arg z = \operatorname{atan2}(b, a)

    The deck writes :math:`\tan^{-1}(b/a)`; ``atan2`` is that formula with the quadrant fixed
    (:math:`\arg(-1) = \pi`, not :math:`0`). :math:`\arg 0` is returned as 0. Subnormal
    components count as 0 (XLA flushes them, and ``atan2`` of two flushed values is NaN).

    Args:
      z: complex or real numbers, any shape.

    Returns:
      :math:`\arg z` in radians, real, the shape of ``z``.

    Raises:
      ValueError: a NaN part (when concrete).

    Example:
      >>> from mlwork import foundations as fd
      >>> print(f"{float(fd.argument(-1.0)):.6f} {float(fd.argument(1j)):.6f}")  # π, π/2
      3.141593 1.570796
    """
    z = _as_complex(z)
    _check_no_nan(z)
    a, b = jnp.real(z), jnp.imag(z)
    tiny = jnp.finfo(a.dtype).tiny
    a, b = jnp.where(jnp.abs(a) < tiny, 0.0, a), jnp.where(jnp.abs(b) < tiny, 0.0, b)
    return jnp.arctan2(b, a)


def euler(theta: Any) -> Array:
    r"""Euler's formula, the point at angle :math:`\theta` (radians) on the unit circle:

    .. math:: e^{i\theta} = \cos\theta + i \sin\theta

    ``euler(jnp.pi) + 1 ≈ 0`` is Euler's identity.

    Args:
      theta: real angles in radians, any shape; float32 gives ``complex64``.

    Returns:
      :math:`e^{i\theta}`, complex, the shape of ``theta``.

    Raises:
      ValueError: complex or (when concrete) non-finite ``theta``; under ``jit`` these give NaN.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> print(f"{abs(complex(fd.euler(jnp.pi)) + 1):.0e}")  # Euler's identity, to float32
      9e-08
    """
    theta = _as_real(theta, "theta")
    check_finite(theta, "theta")
    return jax.lax.complex(jnp.cos(theta), jnp.sin(theta))


def from_polar(r: Any, theta: Any) -> Array:
    r"""The complex number with modulus :math:`r` and argument :math:`\theta`.

    .. math:: z = r e^{i\theta} = r\cos\theta + i\, r\sin\theta

    Args:
      r: real moduli; theta: real angles in radians; they broadcast together.

    Returns:
      Complex numbers of the broadcast shape.

    Raises:
      ValueError: complex or (when concrete) non-finite ``r`` or ``theta``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> z = complex(fd.from_polar(2.0, jnp.pi / 2))
      >>> print(f"{z.real:.3f} {z.imag:.3f}")
      -0.000 2.000
    """
    r = _as_real(r, "r")
    check_finite(r, "r")
    r, w = broadcast(r, euler(theta))
    return jax.lax.complex(r * jnp.real(w), r * jnp.imag(w))


def rotate(z: Any, theta: Any) -> Array:
    r"""Rotate :math:`z` by :math:`\theta` radians about the origin: :math:`z\, e^{i\theta}`.

    Complex multiplication multiplies moduli and adds arguments, so this keeps :math:`|z|` and
    adds :math:`\theta` to :math:`\arg z`; multiplying by :math:`i = e^{i\pi/2}` is the deck's
    rotation by 90° (Needham, *Visual Complex Analysis*, ch. 1).

    Args:
      z: complex or real numbers; theta: real angles in radians; they broadcast together.

    Returns:
      :math:`z e^{i\theta}`, complex, of the broadcast shape.

    Raises:
      ValueError: non-finite ``z`` or ``theta`` (when concrete), complex ``theta``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import foundations as fd
      >>> z = complex(fd.rotate(1.0, jnp.pi / 2))  # 1 turned by 90° is i
      >>> print(round(z.real, 6) + 0.0, round(z.imag, 6))
      0.0 1.0
    """
    z = _as_complex(z)
    check_finite(z, "z")
    z, w = broadcast(z, euler(theta).astype(z.dtype))
    return z * w
