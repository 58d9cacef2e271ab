"""Stateless layer functions with explicit keys (deck section 15).

These are the regularising layers the deck's MLP uses, written as pure functions so they run
inside :func:`mlwork.nn.mlp` and under ``jit``/``vmap``/``grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlwork._validate import check_finite, check_no_nan

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
    check_no_nan(x, "x")
    if not train or rate == 0.0:
        return x
    if key is None:
        raise ValueError("dropout needs a PRNG key when train=True and rate > 0 (pass key=...)")
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def batch_norm_init(n_features: int) -> tuple[dict[str, Array], dict[str, Array]]:
    """Parameters ``{"gamma": 1, "beta": 0}`` and state ``{"mean": 0, "var": 1}`` for
    :func:`batch_norm` over ``n_features`` features."""
    if isinstance(n_features, bool) or int(n_features) != n_features or n_features <= 0:
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}")
    ones, zeros = jnp.ones((n_features,), jnp.float32), jnp.zeros((n_features,), jnp.float32)
    return {"gamma": ones, "beta": zeros}, {"mean": zeros, "var": ones}


def batch_norm(x: Array, params: dict[str, Array], state: dict[str, Array], *, train: bool,
               momentum: float = 0.9, eps: float = 1e-5) -> tuple[Array, dict[str, Array]]:
    r"""Batch normalisation (Ioffe & Szegedy, 2015) over every axis but the last (features).

    In training, with the batch statistics :math:`\mu_B, \sigma_B^2`:

    .. math:: \hat x = \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}, \qquad y = \gamma \hat x + \beta,

    and the running statistics move as :math:`\mu \leftarrow m\,\mu + (1 - m)\,\mu_B` (likewise
    :math:`\sigma^2`, with the biased batch variance, as Flax does). At evaluation
    (``train=False``) the running statistics replace the batch ones and the state is unchanged.
    Returns ``(y, new_state)``.
    """
    check_finite(x, "x")
    if x.ndim < 2:
        raise ValueError(f"batch_norm needs a batch axis: x has shape {x.shape}, "
                         "expected (batch, ..., features)")
    n = x.shape[-1]
    if params["gamma"].shape != (n,) or state["mean"].shape != (n,):
        raise ValueError(f"batch_norm parameters are for {params['gamma'].shape[0]} features; "
                         f"x has {n} (its last axis)")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    axes = tuple(range(x.ndim - 1))
    if train and x.size == 0:
        raise ValueError(f"batch_norm in training needs at least one example; x has shape {x.shape}")
    if train:
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - jnp.broadcast_to(mean, x.shape)), axis=axes)
        new_state = {"mean": momentum * state["mean"] + (1.0 - momentum) * mean,
                     "var": momentum * state["var"] + (1.0 - momentum) * var}
    else:
        mean, var = state["mean"], state["var"]
        new_state = state
    x_hat = (x - jnp.broadcast_to(mean, x.shape)) * jnp.broadcast_to(jax.lax.rsqrt(var + eps), x.shape)
    y = x_hat * jnp.broadcast_to(params["gamma"], x.shape) + jnp.broadcast_to(params["beta"], x.shape)
    return y, new_state
