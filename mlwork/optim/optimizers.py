r"""The deck's optimizers (section 14) as Optax chains.

Every optimizer is ``optax.chain(...)`` of Optax's own transformations, wrapped in
``optax.inject_hyperparams`` so the current learning rate is in the optimizer state
(:func:`current_learning_rate`) for the trainer to log. Update rules, with :math:`g = \nabla J`:

* ``sgd``:       :math:`\theta \leftarrow \theta - \eta g`
* ``momentum``:  :math:`v_t = \beta v_{t-1} + g,\ \theta \leftarrow \theta - \eta v_t`
  (``optax.trace``; β = 0.9)
* ``nesterov``:  :math:`v_t = \beta v_{t-1} + g,\ \theta \leftarrow \theta - \eta(g + \beta v_t)`
  (Sutskever et al., 2013, in PyTorch's form)
* ``rmsprop``:   :math:`s_t = \beta s_{t-1} + (1-\beta) g^2,\
  \theta \leftarrow \theta - \eta g/\sqrt{s_t + \epsilon}`
  (β = 0.9, ε = 1e-8, :math:`s_0 = 0`)
* ``adam``:      :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g,\ v_t = \beta_2 v_{t-1} + (1-\beta_2) g^2,\
  \hat m_t = m_t/(1-\beta_1^t),\ \hat v_t = v_t/(1-\beta_2^t),\
  \theta \leftarrow \theta - \eta\,\hat m_t/(\sqrt{\hat v_t} + \epsilon)`
  (η = 1e-3, β1 = 0.9, β2 = 0.999, ε = 1e-8)
* ``adamw``:     Adam plus decoupled weight decay :math:`-\eta\lambda\theta` (Loshchilov & Hutter, 2019)
* ``lamb``, ``lion``: Optax's LAMB (You et al., 2020) and Lion (Chen et al., 2023), as extras.

Where ε sits. The deck writes RMSprop with ε *inside* the root, :math:`\sqrt{s_t + \epsilon}`, and
Adam with ε *outside*, :math:`\sqrt{\hat v_t} + \epsilon`. Optax's defaults are exactly these
(``scale_by_rms(eps_in_sqrt=True)``, ``scale_by_adam(eps_root=0)``), so the chains below are the
deck's equations. PyTorch's ``RMSprop`` puts ε outside the root (and uses β = 0.99); pass
``eps_in_sqrt=False`` (and ``beta=0.99``) to get PyTorch's form.

Options for every optimizer: ``clip_norm`` (clip the gradient's global norm first),
``weight_decay`` (decoupled, masked to weights: see :mod:`mlwork.optim.regularizers`) and ``l1``
(a proximal soft-threshold step after the update).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlwork._validate import check_finite, check_finite_number
from mlwork.optim.regularizers import _selected, l1_proximal, resolve_mask

ScalarOrSchedule = float | Callable[[Any], Any]

#: Per-optimizer hyperparameter defaults (the deck's where it gives them).
DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {},
    "momentum": {"beta": 0.9},
    "nesterov": {"beta": 0.9},
    "rmsprop": {"beta": 0.9, "eps": 1e-8, "eps_in_sqrt": True},
    "adam": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
    "adamw": {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "weight_decay": 1e-4},
    "lamb": {"b1": 0.9, "b2": 0.999, "eps": 1e-6},
    "lion": {"b1": 0.9, "b2": 0.99},
}
OPTIMIZERS = tuple(DEFAULTS)
_COMMON = {"clip_norm": None, "weight_decay": 0.0, "l1": 0.0, "mask": "weights"}


def _check_unit_interval(value, name: str) -> float:
    v = check_finite_number(value, name)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {v}")
    return v


def _check_nonneg(value, name: str) -> float:
    v = check_finite_number(value, name)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def check_learning_rate(learning_rate: ScalarOrSchedule) -> ScalarOrSchedule:
    """A learning rate is a non-negative finite float or a schedule ``step -> float``."""
    if callable(learning_rate):
        value = float(learning_rate(0))
        if not value >= 0:
            raise ValueError(f"learning_rate schedule gives {value} at step 0; expected >= 0")
        return learning_rate
    v = check_finite_number(learning_rate, "learning_rate")
    if v < 0:
        raise ValueError(f"learning_rate must be >= 0, got {v}")
    return v


def _scale_by(name: str, h: dict[str, Any]) -> optax.GradientTransformation:
    """The optimizer's direction, before the learning-rate scaling."""
    if name == "sgd":
        return optax.identity()
    if name == "momentum":
        return optax.trace(decay=h["beta"], nesterov=False)
    if name == "nesterov":
        return optax.trace(decay=h["beta"], nesterov=True)
    if name == "rmsprop":
        return optax.scale_by_rms(decay=h["beta"], eps=h["eps"], eps_in_sqrt=h["eps_in_sqrt"])
    if name in ("adam", "adamw", "lamb"):
        return optax.scale_by_adam(b1=h["b1"], b2=h["b2"], eps=h["eps"])
    if name == "lion":
        return optax.scale_by_lion(b1=h["b1"], b2=h["b2"])
    raise AssertionError(name)  # pragma: no cover


def optimizer(name: str, learning_rate: ScalarOrSchedule = 1e-3, **hyperparams) -> optax.GradientTransformation:
    """Build one of the deck's optimizers as an Optax chain.

    Args:
      name: ``sgd``, ``momentum``, ``nesterov``, ``rmsprop``, ``adam``, ``adamw``, ``lamb``, ``lion``.
      learning_rate: a float ≥ 0 or a schedule (e.g. from :func:`mlwork.optim.schedule`).
      **hyperparams: ``beta`` (momentum, nesterov, rmsprop), ``eps``, ``eps_in_sqrt`` (rmsprop),
        ``b1``, ``b2`` (adam, adamw, lamb, lion), and for every optimizer ``weight_decay``
        (decoupled), ``l1`` (proximal), ``mask`` (which leaves those act on; default
        ``"weights"``: weight matrices/kernels, never biases or normalisation scales — the
        trainer's convention, passed explicitly to the regularizers, whose own default is Optax's
        every leaf) and ``clip_norm`` (global-norm clipping of the gradient).

    Returns:
      ``optax.inject_hyperparams`` around ``optax.chain(clip?, direction, decay?, -η, l1-prox?)``;
      the state records the learning rate of the latest step (:func:`current_learning_rate`).

    Raises:
      ValueError: for a bad argument; at ``init``, when ``weight_decay`` or ``l1`` is positive
      and ``mask`` selects no leaf of the parameters (e.g. the default ``"weights"`` on a bare
      1-D vector: pass ``mask=None``).

    Example::

        tx = optimizer("adam", schedule("cosine", init_value=1e-3, total_steps=10_000))
        opt_state = tx.init(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    """
    if name not in DEFAULTS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of: {', '.join(OPTIMIZERS)}")
    allowed = {**DEFAULTS[name], **_COMMON}
    unknown = set(hyperparams) - set(allowed)
    if unknown:
        raise ValueError(f"optimizer {name!r} does not take {sorted(unknown)}; its hyperparameters are "
                         f"{sorted(allowed)}")
    h = {**allowed, **hyperparams}
    learning_rate = check_learning_rate(learning_rate)
    for k in ("beta", "b1", "b2"):
        if k in DEFAULTS[name]:
            h[k] = _check_unit_interval(h[k], k)
    if "eps" in DEFAULTS[name]:
        h["eps"] = check_finite_number(h["eps"], "eps")
        # ε = 0 (or a float32 subnormal, which the CPU flushes to 0) turns a zero gradient into 0/0.
        if not h["eps"] >= float(np.finfo(np.float32).tiny):
            raise ValueError(f"eps must be a positive normal float32 (>= 1.2e-38), got {h['eps']}")
    h["weight_decay"] = _check_nonneg(h["weight_decay"], "weight_decay")
    h["l1"] = _check_nonneg(h["l1"], "l1")
    if h["clip_norm"] is not None:
        h["clip_norm"] = check_finite_number(h["clip_norm"], "clip_norm")
        if not h["clip_norm"] >= float(np.finfo(np.float32).tiny):  # a subnormal flushes to 0: 0/0
            raise ValueError(f"clip_norm must be > 0 (a normal float32), got {h['clip_norm']}")
    mask = resolve_mask(h["mask"])

    def build(learning_rate, lr_scale, weight_decay) -> optax.GradientTransformation:
        rate = learning_rate * lr_scale
        parts = []
        if h["clip_norm"] is not None:
            parts.append(optax.clip_by_global_norm(h["clip_norm"]))
        parts.append(_scale_by(name, h))
        # Decoupled decay is always in the chain (a no-op at 0) so that its strength, like the
        # learning-rate scale, is a number in the state: populations vary it per member.
        parts.append(optax.add_decayed_weights(weight_decay, mask=mask))
        if name == "lamb":  # LAMB: decay inside the layer-wise trust ratio
            parts.append(optax.scale_by_trust_ratio())
        parts.append(optax.scale_by_learning_rate(rate))
        if h["l1"]:
            parts.append(l1_proximal(h["l1"], rate, mask=mask))
        return optax.chain(*parts)

    tx = _standard_promotion(optax.inject_hyperparams(build)(
        learning_rate=learning_rate, lr_scale=1.0, weight_decay=h["weight_decay"]))
    if not (h["weight_decay"] or h["l1"]):
        return tx

    def init_fn(params):  # regularization was asked for: a mask selecting nothing is an error
        _selected(params, h["mask"])
        return tx.init(params)

    return tx._replace(init=init_fn)


def _standard_promotion(tx: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Run ``tx`` under JAX's standard dtype promotion, and refuse (``ValueError``) concrete
    NaN/inf gradients or parameters instead of spreading them.

    Some Optax internals mix Python floats with int32 step counts (e.g. Adam's bias correction
    ``b1 ** count``), which JAX's *strict* promotion mode rejects. Users (and our tests) may run
    in strict mode; the relaxation is confined to the optimizer's own arithmetic. The state is
    the inner state, unchanged.
    """

    def init_fn(params):
        with jax.numpy_dtype_promotion("standard"):
            return tx.init(params)

    def update_fn(updates, state, params=None, **extra_args):
        check_finite(updates, "updates (the gradients)")
        check_finite(params, "params")
        with jax.numpy_dtype_promotion("standard"):
            return tx.update(updates, state, params, **extra_args)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _injected(opt_state: Any) -> Any | None:
    for node in jax.tree_util.tree_leaves(opt_state, is_leaf=lambda x: hasattr(x, "hyperparams")):
        if hasattr(node, "hyperparams") and "learning_rate" in node.hyperparams:
            return node
    return None


def current_learning_rate(opt_state: Any) -> jax.Array | None:
    """The learning rate recorded in an :func:`optimizer` state (the one used by the latest
    update; before any update, the one the first update will use), including any per-state
    ``lr_scale``. ``None`` if the state has no injected learning rate."""
    node = _injected(opt_state)
    if node is None:
        return None
    return node.hyperparams["learning_rate"] * node.hyperparams.get("lr_scale", 1.0)


def set_hyperparams(opt_state: Any, **values: Any) -> Any:
    """A copy of an :func:`optimizer` state with injected hyperparameters replaced, e.g.
    ``set_hyperparams(state, lr_scale=0.3, weight_decay=1e-4)``. Numeric hyperparameters live in
    the state, so a batch of states (a population under ``jax.vmap``) can hold one value per
    member. (``learning_rate`` given as a schedule is recomputed every step; scale it with
    ``lr_scale``.)"""
    node = _injected(opt_state)
    if node is None:
        raise ValueError("this optimizer state has no injected hyperparameters (build it with optim.optimizer)")
    unknown = set(values) - set(node.hyperparams)
    if unknown:
        raise ValueError(f"unknown hyperparameters {sorted(unknown)}; the state has {sorted(node.hyperparams)}")
    new_hparams = dict(node.hyperparams)
    for k, v in values.items():
        old = node.hyperparams[k]
        new_hparams[k] = jnp.broadcast_to(jnp.asarray(v, old.dtype), jnp.shape(v) or old.shape)
    new_node = node._replace(hyperparams=new_hparams)
    return jax.tree_util.tree_map(lambda x: new_node if x is node else x, opt_state,
                                  is_leaf=lambda x: x is node)
