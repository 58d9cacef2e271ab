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

from mlwork._validate import check_no_nan, concrete, fail

Array = jax.Array


def sigmoid(z: Array) -> Array:
    r"""Logistic sigmoid.

    .. math:: \sigma(z) = \frac{1}{1 + e^{-z}} \in (0, 1)

    Stable for large ``|z|``: ``sigmoid(±100)`` is ``1`` / ``≈3.7e-44``, never NaN
    (``jax.nn.sigmoid``).

    Args:
      z: pre-activations, any shape and float dtype; NaN raises when concrete.

    Returns:
      :math:`\sigma(z)`, the shape and dtype of ``z``.

    Raises:
      ValueError: NaN in ``z`` (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> nn.sigmoid(jnp.array([0.0, 100.0])).tolist()
      [0.5, 1.0]
    """
    check_no_nan(z, "z")
    return jax.nn.sigmoid(z)


def sigmoid_grad(z: Array) -> Array:
    r"""Derivative of the sigmoid: :math:`\sigma'(z) = \sigma(z)(1 - \sigma(z))`.

    Evaluated as :math:`\sigma(z)\,\sigma(-z)` (the same number, since
    :math:`1 - \sigma(z) = \sigma(-z)`), which avoids the cancellation in ``1 − σ`` for large ``z``.

    Args:
      z: pre-activations, any shape and float dtype; NaN raises when concrete.

    Returns:
      :math:`\sigma'(z) \in (0, 1/4]`, the shape and dtype of ``z``.

    Raises:
      ValueError: NaN in ``z`` (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> float(nn.sigmoid_grad(jnp.float32(0.0)))
      0.25
    """
    check_no_nan(z, "z")
    return sigmoid(z) * sigmoid(-z)


def relu(z: Array) -> Array:
    r"""Rectified linear unit.

    .. math:: \mathrm{ReLU}(z) = \max(0, z)

    Args:
      z: pre-activations, any shape and float dtype; NaN raises when concrete.

    Returns:
      :math:`\max(0, z)`, the shape and dtype of ``z``.

    Raises:
      ValueError: NaN in ``z`` (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> nn.relu(jnp.array([-2.0, 3.0])).tolist()
      [0.0, 3.0]
    """
    check_no_nan(z, "z")
    return jax.nn.relu(z)


def relu_grad(z: Array) -> Array:
    r"""Derivative of ReLU as the deck writes it: :math:`\mathbf{1}_{z > 0}` (0 at ``z = 0``,
    which is also what ``jax.grad(jax.nn.relu)`` gives).

    Args:
      z: pre-activations, any shape and float dtype; NaN raises when concrete.

    Returns:
      0 or 1, the shape and dtype of ``z``.

    Raises:
      ValueError: NaN in ``z`` (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> nn.relu_grad(jnp.array([-1.0, 0.0, 2.0])).tolist()
      [0.0, 0.0, 1.0]
    """
    check_no_nan(z, "z")
    return (z > 0).astype(jnp.result_type(z))


def tanh(z: Array) -> Array:
    r"""Hyperbolic tangent.

    .. math:: \tanh(z) = \frac{e^z - e^{-z}}{e^z + e^{-z}} \in (-1, 1)

    Args:
      z: pre-activations, any shape and float dtype; NaN raises when concrete.

    Returns:
      :math:`\tanh z`, the shape and dtype of ``z``.

    Raises:
      ValueError: NaN in ``z`` (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> nn.tanh(jnp.array([0.0, 20.0])).tolist()
      [0.0, 1.0]
    """
    check_no_nan(z, "z")
    return jnp.tanh(z)


def tanh_grad(z: Array) -> Array:
    r"""Derivative of tanh: :math:`1 - \tanh^2(z)`.

    Evaluated as :math:`4\,\sigma(2z)\,\sigma(-2z)` (equal, because
    :math:`\tanh z = 2\sigma(2z) - 1`), which keeps full relative precision where
    :math:`\tanh^2 z \approx 1`.

    Args:
      z: pre-activations, any shape and float dtype; NaN raises when concrete.

    Returns:
      :math:`1 - \tanh^2 z \in (0, 1]`, the shape and dtype of ``z``.

    Raises:
      ValueError: NaN in ``z`` (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> float(nn.tanh_grad(jnp.float32(0.0)))
      1.0
    """
    check_no_nan(z, "z")
    return 4.0 * sigmoid(2.0 * z) * sigmoid(-2.0 * z)


def identity(z: Array) -> Array:
    r"""The linear (no) activation, used for regression outputs and logits: :math:`z \mapsto z`.

    Args:
      z: pre-activations, any shape and float dtype; NaN raises when concrete.

    Returns:
      ``z`` itself.

    Raises:
      ValueError: NaN in ``z`` (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> nn.identity(jnp.array([-1.5])).tolist()
      [-1.5]
    """
    check_no_nan(z, "z")
    return z


def identity_grad(z: Array) -> Array:
    """Derivative of the identity: ones of the shape of ``z``.

    Args:
      z: pre-activations, any shape and float dtype; NaN raises when concrete.

    Returns:
      Ones, the shape and dtype of ``z``.

    Raises:
      ValueError: NaN in ``z`` (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.nn.activations import identity_grad
      >>> identity_grad(jnp.zeros(2)).tolist()
      [1.0, 1.0]
    """
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
        fail(name, "free of +inf (softmax is undefined there; use large finite logits)", "+inf")
    if np.ndim(v) and np.isneginf(v).all(axis=axis).any():
        fail(name, "a row of logits with an entry above -inf (softmax is undefined otherwise)",
             "a row that is -inf everywhere")


def softmax(z: Array, axis: int = -1) -> Array:
    r"""Softmax over ``axis``: :math:`\mathrm{softmax}(z)_k = e^{z_k} / \sum_j e^{z_j}`.

    Computed as ``exp(z − max z)`` normalised, so logits of ±1e4 give finite probabilities.

    Args:
      z: logits, any shape with the classes on ``axis``; no NaN, no +inf, and per row at least
        one entry above -inf (-inf entries get probability 0, the usual masking idiom).
      axis: the class axis.

    Returns:
      Probabilities summing to 1 over ``axis``, the shape and dtype of ``z``.

    Raises:
      ValueError: a NaN or +inf logit, or a row that is -inf everywhere (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> nn.softmax(jnp.array([0.0, 0.0, -jnp.inf])).tolist()
      [0.5, 0.5, 0.0]
    """
    _check_logits(z, "z", axis)
    return jax.nn.softmax(z, axis=axis)


def log_softmax(z: Array, axis: int = -1) -> Array:
    r"""Log-softmax, computed with log-sum-exp (stable for large logits).

    .. math:: \log \mathrm{softmax}(z)_k = z_k - \log\sum_j e^{z_j}

    Args:
      z: logits, any shape with the classes on ``axis``; no NaN, no +inf, and per row at least
        one entry above -inf (-inf entries get probability 0, the usual masking idiom).
      axis: the class axis.

    Returns:
      Log-probabilities, the shape and dtype of ``z``.

    Raises:
      ValueError: as :func:`softmax`.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> [round(v, 4) for v in nn.log_softmax(jnp.array([0.0, 0.0])).tolist()]
      [-0.6931, -0.6931]
    """
    _check_logits(z, "z", axis)
    return jax.nn.log_softmax(z, axis=axis)


def softmax_grad(z: Array) -> Array:
    r"""Jacobian of the softmax over the last axis.

    .. math:: \frac{\partial s_i}{\partial z_j} = s_i(\delta_{ij} - s_j),
              \quad J = \mathrm{diag}(s) - s s^\top

    Backprop does not build this matrix; it uses the vector-Jacobian product
    :func:`softmax_vjp`.

    Args:
      z: logits, classes on the last axis (checked as :func:`softmax`).

    Returns:
      :math:`J`, shape ``z.shape + z.shape[-1:]``.

    Raises:
      ValueError: as :func:`softmax`.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> nn.softmax_grad(jnp.zeros(2)).tolist()  # s = (1/2, 1/2)
      [[0.25, -0.25], [-0.25, 0.25]]
    """
    _check_logits(z)
    s = softmax(z)
    eye = jnp.broadcast_to(jnp.eye(z.shape[-1], dtype=s.dtype), s.shape + s.shape[-1:])
    return s[..., :, None] * eye - s[..., :, None] * s[..., None, :]


def softmax_vjp(s: Array, g: Array) -> Array:
    r"""The vector-Jacobian product :math:`J^\top g` of the softmax, from its output ``s``.

    .. math:: J^\top g = s \odot (g - \langle g, s\rangle)

    (:math:`J` is symmetric), what backprop needs without building :math:`J`.

    Args:
      s: softmax outputs, classes on the last axis.
      g: the upstream gradient, the shape of ``s``.

    Returns:
      :math:`\partial L/\partial z`, the shape of ``s``.

    Raises:
      ValueError: NaN in ``s`` or ``g`` (when concrete).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> nn.softmax_vjp(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0])).tolist()
      [0.25, -0.25]
    """
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
    """The canonical name of an activation (``None`` and ``"linear"`` are ``"identity"``).

    Args:
      name: an activation name from ``ACTIVATIONS``, ``"linear"`` or ``None``.
      argument: the argument's name in the error message.

    Returns:
      The canonical name.

    Raises:
      ValueError: an unknown name, naming ``argument`` and listing the valid names.

    Example:
      >>> from mlwork.nn.activations import check_activation
      >>> check_activation(None), check_activation("relu")
      ('identity', 'relu')
    """
    if name is None or name == "linear":
        return "identity"
    if not isinstance(name, str) or name not in ACTIVATIONS:
        fail(argument, "one of " + ", ".join(sorted(ACTIVATIONS)) + ", linear, None", repr(name))
    return name


def get_activation(name: str | None) -> Callable[[Array], Array]:
    """The activation function of a name (``None`` or ``"linear"`` is the identity).

    Args:
      name: an activation name from ``ACTIVATIONS``, ``"linear"`` or ``None``.

    Returns:
      The function ``z -> σ(z)``.

    Raises:
      ValueError: an unknown name (listing the valid ones).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> nn.get_activation("relu")(jnp.array([-1.0, 1.0])).tolist()
      [0.0, 1.0]
    """
    return ACTIVATIONS[check_activation(name)]
