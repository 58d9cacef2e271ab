"""Activation functions and their derivatives (deck sections 9-13).

Each activation ``σ`` comes with ``σ'`` (``*_grad``), written from the deck's formulas, for
the hand-written backpropagation in :func:`mlwork.nn.backprop`. The forward functions
delegate to ``jax.nn`` where it already has the numerically stable form; the derivatives
are expressed through the forward value where the deck does so (``σ' = σ(1 − σ)``).

All functions are pure, elementwise (softmax: over the last axis), and keep the input
dtype (float32 by default). A NaN input raises ``ValueError`` when the values are concrete;
±inf is a valid input (``sigmoid(±inf)`` is 1/0, ``relu(inf)`` is inf). Under ``jit`` no check
runs and NaN propagates as IEEE arithmetic says.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import check_no_nan, concrete

Array = jax.Array


def sigmoid(z: Array) -> Array:
    r"""Logistic sigmoid.

    .. math:: \sigma(z) = \frac{1}{1 + e^{-z}} \in (0, 1)

    Stable for large ``|z|``: ``sigmoid(±100)`` is ``1`` / ``≈3.7e-44``, never NaN.
    """
    check_no_nan(z, "z")
    return jax.nn.sigmoid(z)


def sigmoid_grad(z: Array) -> Array:
    r"""Derivative of the sigmoid: :math:`\sigma'(z) = \sigma(z)(1 - \sigma(z))`.

    Evaluated as :math:`\sigma(z)\,\sigma(-z)` (the same number, since
    :math:`1 - \sigma(z) = \sigma(-z)`), which avoids the cancellation in ``1 − σ`` for large ``z``.
    """
    check_no_nan(z, "z")
    return sigmoid(z) * sigmoid(-z)


def relu(z: Array) -> Array:
    r"""Rectified linear unit: :math:`\mathrm{ReLU}(z) = \max(0, z)`."""
    check_no_nan(z, "z")
    return jax.nn.relu(z)


def relu_grad(z: Array) -> Array:
    r"""Derivative of ReLU as the deck writes it: :math:`\mathbf{1}_{z > 0}` (0 at ``z = 0``,
    which is also what ``jax.grad(jax.nn.relu)`` gives)."""
    check_no_nan(z, "z")
    return (z > 0).astype(jnp.result_type(z))


def tanh(z: Array) -> Array:
    r"""Hyperbolic tangent: :math:`\tanh(z) = \frac{e^z - e^{-z}}{e^z + e^{-z}} \in (-1, 1)`."""
    check_no_nan(z, "z")
    return jnp.tanh(z)


def tanh_grad(z: Array) -> Array:
    r"""Derivative of tanh: :math:`1 - \tanh^2(z)`.

    Evaluated as :math:`4\,\sigma(2z)\,\sigma(-2z)` (equal, because
    :math:`\tanh z = 2\sigma(2z) - 1`), which keeps full relative precision where
    :math:`\tanh^2 z \approx 1`.
    """
    check_no_nan(z, "z")
    return 4.0 * sigmoid(2.0 * z) * sigmoid(-2.0 * z)


def identity(z: Array) -> Array:
    """The linear (no) activation, used for regression outputs and logits."""
    check_no_nan(z, "z")
    return z


def identity_grad(z: Array) -> Array:
    """Derivative of the identity: ones."""
    check_no_nan(z, "z")
    return jnp.ones_like(z)


def _check_logits(z: Array, name: str = "z", axis: int = -1) -> None:
    """Softmax needs, per row, no NaN, no +inf and at least one entry above −inf (−inf entries
    are fine: they get probability 0, the usual masking idiom)."""
    check_no_nan(z, name)
    v = concrete(z)
    if v is None or v.size == 0 or v.dtype.kind not in "fc":
        return
    if np.isposinf(v).any():
        raise ValueError(f"{name} contains +inf; softmax is undefined there (use large finite logits)")
    if np.ndim(v) and np.isneginf(v).all(axis=axis).any():
        raise ValueError(f"{name} has a row that is -inf everywhere; softmax is undefined there")


def softmax(z: Array, axis: int = -1) -> Array:
    r"""Softmax over ``axis``: :math:`\mathrm{softmax}(z)_k = e^{z_k} / \sum_j e^{z_j}`.

    Computed as ``exp(z − max z)`` normalised, so logits of ±1e4 give finite probabilities.
    """
    _check_logits(z, "z", axis)
    return jax.nn.softmax(z, axis=axis)


def log_softmax(z: Array, axis: int = -1) -> Array:
    r"""Log-softmax: :math:`z_k - \log\sum_j e^{z_j}` (log-sum-exp, stable)."""
    _check_logits(z, "z", axis)
    return jax.nn.log_softmax(z, axis=axis)


def softmax_grad(z: Array) -> Array:
    r"""Jacobian of the softmax over the last axis.

    .. math:: \frac{\partial s_i}{\partial z_j} = s_i(\delta_{ij} - s_j),
              \quad J = \mathrm{diag}(s) - s s^\top

    Returns an array of shape ``z.shape + z.shape[-1:]``. Backprop does not build this
    matrix; it uses the vector-Jacobian product :func:`softmax_vjp`.
    """
    _check_logits(z)
    s = softmax(z)
    eye = jnp.broadcast_to(jnp.eye(z.shape[-1], dtype=s.dtype), s.shape + s.shape[-1:])
    return s[..., :, None] * eye - s[..., :, None] * s[..., None, :]


def softmax_vjp(s: Array, g: Array) -> Array:
    r"""``Jᵀ g`` for the softmax, given its output ``s``: :math:`s \odot (g - \langle g, s\rangle)`."""
    check_no_nan((s, g), "s, g")
    return s * (g - jnp.sum(g * s, axis=-1, keepdims=True))


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "sigmoid": sigmoid,
    "relu": relu,
    "tanh": tanh,
    "softmax": softmax,
    "identity": identity,
}

#: Elementwise derivatives σ'(z). Softmax is not elementwise: see :func:`softmax_vjp`.
DERIVATIVES: dict[str, Callable[[Array], Array]] = {
    "sigmoid": sigmoid_grad,
    "relu": relu_grad,
    "tanh": tanh_grad,
    "identity": identity_grad,
}


def check_activation(name: str | None, argument: str = "activation") -> str:
    """Return the canonical activation name (``None``/``"linear"`` -> ``"identity"``) or raise
    ``ValueError`` naming ``argument`` and listing the valid names."""
    if name is None or name == "linear":
        return "identity"
    if not isinstance(name, str) or name not in ACTIVATIONS:
        valid = ", ".join(sorted(ACTIVATIONS)) + ", linear, None"
        raise ValueError(f"{argument}={name!r} is not a known activation; expected one of: {valid}")
    return name


def get_activation(name: str | None) -> Callable[[Array], Array]:
    """Look up an activation by name (``None`` or ``"linear"`` is the identity)."""
    return ACTIVATIONS[check_activation(name)]
