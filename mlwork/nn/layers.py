"""Stateless layer functions with explicit keys (deck section 15).

These are the regularising layers the deck's MLP uses, written as pure functions so they run
inside :func:`mlwork.nn.mlp` and under ``jit``/``vmap``/``grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlwork._validate import check_finite, check_int, check_no_nan, check_real, fail

Array = jax.Array


def check_rate(rate: float, name: str = "dropout") -> float:
    """A dropout probability, the chance of dropping a unit: a real in ``[0, 1)``.

    Args:
      rate: the value to check.
      name: the argument's name in the error message.

    Returns:
      ``rate`` as a Python float.

    Raises:
      ValueError: ``rate`` not a real number in ``[0, 1)``.

    Example:
      >>> from mlwork.nn.layers import check_rate
      >>> check_rate(0.5)
      0.5
    """
    return check_real(rate, name, low=0.0, high=1.0, high_open=True)


def dropout(x: Array, rate: float, *, key: Array | None, train: bool) -> Array:
    r"""Inverted dropout (Srivastava et al., 2014).

    .. math:: \tilde a_i = \begin{cases} 0 & \text{with probability } p \\
                          a_i / (1 - p) & \text{with probability } 1 - p \end{cases}

    so :math:`\mathbb{E}[\tilde a_i] = a_i` and evaluation (``train=False``) is the identity.

    Args:
      x: activations, any shape and float dtype.
      rate: :math:`p`, the probability of dropping a unit, in ``[0, 1)``.
      key: a PRNG key, required when ``train`` and ``rate > 0``.
      train: drop (``True``) or pass ``x`` through (``False``).

    Returns:
      The dropped-out activations, the shape and dtype of ``x``.

    Raises:
      ValueError: ``rate`` outside ``[0, 1)``, NaN in ``x`` (when concrete), no ``key`` in
        training.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork import nn
      >>> y = nn.dropout(jnp.ones(8), 0.5, key=jax.random.key(0), train=True)
      >>> sorted(set(y.tolist())) in ([0.0, 2.0], [2.0], [0.0])  # dropped, or scaled by 1/(1-p)
      True
    """
    rate = check_rate(rate)
    check_no_nan(x, "x")
    if not train or rate == 0.0:
        return x
    if key is None:
        fail("key", "a PRNG key when train=True and rate > 0", None)
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def batch_norm_init(n_features: int) -> tuple[dict[str, Array], dict[str, Array]]:
    """Parameters ``{"gamma": 1, "beta": 0}`` and state ``{"mean": 0, "var": 1}`` for
    :func:`batch_norm` over ``n_features`` features (the identity before training).

    Args:
      n_features: the size of the feature axis, a positive integer (at most ``2**31 - 1``).

    Returns:
      ``(params, state)``, float32 vectors of length ``n_features``.

    Raises:
      ValueError: ``n_features`` not an integer in ``[1, 2**31 - 1]``.

    Example:
      >>> from mlwork import nn
      >>> params, state = nn.batch_norm_init(3)
      >>> params["gamma"].tolist(), state["var"].tolist()
      ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    """
    n_features = check_int(n_features, "n_features", minimum=1, maximum=2**31 - 1)
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

    Args:
      x: ``(batch, ..., features)``, finite.
      params: ``{"gamma": (features,), "beta": (features,)}``.
      state: ``{"mean": (features,), "var": (features,)}``.
      train: use the batch statistics and update the state (``True``), or the running ones.
      momentum: :math:`m \in [0, 1)`.
      eps: :math:`\epsilon > 0`, added to the variance.

    Returns:
      ``(y, new_state)``, ``y`` the shape of ``x``.

    Raises:
      ValueError: ``x`` without a batch axis, not finite (when concrete), or empty in training;
        parameters for another number of features; ``momentum`` outside ``[0, 1)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> params, state = nn.batch_norm_init(1)
      >>> y, new = nn.batch_norm(jnp.array([[1.0], [3.0]]), params, state, train=True)
      >>> [round(v, 3) for v in y[:, 0].tolist()], round(float(new["mean"][0]), 3)  # m·0 + (1-m)·2
      ([-1.0, 1.0], 0.2)
    """
    check_finite(x, "x")
    if x.ndim < 2:
        fail("x", "of shape (batch, ..., features)", f"shape {x.shape}")
    n = x.shape[-1]
    if params["gamma"].shape != (n,) or state["mean"].shape != (n,):
        fail("params and state", f"for the {n} features of x (its last axis)",
             f"shapes {params['gamma'].shape} and {state['mean'].shape}")
    momentum = check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    axes = tuple(range(x.ndim - 1))
    if train and x.size == 0:
        fail("x", "at least one example in training", f"shape {x.shape}")
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
