r"""Weight penalties and their Optax forms (deck section 15).

L2, two ways:

* coupled, as a loss penalty :func:`l2_penalty` :math:`\frac{\lambda}{2}\sum_l\|W^{[l]}\|_F^2`,
  whose gradient adds :math:`\lambda W`;
* decoupled, in the optimizer chain, :func:`weight_decay` (``optax.add_decayed_weights``).

For plain SGD both give the deck's update :math:`W \leftarrow W(1 - \eta\lambda) - \eta\nabla_W J`.
For adaptive optimizers they differ: the penalty's gradient is rescaled by Adam, the decoupled
decay is not (that is AdamW; Loshchilov & Hutter, 2019).

L1, two ways:

* a loss penalty :func:`l1_penalty` :math:`\lambda\sum_l\|W^{[l]}\|_1` (subgradient
  :math:`\lambda\,\mathrm{sign}(W)`), which makes weights small but almost never exactly zero;
* a proximal step :func:`l1_proximal`, soft-thresholding after the gradient step,
  :math:`W \leftarrow \mathrm{sign}(W')\max(|W'| - \eta\lambda, 0)` with :math:`W' = W - \eta\nabla J`
  (ISTA; Beck & Teboulle, 2009), which sets weights to exactly zero — the sparsity the deck
  promises. Optax has no such transformation, so it is written here as one.

Masks follow Optax: ``mask=None`` (the default) means every leaf, so
``optax.chain(optax.sgd(0.1), l1_proximal(0.5, 0.1))`` on a linear model's 1-D ``w`` (the
deck's Lasso) shrinks ``w``. ``mask="weights"`` selects weight matrices/kernels only, never
biases or normalisation scales (:func:`decay_mask`); :func:`mlwork.optim.optimizer` — what the
trainer builds — passes that mask explicitly (its ``mask=`` default is ``"weights"``). Any
pytree of booleans (or a prefix of ``params``) or callable ``params -> pytree of booleans`` also
works. A mask that selects no leaf of a non-empty ``params`` is a ``ValueError`` naming
``mask`` (at ``init`` for the transformations, at the call for the penalties), never a silent
no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlwork._validate import check_finite, check_real, concrete, fail

Array = jax.Array

_TINY = float(np.finfo(np.float32).tiny)
_WEIGHT_NAMES = frozenset({"W", "w", "kernel", "embedding"})
_NON_WEIGHT_NAMES = frozenset({"b", "bias", "scale", "gamma", "beta", "mean", "var"})


def _leaf_name(path) -> str | None:
    for entry in reversed(path):
        if isinstance(entry, jax.tree_util.DictKey):
            return str(entry.key)
        if isinstance(entry, jax.tree_util.GetAttrKey):
            return entry.name
    return None


def decay_mask(params: Any) -> Any:
    """The ``mask="weights"`` of the regularizers: ``True`` for weight matrices and kernels.

    A leaf named ``W``/``w``/``kernel``/``embedding`` is a weight; one named ``b``/``bias``/
    ``scale``/``gamma``/``beta``/``mean``/``var`` is not; a leaf with another name counts as a
    weight when it has two or more axes (a matrix or a convolution kernel).

    Args:
      params: a pytree of arrays (dict keys or attribute names give the leaf names).

    Returns:
      A pytree of Python booleans with the structure of ``params``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork import nn, optim
      >>> params = nn.mlp([4, 3, 2]).init(jax.random.key(0))["params"]
      >>> optim.decay_mask(params)
      [{'W': True, 'b': False}, {'W': True, 'b': False}]
    """

    def is_weight(path, leaf) -> bool:
        name = _leaf_name(path)
        if name in _WEIGHT_NAMES:
            return True
        if name in _NON_WEIGHT_NAMES:
            return False
        return jnp.ndim(leaf) >= 2

    return jax.tree_util.tree_map_with_path(is_weight, params)


MaskArg = Any  # "weights" | None | pytree of bools | Callable[[params], pytree of bools]


def resolve_mask(mask: MaskArg) -> Any:
    """``"weights"`` -> :func:`decay_mask`; ``None``/``"all"`` -> ``None`` (every leaf); else as is."""
    if isinstance(mask, str):
        if mask == "weights":
            return decay_mask
        if mask == "all":
            return None
        fail("mask", "'weights', 'all', None, a pytree of booleans or a callable", repr(mask))
    return mask


def _mask_tree(params: Any, mask: MaskArg) -> Any:
    """The mask as one boolean per leaf of finite ``params``; raises ``ValueError`` otherwise."""
    check_finite(params, "params")
    return _selected(params, mask)


def _selected(params: Any, mask: MaskArg) -> Any:
    """The mask as one boolean per leaf of ``params`` (a prefix mask is broadcast); raises
    ``ValueError`` if it selects no leaf of a non-empty ``params``."""
    resolved = resolve_mask(mask)
    if resolved is None:
        return jax.tree.map(lambda _: True, params)
    tree = resolved(params) if callable(resolved) else resolved
    full = jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), tree, params)
    selected = jax.tree.leaves(full)
    if selected and not any(selected):
        what = "'weights' (leaves named W/w/kernel/embedding or with 2+ axes)" if isinstance(mask, str) else repr(mask)
        fail("mask", "a mask that selects at least one leaf of params (mask=None selects every leaf)",
             f"mask={what}, which selects none, so the regularizer would do nothing")
    return full


def _strength(value, name: str = "strength") -> float:
    return check_real(value, name, low=0.0)


def l2_penalty(params: Any, strength: float, mask: MaskArg = None) -> Array:
    r"""The coupled L2 penalty :math:`\frac{\lambda}{2}\sum \|W\|_F^2`, to add to the loss.

    Its gradient adds :math:`\lambda W`, so plain SGD gives the deck's update
    :math:`W \leftarrow W(1 - \eta\lambda) - \eta\nabla_W J` (section 15).

    Args:
      params: a pytree of float arrays.
      strength: :math:`\lambda \ge 0`.
      mask: ``None`` (every leaf, as Optax), ``"weights"`` (:func:`decay_mask`), a pytree of
        booleans (or a prefix of ``params``) or a callable ``params -> pytree of booleans``.

    Returns:
      A float32 scalar.

    Raises:
      ValueError: for a negative or non-finite ``strength``, NaN/inf in ``params``, or a mask
        that selects no leaf.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork import optim
      >>> params = {"W": jnp.array([[1.0, 2.0]]), "b": jnp.array([3.0])}
      >>> round(float(optim.l2_penalty(params, 0.1, mask="weights")), 4)   # 0.05 * (1 + 4)
      0.25
      >>> [round(v, 4) for v in jax.grad(optim.l2_penalty)(params, 0.1)["W"][0].tolist()]   # λW
      [0.1, 0.2]
    """
    strength = _strength(strength)
    if strength < _TINY:  # 0 (subnormals flush to 0), also when Σ‖W‖² overflows: 0 · inf would be NaN
        _mask_tree(params, mask)
        return jnp.zeros((), jnp.float32)
    leaves = [jnp.sum(jnp.square(p)) for p, m in zip(jax.tree.leaves(params),
                                                      jax.tree.leaves(_mask_tree(params, mask)),
                                                      strict=True) if m]
    total = sum(leaves, jnp.zeros((), jnp.float32))
    return strength * (0.5 * total)  # not (0.5·λ)·Σ: half the smallest normal λ flushes to 0, and 0·inf is NaN


def l1_penalty(params: Any, strength: float, mask: MaskArg = None) -> Array:
    r"""The L1 penalty :math:`\lambda\sum |W|`, to add to the loss.

    Its subgradient :math:`\lambda\,\mathrm{sign}(W)` shrinks weights towards zero but
    almost never makes them exactly zero; :func:`l1_proximal` does.

    Args:
      params: a pytree of float arrays.
      strength: :math:`\lambda \ge 0`.
      mask: as in :func:`l2_penalty` (default ``None``: every leaf).

    Returns:
      A float32 scalar.

    Raises:
      ValueError: as :func:`l2_penalty`.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import optim
      >>> round(float(optim.l1_penalty({"w": jnp.array([0.5, -1.5])}, 0.1)), 4)
      0.2
    """
    strength = _strength(strength)
    if strength < _TINY:
        _mask_tree(params, mask)
        return jnp.zeros((), jnp.float32)
    leaves = [jnp.sum(jnp.abs(p)) for p, m in zip(jax.tree.leaves(params),
                                                   jax.tree.leaves(_mask_tree(params, mask)),
                                                   strict=True) if m]
    return strength * sum(leaves, jnp.zeros((), jnp.float32))


def weight_decay(strength: float, mask: MaskArg = None) -> optax.GradientTransformation:
    r"""Decoupled weight decay as an Optax transformation (``optax.add_decayed_weights``).

    Adds :math:`\lambda W` to the update before the learning-rate scaling. With SGD this is the
    L2 penalty's update; with Adam it is AdamW (Loshchilov & Hutter, 2019, "Decoupled Weight
    Decay Regularization"): the decay is not rescaled by the adaptive denominator.

    Args:
      strength: :math:`\lambda \ge 0`.
      mask: as in :func:`l2_penalty` (default ``None``: every leaf).

    Returns:
      An ``optax.GradientTransformation`` whose ``update`` needs ``params``.

    Raises:
      ValueError: for a negative or non-finite ``strength``; at ``init``, for a mask that
        selects no leaf.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from mlwork import optim
      >>> tx = optax.chain(optim.weight_decay(0.1), optax.sgd(0.5))
      >>> w = jnp.array([1.0, -2.0])
      >>> updates, _ = tx.update(jnp.zeros(2), tx.init(w), w)          # −η λ w
      >>> [round(v, 4) for v in updates.tolist()]
      [-0.05, 0.1]
    """
    inner = optax.add_decayed_weights(_strength(strength), mask=resolve_mask(mask))

    def init_fn(params):
        _selected(params, mask)
        return inner.init(params)

    return optax.GradientTransformation(init_fn, inner.update)


class L1ProximalState(NamedTuple):
    """The state of :func:`l1_proximal`: ``count``, the int32 step count a scheduled learning
    rate is evaluated at."""

    count: Array


def l1_proximal(strength: float, learning_rate: float | Callable[[Array], Array],
                mask: MaskArg = None) -> optax.GradientTransformation:
    r"""Proximal L1 step (soft-thresholding), to go *last* in a chain whose updates are already
    scaled by the learning rate.

    Given the incoming update :math:`u = -\eta\nabla J` and parameters :math:`\theta`, the
    gradient step lands at :math:`\theta' = \theta + u`; the proximal operator of
    :math:`\eta\lambda\|\cdot\|_1` then gives

    .. math:: \theta_{new} = \mathrm{sign}(\theta')\,\max(|\theta'| - \eta_t\lambda,\ 0),

    and the transformation returns :math:`\theta_{new} - \theta`. Coordinates whose magnitude
    falls below :math:`\eta_t\lambda` become exactly zero (ISTA; Beck & Teboulle, 2009, "A fast
    iterative shrinkage-thresholding algorithm for linear inverse problems").

    Args:
      strength: :math:`\lambda \ge 0`.
      learning_rate: the rate the chain scales by, :math:`\eta_t` (a float :math:`\ge 0` or a
        schedule of the step count).
      mask: ``None`` (every leaf, as Optax), ``"weights"``, a pytree of booleans or a callable.

    Returns:
      An ``optax.GradientTransformation`` with state :class:`L1ProximalState`; its ``update``
      needs ``params``.

    Raises:
      ValueError: for a negative or non-finite argument; at ``init``, for a mask that selects no
        leaf; at ``update`` without ``params``.

    Example:
      The deck's Lasso: a 1-D weight vector is shrunk by :math:`\eta\lambda = 0.05`, and a weight
      smaller than that becomes exactly zero.

      >>> import jax.numpy as jnp, optax
      >>> from mlwork import optim
      >>> tx = optax.chain(optax.sgd(0.1), optim.l1_proximal(0.5, 0.1))
      >>> w = jnp.array([0.5, 0.01, -0.3])
      >>> u, _ = tx.update(jnp.zeros(3), tx.init(w), w)
      >>> [round(v, 4) for v in optax.apply_updates(w, u).tolist()]
      [0.45, 0.0, -0.25]
    """
    strength = _strength(strength)
    if not callable(learning_rate) and concrete(learning_rate) is not None:
        learning_rate = _strength(learning_rate, "learning_rate")
    resolve_mask(mask)  # an unknown name raises here

    def init_fn(params):
        _selected(params, mask)
        return L1ProximalState(count=jnp.zeros((), jnp.int32))

    def update_fn(updates, state, params=None):
        if params is None:
            fail("params", "the parameters: call update(updates, state, params)", None)
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        threshold = jnp.asarray(lr, jnp.float32) * strength

        def prox(u, p):
            moved = p + u
            shrunk = jnp.sign(moved) * jnp.maximum(jnp.abs(moved) - threshold.astype(moved.dtype), 0)
            return shrunk - p

        masked = _mask_tree(params, mask)
        new_updates = jax.tree.map(lambda u, p, m: prox(u, p) if m else u, updates, params, masked)
        return new_updates, L1ProximalState(count=optax.safe_int32_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)
