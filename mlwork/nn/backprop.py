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

from mlwork._validate import check_finite, check_int_labels
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
    """Forward pass that keeps every pre-activation ``z^[l]`` and activation ``a^[l]``.

    Returns ``(zs, activations)`` with ``activations[0] = x`` (as a batch) and
    ``activations[L] = ŷ``.
    """
    hidden = get_activation(check_activation(activation))
    out = get_activation(check_activation(output_activation, "output_activation"))
    if any("b" not in layer for layer in params):
        raise ValueError("forward_cache/backprop handle plain MLPs (W, b per layer), not batch_norm=True")
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
            raise ValueError("softmax_cross_entropy takes logits: use output_activation=None")
        if y.shape != z.shape:  # integer labels
            y = jax.nn.one_hot(y.reshape(-1), z.shape[-1], dtype=z.dtype)
        return (softmax(z) - y) / n_rows
    if loss == "binary_cross_entropy_with_logits":
        if output != "identity":
            raise ValueError("binary_cross_entropy_with_logits takes logits: use output_activation=None")
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
    """Gradients of ``loss(mlp(x), y)`` w.r.t. ``params``, by the deck's delta recurrence.

    ``params`` is an :func:`mlwork.nn.mlp` params list; the result has the same layout (a list of
    ``{"W", "b"}``), i.e. the layout ``jax.grad`` returns. ``x`` is one example or a batch; ``y``
    has the shape of the network's output for that batch (integer labels for
    ``softmax_cross_entropy`` are also accepted). ``params``, ``x`` and ``y`` must be finite
    (``ValueError`` otherwise, when their values are concrete).
    """
    if loss not in BACKPROP_LOSSES:
        raise ValueError(f"loss={loss!r} is not supported; expected one of {BACKPROP_LOSSES}")
    hidden = check_activation(activation)
    output = check_activation(output_activation, "output_activation")
    if hidden == "softmax":
        raise ValueError("activation='softmax' is only meaningful as an output_activation")
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
            raise ValueError(f"y has shape {y.shape}; expected the output shape {acts[-1].shape}")

    delta = _output_delta(zs[-1], acts[-1], y, output, loss)
    sigma_prime = DERIVATIVES[hidden]
    grads = [None] * len(params)
    for l in range(len(params) - 1, -1, -1):
        grads[l] = {"W": delta.T @ acts[l], "b": jnp.sum(delta, axis=0)}
        if l > 0:
            delta = (delta @ params[l]["W"]) * sigma_prime(zs[l - 1])
    return grads
