r"""Hand-written backpropagation for :func:`mlwork.nn.mlp` (deck section 13).

This is the deck's delta recurrence, written out so it can be checked against ``jax.grad``
(which is what the rest of mlwork uses). With one example per row of a batch:

.. math::

    \delta^{[L]} &= \nabla_{a^{[L]}} J \odot \sigma_L'(z^{[L]}) \\
    \frac{\partial J}{\partial W^{[l]}} &= (\delta^{[l]})^\top a^{[l-1]}, \qquad
    \frac{\partial J}{\partial b^{[l]}} = \textstyle\sum_{\text{batch}} \delta^{[l]} \\
    \delta^{[l-1]} &= \big(\delta^{[l]} W^{[l]}\big) \odot \sigma_{l-1}'(z^{[l-1]})

(the row-layout form of :math:`\delta^{[l-1]} = (W^{[l]})^\top \delta^{[l]} \odot \sigma'(z^{[l-1]})`).
For a softmax output, :math:`\odot\sigma'` becomes the Jacobian-vector product
:math:`s \odot (g - \langle g, s\rangle)`; for losses on logits
(``softmax_cross_entropy``, ``binary_cross_entropy_with_logits``) the recurrence starts from
:math:`\delta^{[L]} = (\mathrm{softmax}(z) - y)/N` resp. :math:`(\sigma(z) - y)/N`.

The cost :math:`J` is the batch mean used by :mod:`mlwork.nn.losses`. Dropout is not part of
this (deterministic) forward pass.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlwork._validate import check_choice, check_finite, check_int_labels, fail
from mlwork.nn.activations import (
    DERIVATIVES,
    check_activation,
    get_activation,
    sigmoid,
    softmax,
    softmax_vjp,
)
from mlwork.nn.losses import EPS
from mlwork.nn.models import _flatten_features, dense

Array = jax.Array

#: Losses the hand-written backward pass knows.
BACKPROP_LOSSES = (
    "mse",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "softmax_cross_entropy",
    "binary_cross_entropy_with_logits",
)
_LOGIT_LOSSES = ("softmax_cross_entropy", "binary_cross_entropy_with_logits")


def forward_cache(params, x: Array, activation: str = "relu",
                  output_activation: str | None = None) -> tuple[list[Array], list[Array]]:
    r"""The forward pass of an MLP keeping every pre-activation and activation (deck section 13):

    .. math:: z^{[l]} = W^{[l]} a^{[l-1]} + b^{[l]}, \qquad a^{[l]} = \sigma_l(z^{[l]}),
              \qquad a^{[0]} = x

    what the backward pass (:func:`backprop`) reads.

    Args:
      params: ``mlwork.nn.mlp``'s params, a list of ``{"W": (n_l, n_{l-1}), "b": (n_l,)}``
        (no BatchNorm).
      x: one example or a batch, with :math:`n_0` features in its trailing axes.
      activation: the hidden activation's name.
      output_activation: the output activation's name (``None``: identity).

    Returns:
      ``(zs, activations)``: ``zs[l-1]`` is :math:`z^{[l]}`; ``activations[0] = x`` (as a
      batch) and ``activations[L] = ŷ``.

    Raises:
      ValueError: a layer without a bias (BatchNorm), an unknown activation, inputs of the
        wrong width.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> params = [{"W": jnp.array([[1.0, -1.0]]), "b": jnp.array([0.5])}]
      >>> zs, acts = nn.forward_cache(params, jnp.array([2.0, 1.0]), output_activation="sigmoid")
      >>> zs[0].tolist(), len(acts)
      ([[1.5]], 2)
    """
    hidden = get_activation(check_activation(activation))
    out = get_activation(check_activation(output_activation, "output_activation"))
    if any("b" not in layer for layer in params):
        fail("params", "a plain MLP's layers, {'W', 'b'} each (not batch_norm=True)", "a layer without 'b'")
    a = jnp.asarray(x, jnp.float32)
    a = _flatten_features(a, params[0]["W"].shape[1])
    if a.ndim == 1:
        a = a[None, :]
    zs, acts = [], [a]
    for l, layer in enumerate(params):
        z = dense(layer, a)
        a = hidden(z) if l < len(params) - 1 else out(z)
        zs.append(z)
        acts.append(a)
    return zs, acts


def _output_delta(z: Array, a: Array, y: Array, output: str, loss: str) -> Array:
    """δ^[L] = ∂J/∂z^[L] for the batch-mean cost."""
    n_rows = a.shape[0]
    if loss == "softmax_cross_entropy":
        if output != "identity":
            fail("output_activation", "None: softmax_cross_entropy takes logits", repr(output))
        if y.shape != z.shape:  # integer labels
            y = jax.nn.one_hot(y.reshape(-1), z.shape[-1], dtype=z.dtype)
        return (softmax(z) - y) / n_rows
    if loss == "binary_cross_entropy_with_logits":
        if output != "identity":
            fail("output_activation", "None: binary_cross_entropy_with_logits takes logits", repr(output))
        return (sigmoid(z) - y) / a.size
    # ∇_a J for losses on the output a = σ_L(z), then ⊙ σ'(z) (or the softmax VJP).
    if loss == "mse":
        grad_a = 2.0 * (a - y) / a.size
    elif loss == "binary_cross_entropy":
        p = jnp.clip(a, EPS, 1.0 - EPS)
        grad_a = -(y / p - (1.0 - y) / (1.0 - p)) / a.size
    elif loss == "categorical_cross_entropy":
        p = jnp.clip(a, EPS, 1.0 - EPS)
        grad_a = -(y / p) / n_rows
    else:  # pragma: no cover - guarded by the caller
        raise AssertionError(loss)
    if output == "softmax":
        return softmax_vjp(a, grad_a)
    return grad_a * DERIVATIVES[output](z)


def backprop(params, x: Array, y: Array, *, activation: str = "relu",
             output_activation: str | None = None, loss: str = "mse"):
    r"""Gradients of ``loss(mlp(x), y)`` with respect to ``params``, by the deck's delta
    recurrence (section 13; see the module docstring), equal to ``jax.grad`` to rounding:

    .. math:: \frac{\partial J}{\partial W^{[l]}} = (\delta^{[l]})^\top a^{[l-1]}, \qquad
              \delta^{[l-1]} = \big(\delta^{[l]} W^{[l]}\big) \odot \sigma'(z^{[l-1]})

    Args:
      params: ``mlwork.nn.mlp``'s params, a list of ``{"W", "b"}``; finite.
      x: one example or a batch; finite.
      y: targets of the network's output shape for that batch (integer class labels for
        ``softmax_cross_entropy`` too); finite.
      activation: the hidden activation's name (not ``"softmax"``).
      output_activation: the output activation's name (``None`` for the losses on logits).
      loss: one of ``BACKPROP_LOSSES``.

    Returns:
      The gradients in ``params``' layout (a list of ``{"W", "b"}``), as ``jax.grad`` returns.

    Raises:
      ValueError: an unknown loss or activation, a loss on logits with an output activation,
        non-finite ``params``/``x``/``y`` (when concrete), ``y`` of the wrong shape.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork import nn
      >>> params = nn.mlp([3, 4, 2]).init(jax.random.key(0))["params"]
      >>> x, y = jnp.ones((5, 3)), jnp.array([0, 1, 1, 0, 1])
      >>> ours = nn.backprop(params, x, y, loss="softmax_cross_entropy")
      >>> auto = jax.grad(lambda p: nn.softmax_cross_entropy(nn.mlp([3, 4, 2]).apply(
      ...     {"params": p, "state": {}}, x)[0], y))(params)
      >>> bool(jnp.allclose(ours[0]["W"], auto[0]["W"], atol=1e-6))
      True
    """
    check_choice(loss, "loss", BACKPROP_LOSSES)
    hidden = check_activation(activation)
    output = check_activation(output_activation, "output_activation")
    if hidden == "softmax":
        fail("activation", "elementwise ('softmax' is only meaningful as an output_activation)", repr(activation))
    # A gradient at infinite inputs, targets or weights is undefined (inf − inf, 0·inf): refuse
    # them rather than return NaN (found by fuzzing: MSE with y = +inf).
    check_finite(x, "x")
    check_finite(y, "y")
    check_finite(params, "params")
    zs, acts = forward_cache(params, x, hidden, output)
    y = jnp.asarray(y)
    if not jnp.issubdtype(y.dtype, jnp.integer):
        y = y.astype(jnp.float32)
    if y.shape != acts[-1].shape:
        if loss == "softmax_cross_entropy" and y.size == acts[-1].shape[0]:
            check_int_labels(y, acts[-1].shape[-1], "y")  # integer class labels
        elif y.size == acts[-1].size:
            y = y.reshape(acts[-1].shape)  # a single example given without its batch axis
        else:
            fail("y", f"of the network's output shape {acts[-1].shape}", f"shape {y.shape}")

    delta = _output_delta(zs[-1], acts[-1], y, output, loss)
    sigma_prime = DERIVATIVES[hidden]
    grads = [None] * len(params)
    for l in range(len(params) - 1, -1, -1):
        grads[l] = {"W": delta.T @ acts[l], "b": jnp.sum(delta, axis=0)}
        if l > 0:
            delta = (delta @ params[l]["W"]) * sigma_prime(zs[l - 1])
    return grads
