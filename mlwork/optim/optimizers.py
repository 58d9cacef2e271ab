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

from mlwork._validate import check_choice, check_finite, check_real, fail
from mlwork.optim.regularizers import _selected, l1_proximal, resolve_mask

ScalarOrSchedule = float | Callable[[Any], Any]

#: Per-optimizer hyperparameter defaults (the deck's where it gives them):
#: ``DEFAULTS[name] -> {hyperparameter: value}``.
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
#: The optimizer names :func:`optimizer` accepts, in the deck's order.
OPTIMIZERS = tuple(DEFAULTS)
_COMMON = {"clip_norm": None, "weight_decay": 0.0, "l1": 0.0, "mask": "weights"}


_TINY = float(np.finfo(np.float32).tiny)  # the smallest normal float32; the CPU flushes subnormals to 0


def check_learning_rate(learning_rate: ScalarOrSchedule) -> ScalarOrSchedule:
    """Check a learning rate: a finite float :math:`\\ge 0`, or a schedule ``step -> float``.

    A schedule is checked at step 0 (its value there must be finite and :math:`\\ge 0`).

    Args:
      learning_rate: a number or a callable of the step count.

    Returns:
      The number as a Python ``float``, or the schedule unchanged.

    Raises:
      ValueError: for a negative, NaN or infinite rate (or such a value of the schedule at step 0).

    Example:
      >>> from mlwork import optim
      >>> optim.check_learning_rate(3e-4)
      0.0003
      >>> optim.check_learning_rate(-1.0)
      Traceback (most recent call last):
      ...
      ValueError: learning_rate must be a finite real number >= 0; got -1.0
    """
    if callable(learning_rate):
        value = float(learning_rate(0))
        if not value >= 0 or not np.isfinite(value):
            fail("learning_rate", "a schedule whose value at step 0 is finite and >= 0", value)
        return learning_rate
    return check_real(learning_rate, "learning_rate", low=0.0)


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
    r"""Build one of the deck's optimizers (section 14) as an Optax chain.

    The chain is ``clip? -> direction -> decoupled decay -> scale by -η -> L1 prox?``, wrapped in
    ``optax.inject_hyperparams`` so the learning rate, its per-state scale ``lr_scale`` and the
    decay strength are numbers in the state (:func:`current_learning_rate`,
    :func:`set_hyperparams`). The directions, with :math:`g = \nabla J` (see the module's update
    rules above): ``sgd`` :math:`g`; ``momentum`` :math:`v_t = \beta v_{t-1} + g`; ``nesterov``
    :math:`g + \beta v_t`; ``rmsprop`` :math:`g/\sqrt{s_t + \epsilon}`; ``adam``/``adamw``
    :math:`\hat m_t/(\sqrt{\hat v_t} + \epsilon)` (Kingma & Ba, 2015); ``lamb``, ``lion``: Optax's.

    Args:
      name: one of :data:`OPTIMIZERS`: ``sgd``, ``momentum``, ``nesterov``, ``rmsprop``, ``adam``,
        ``adamw``, ``lamb``, ``lion``.
      learning_rate: :math:`\eta`, a float :math:`\ge 0` or a schedule (e.g. from
        :func:`mlwork.optim.schedule`).
      **hyperparams: ``beta`` (momentum, nesterov, rmsprop; in :math:`[0, 1)`), ``eps`` (a positive
        normal float32) and ``eps_in_sqrt`` (rmsprop), ``b1``, ``b2`` (adam, adamw, lamb, lion; in
        :math:`[0, 1)`); for every optimizer ``weight_decay`` (decoupled, :math:`\ge 0`), ``l1``
        (a proximal soft-threshold step, :math:`\ge 0`), ``mask`` (which leaves those two act
        on; default ``"weights"``: weight matrices and kernels, never biases or normalisation
        scales — see :func:`decay_mask`) and ``clip_norm`` (global-norm clipping of the gradient
        first, > 0). Defaults: :data:`DEFAULTS`.

    Returns:
      An ``optax.GradientTransformationExtraArgs``. Its ``update`` refuses (``ValueError``)
      concrete NaN/inf gradients or parameters instead of spreading them.

    Raises:
      ValueError: for an unknown name, a hyperparameter the optimizer does not take, or a value
        out of range; at ``init``, when ``weight_decay`` or ``l1`` is positive and ``mask``
        selects no leaf of the parameters (e.g. the default ``"weights"`` on a bare 1-D vector:
        pass ``mask=None``).

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from mlwork import optim
      >>> tx = optim.optimizer("momentum", 0.1, beta=0.9)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> for _ in range(2):  # v1 = g, v2 = 0.9 v1 + g: steps of 0.1 g, then 0.19 g
      ...     updates, state = tx.update({"w": jnp.array([1.0, 1.0])}, state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> [round(v, 4) for v in params["w"].tolist()]
      [0.71, -2.29]
    """
    check_choice(name, "name", OPTIMIZERS)
    allowed = {**DEFAULTS[name], **_COMMON}
    unknown = set(hyperparams) - set(allowed)
    if unknown:
        fail("the hyperparameters", f"among {sorted(allowed)} for optimizer {name!r}", sorted(unknown))
    h = {**allowed, **hyperparams}
    learning_rate = check_learning_rate(learning_rate)
    for k in ("beta", "b1", "b2"):
        if k in DEFAULTS[name]:
            h[k] = check_real(h[k], k, low=0.0, high=1.0, high_open=True)
    # ε = 0 or a clipping norm of 0 (or a float32 subnormal, which the CPU flushes to 0) gives 0/0.
    if "eps" in DEFAULTS[name]:
        h["eps"] = check_real(h["eps"], "eps", low=_TINY)
    h["weight_decay"] = check_real(h["weight_decay"], "weight_decay", low=0.0)
    h["l1"] = check_real(h["l1"], "l1", low=0.0)
    if h["clip_norm"] is not None:
        h["clip_norm"] = check_real(h["clip_norm"], "clip_norm", low=_TINY)
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
    """The learning rate recorded in an :func:`optimizer` state.

    The rate of the latest update (before any update, the one the first update will use), times
    the state's ``lr_scale``. For a batch of states (a population) one rate per member.

    Args:
      opt_state: a state of an :func:`optimizer` (or any state holding an
        ``optax.inject_hyperparams`` node with a ``learning_rate``).

    Returns:
      A float32 array (a scalar, or one value per member), or ``None`` when the state records
      no learning rate.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import optim
      >>> tx = optim.optimizer("sgd", optim.step(0.1, step_size=1, gamma=0.5))
      >>> state = tx.init(jnp.zeros(2))
      >>> _, state = tx.update(jnp.ones(2), state, jnp.zeros(2))
      >>> _, state = tx.update(jnp.ones(2), state, jnp.zeros(2))
      >>> round(float(optim.current_learning_rate(state)), 4)
      0.05
    """
    node = _injected(opt_state)
    if node is None:
        return None
    return node.hyperparams["learning_rate"] * node.hyperparams.get("lr_scale", 1.0)


def set_hyperparams(opt_state: Any, **values: Any) -> Any:
    """A copy of an :func:`optimizer` state with injected hyperparameters replaced.

    Numeric hyperparameters live in the state, so a batch of states (a population under
    ``jax.vmap``) can hold one value per member: this is how ``--sweep lr=...`` trains one
    learning rate per member in one program. A ``learning_rate`` given as a schedule is
    recomputed every step; scale it with ``lr_scale``.

    Args:
      opt_state: a state of an :func:`optimizer` (batched or not).
      **values: new values by name: ``lr_scale``, ``weight_decay``, ``learning_rate`` (when it
        is a number); scalars or one value per member.

    Returns:
      The state with those values replaced (the input is not modified).

    Raises:
      ValueError: when the state has no injected hyperparameters, or for an unknown name.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork import optim
      >>> tx = optim.optimizer("sgd", 0.1)
      >>> states = jax.vmap(tx.init)(jnp.zeros((3, 2)))          # three members
      >>> states = optim.set_hyperparams(states, lr_scale=jnp.array([1.0, 2.0, 0.5]))
      >>> [round(v, 4) for v in optim.current_learning_rate(states).tolist()]
      [0.1, 0.2, 0.05]
    """
    node = _injected(opt_state)
    if node is None:
        fail("opt_state", "a state with injected hyperparameters (build it with optim.optimizer)",
             type(opt_state).__name__)
    unknown = set(values) - set(node.hyperparams)
    if unknown:
        fail("the hyperparameters", f"among {sorted(node.hyperparams)}", sorted(unknown))
    new_hparams = dict(node.hyperparams)
    for k, v in values.items():
        old = node.hyperparams[k]
        new_hparams[k] = jnp.broadcast_to(jnp.asarray(v, old.dtype), jnp.shape(v) or old.shape)
    new_node = node._replace(hyperparams=new_hparams)
    return jax.tree_util.tree_map(lambda x: new_node if x is node else x, opt_state,
                                  is_leaf=lambda x: x is node)
