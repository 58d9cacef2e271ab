"""Stateless layer functions with explicit keys (deck section 15).

These are the regularising layers the deck's MLP uses, written as pure functions so they run
inside :func:`mlwork.nn.mlp` and under ``jit``/``vmap``/``grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def check_rate(rate: float, name: str = "dropout") -> float:
    """A dropout probability must lie in ``[0, 1)``."""
    try:
        rate = float(rate)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a number in [0, 1), got {rate!r}") from e
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (the probability of dropping a unit), got {rate}")
    return rate


def dropout(x: Array, rate: float, *, key: Array | None, train: bool) -> Array:
    r"""Inverted dropout (Srivastava et al., 2014).

    .. math:: \tilde a_i = \begin{cases} 0 & \text{with probability } p \\
                          a_i / (1 - p) & \text{with probability } 1 - p \end{cases}

    so :math:`\mathbb{E}[\tilde a_i] = a_i` and evaluation (``train=False``) is the identity.
    ``key`` is required when ``train`` and ``rate > 0``.
    """
    rate = check_rate(rate)
    if not train or rate == 0.0:
        return x
    if key is None:
        raise ValueError("dropout needs a PRNG key when train=True and rate > 0 (pass key=...)")
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))
