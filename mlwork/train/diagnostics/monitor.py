r"""Seeing inside training: gradient, parameter and update norms, and dead ReLU units.

The deck's "Tips for Successful Training" say *monitor everything: loss, accuracy, gradients,
learning rate*. These pure functions compute what to monitor from pytrees the training step
already has (the gradients, the Optax updates, the parameters), so they run inside the compiled
epoch and come back to the host once per epoch with the other metrics. What the trainer
records (see :func:`mlwork.train.compile_run`): gradient norms on every 10th step, and once per
epoch on a fixed probe batch the parameter norms, the update/parameter ratio of the next step
and the dead ReLU units — about 1-2% of an MLP epoch (``bench/monitor_overhead.py``).

A *layer* is a top-level entry of the parameter pytree: ``layer_1, layer_2, ...`` for the
deck's MLP (a list of ``{"W", "b"}``), the module names (``Conv_0``, ``BatchNorm_0``,
``Dense_0``, ...) for a Flax model. Norms are Euclidean (Frobenius) norms over every scalar of
the layer, in the parameters' units.

References: Karpathy, "A Recipe for Training Neural Networks" (2019) and CS231n's "Babysitting
the learning process" (update/parameter ratio ≈ 1e-3); Lu et al., "Dying ReLU and
Initialization" (2019).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlwork.data.device import preprocess
from mlwork.nn.losses import softmax_cross_entropy

Array = jax.Array

#: The epoch monitor's probe: the first ``PROBE_SIZE`` training images (dead ReLU units) ...
PROBE_SIZE = 256
#: ... of which the first ``UPDATE_BATCH`` give the gradient for the update/parameter ratio.
UPDATE_BATCH = 64
#: The trainer samples the gradient norms every ``MONITOR_EVERY`` steps.
MONITOR_EVERY = 10
#: ``fold_in`` tag of the monitor's dropout stream (the training step uses 0 and 1).
MONITOR = 2


def layer_groups(tree: Any) -> dict[str, Any]:
    """The layers of a parameter-shaped pytree, in order: ``{"layer_1": tree[0], ...}`` for a
    list or tuple (the deck's 1-based ``W^[l]`` numbering), ``{key: tree[key]}`` for a mapping
    (Flax module names, in the model's order), ``{"params": tree}`` for anything else.

    Args:
      tree: parameters, gradients or updates.

    Returns:
      ``{layer name: subtree}``, in order.

    Example:
      >>> from mlwork.train.diagnostics import layer_groups
      >>> list(layer_groups([{"W": 1}, {"W": 2}])), list(layer_groups({"Conv_0": 1, "Dense_0": 2}))
      (['layer_1', 'layer_2'], ['Conv_0', 'Dense_0'])
    """
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        return {f"layer_{i + 1}": sub for i, sub in enumerate(tree)}
    if isinstance(tree, Mapping):
        return {str(k): v for k, v in tree.items()}
    return {"params": tree}


def _sum_squares(tree: Any) -> Array:
    leaves = jax.tree.leaves(tree)
    return sum((jnp.sum(jnp.square(jnp.asarray(x, jnp.float32))) for x in leaves), jnp.zeros((), jnp.float32))


def norms(tree: Any) -> tuple[Array, dict[str, Array]]:
    r"""The global and per-layer Euclidean norms of a pytree (gradients, parameters, updates):

    .. math:: \|\theta\| = \sqrt{\textstyle\sum_l \|\theta_l\|^2}, \qquad
              \|\theta_l\| = \sqrt{\textstyle\sum_{i \in l} \theta_i^2}

    Returns ``(global_norm, {layer: norm})`` (float32 scalars; one pass over the leaves).

    Args:
      tree: a pytree of arrays, grouped into layers by :func:`layer_groups`.

    Returns:
      ``(global_norm, {layer: norm})``, float32 scalars.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.train.diagnostics import norms
      >>> total, layers = norms([{"W": jnp.array([3.0, 4.0])}, {"W": jnp.array([12.0])}])
      >>> float(total), {k: float(v) for k, v in layers.items()}  # sqrt(25 + 144)
      (13.0, {'layer_1': 5.0, 'layer_2': 12.0})
    """
    squares = {name: _sum_squares(sub) for name, sub in layer_groups(tree).items()}
    total = sum(squares.values(), jnp.zeros((), jnp.float32))
    return jnp.sqrt(total), {name: jnp.sqrt(s) for name, s in squares.items()}


def update_ratios(updates: Any, params: Any, eps: float = 1e-12) -> tuple[Array, dict[str, Array]]:
    r"""How far one optimizer step moves the parameters, relative to their size:

    .. math:: r_l = \frac{\|\Delta\theta_l\|}{\|\theta_l\| + \epsilon}

    with :math:`\Delta\theta` the Optax updates (what ``apply_updates`` adds) and :math:`\theta`
    the parameters *before* the step. A common rule of thumb is :math:`r \approx 10^{-3}`; much
    larger means the learning rate is too high, much smaller that it is too low. Returns
    ``(global_ratio, {layer: ratio})``.

    Args:
      updates: :math:`\Delta\theta`, the structure of ``params``.
      params: :math:`\theta`, before the step.
      eps: :math:`\epsilon`, guards a zero norm.

    Returns:
      ``(global_ratio, {layer: ratio})``, float32 scalars.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.train.diagnostics import update_ratios
      >>> ratio, layers = update_ratios([{"W": jnp.array([0.003, 0.004])}], [{"W": jnp.array([3.0, 4.0])}])
      >>> round(float(ratio), 6), round(float(layers["layer_1"]), 6)
      (0.001, 0.001)
    """
    u_global, u_layers = norms(updates)
    p_global, p_layers = norms(params)
    return u_global / (p_global + eps), {k: u_layers[k] / (p_layers[k] + eps) for k in u_layers}


def dead_relu_fraction(activations: Mapping[str, Array]) -> tuple[Array, dict[str, Array]]:
    r"""The fraction of hidden units that output exactly zero for every example they saw.

    ``activations`` maps each hidden layer to its post-activation array ``(batch, ..., units)``
    (features on the last axis; for a convolution a unit is a channel, dead when it is zero at
    every position). For layer :math:`l` with :math:`n_l` units,

    .. math:: d_l = \frac{1}{n_l}\sum_{j=1}^{n_l} \mathbf{1}\big[a_{ij} = 0 \ \forall i\big],
              \qquad d = \frac{\sum_l n_l d_l}{\sum_l n_l}.

    A ReLU unit that is zero on a whole batch gets no gradient from it ("dead"); exact zeros
    are what a ReLU produces, so smooth activations (sigmoid, tanh) count as alive. Returns
    ``(overall_fraction, {layer: fraction})``; an empty mapping gives ``(nan, {})``.

    Args:
      activations: ``{layer: (batch, ..., units)}`` post-activation arrays.

    Returns:
      ``(overall_fraction, {layer: fraction})``, float32 scalars in ``[0, 1]``.

    Raises:
      ValueError: an array with fewer than two axes.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.train.diagnostics import dead_relu_fraction
      >>> a = jnp.array([[0.0, 1.0, 0.0, 0.0], [0.0, 2.0, 3.0, 0.0]])  # units 0 and 3 never fire
      >>> overall, layers = dead_relu_fraction({"layer_1": a})
      >>> float(overall), float(layers["layer_1"])
      (0.5, 0.5)
    """
    per_layer, dead, total = {}, jnp.zeros((), jnp.float32), 0
    for name, a in activations.items():
        a = jnp.asarray(a)
        if a.ndim < 2:
            raise ValueError(f"activations[{name!r}] has shape {a.shape}; expected (batch, ..., units)")
        units = a.shape[-1]
        is_dead = jnp.all(a.reshape(-1, units) == 0, axis=0)
        count = jnp.sum(is_dead.astype(jnp.float32))
        per_layer[name] = count / units
        dead, total = dead + count, total + units
    overall = dead / total if total else jnp.full((), jnp.nan, jnp.float32)
    return overall, per_layer


def gradient_statistics(grads: Any) -> dict[str, Array]:
    """The global and per-layer gradient norms of one step: ``grad_norm``, ``grad_norm_layers``.

    Args:
      grads: the gradient pytree.

    Returns:
      ``{"grad_norm": scalar, "grad_norm_layers": {layer: scalar}}`` (see :func:`norms`).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.train.diagnostics import gradient_statistics
      >>> float(gradient_statistics([{"W": jnp.array([3.0, 4.0])}])["grad_norm"])
      5.0
    """
    grad_norm, layers = norms(grads)
    return {"grad_norm": grad_norm, "grad_norm_layers": layers}


def sampled_gradient_statistics(grads: Any, step: Array, every: int) -> dict[str, Any]:
    """:func:`gradient_statistics` on every ``every``-th optimizer step (``step % every == 0``)
    and zeros otherwise, with ``sampled`` (1.0 or 0.0) saying which.

    A norm is one more pass over a parameter-sized pytree, about a tenth of an MLP step on a
    CPU, so the trainer samples every 10th step (a ``lax.cond`` whose only operand, the
    gradient, exists anyway). Under ``vmap`` over training states (a population) the ``cond``
    becomes a ``select`` and the norms are computed on every step.

    Args:
      grads: the gradient pytree.
      step: the optimizer step, an integer scalar (traced is fine).
      every: the sampling period in steps, >= 1.

    Returns:
      :func:`gradient_statistics`'s dict plus ``sampled``, float32 1.0 or 0.0.

    Raises:
      ValueError: ``every`` not a positive integer.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.train.diagnostics import sampled_gradient_statistics
      >>> g = [{"W": jnp.array([3.0, 4.0])}]
      >>> [(float(s["grad_norm"]), float(s["sampled"]))
      ...  for s in (sampled_gradient_statistics(g, jnp.array(t), 10) for t in (20, 21))]
      [(5.0, 1.0), (0.0, 0.0)]
    """
    if isinstance(every, bool) or int(every) != every or every < 1:
        raise ValueError(f"every must be a positive number of steps, got {every!r}")
    take = step % every == 0
    if every == 1:
        stats = gradient_statistics(grads)
    else:
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(gradient_statistics, grads))
        stats = jax.lax.cond(take, gradient_statistics, lambda _: zeros, grads)
    return {**stats, "sampled": take.astype(jnp.float32)}


def summarize_steps(stats: dict[str, Any]) -> dict[str, Any]:
    r"""Reduce a stack of :func:`sampled_gradient_statistics` (leading axis: the steps of a
    compiled call) to sums that add up across calls: ``grad_norm_sum`` and
    ``grad_norm_layers_sum`` (:math:`\sum_t w_t \|g_t\|`, :math:`w_t` = ``sampled``, all ones
    if absent), ``grad_norm_max`` (the largest sampled global norm, −inf if none: where a spike
    shows) and ``monitored_steps`` (:math:`\sum_t w_t`). :func:`monitor_row` turns the
    epoch's totals into means.

    Args:
      stats: stacked step statistics: ``grad_norm`` ``(T,)``, ``grad_norm_layers`` (each ``(T,)``),
        optionally ``sampled`` ``(T,)``.

    Returns:
      The four sums above (scalars; per layer for ``grad_norm_layers_sum``).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.train.diagnostics import summarize_steps
      >>> s = summarize_steps({"grad_norm": jnp.array([5.0, 0.0, 7.0]), "sampled": jnp.array([1.0, 0.0, 1.0]),
      ...                      "grad_norm_layers": {"layer_1": jnp.array([5.0, 0.0, 7.0])}})
      >>> float(s["grad_norm_sum"]), float(s["grad_norm_max"]), float(s["monitored_steps"])
      (12.0, 7.0, 2.0)
    """
    stats = dict(stats)
    w = stats.pop("sampled", None)
    if w is None:
        w = jnp.ones(jnp.shape(stats["grad_norm"])[:1], jnp.float32)

    def total(v: Array) -> Array:
        return jnp.sum(v * w.reshape(w.shape + (1,) * (v.ndim - 1)), axis=0)

    return {"grad_norm_sum": total(stats["grad_norm"]),
            "grad_norm_layers_sum": jax.tree.map(total, stats["grad_norm_layers"]),
            "grad_norm_max": jnp.max(jnp.where(w > 0, stats["grad_norm"], -jnp.inf), axis=0),
            "monitored_steps": jnp.sum(w, axis=0)}


def make_epoch_monitor(model: Any, *, mean: float, std: float, tx: Any = None,
                       loss_fn: Callable[[Array, Array], Array] = softmax_cross_entropy,
                       probe_size: int = PROBE_SIZE, update_batch: int = UPDATE_BATCH) -> Callable[..., dict[str, Any]]:
    """``monitor(state, step_stats, images, labels, epoch_done=True) -> dict``, the hook that
    :func:`mlwork.train.make_train_chunk` runs after a compiled call's last step. It returns

    * ``steps``: :func:`summarize_steps` of the call's sampled gradient norms (when the step
      sampled any);
    * ``epoch``, computed only when the call ends the epoch (a ``lax.cond`` on ``epoch_done``;
      zeros otherwise, with ``done`` saying which), on a fixed probe — the first
      ``probe_size`` training examples:

      - ``param_norm``, ``param_norm_layers``: the parameters at the end of the epoch;
      - with ``tx``: ``update_ratio``, ``update_ratio_layers`` (:func:`update_ratios`) of the
        step ``tx`` would take next — the gradient of ``loss_fn`` on the first ``update_batch``
        probe examples in training mode (dropout key ``fold_in(fold_in(key, MONITOR),
        epoch)``), through ``tx.update`` with the current optimizer state, then discarded;
      - when ``model.hidden`` exists: ``dead_relu_fraction``, ``dead_relu_layers``
        (:func:`dead_relu_fraction`) over the ``probe_size`` examples in evaluation mode.

    The probe costs one forward and backward pass of ``update_batch`` examples and one forward
    pass of ``probe_size`` per epoch. On the host, :func:`accumulate_monitor` adds the calls of
    an epoch up and :func:`monitor_row` makes them a row of ``metrics.jsonl``.

    Args:
      model: the model (``apply``, and optionally ``hidden``).
      mean: the pixel mean on ``[0, 1]`` images.
      std: the pixel standard deviation, positive.
      tx: the optimizer, for the update/parameter ratio; ``None``: no ratio.
      loss_fn: ``loss_fn(logits, labels) -> scalar``; default softmax cross-entropy.
      probe_size: the probe's examples.
      update_batch: the probe examples whose gradient gives the update ratio.

    Returns:
      The ``monitor`` hook, pure (traced inside the compiled call).

    Example (it runs inside the trainer's compiled call; see :func:`mlwork.train.compile_run`):

    .. code-block:: python

        hook = make_epoch_monitor(run.model, mean=run.mean, std=run.std, tx=run.tx)
        chunk = make_train_chunk(train_step, batch_size=64, monitor=hook)
    """

    def probe(state: Any, images: Array, labels: Array) -> dict[str, Any]:
        out = {"done": jnp.ones((), jnp.float32)}
        out["param_norm"], out["param_norm_layers"] = norms(state.params)
        if tx is not None:
            key = jax.random.fold_in(jax.random.fold_in(state.key, MONITOR), state.epoch)
            x = preprocess(images[:update_batch], mean, std)

            def objective(params):
                logits, _ = model.apply({"params": params, "state": state.model_state}, x, train=True, key=key)
                return loss_fn(logits, labels[:update_batch])

            updates, _ = tx.update(jax.grad(objective)(state.params), state.opt_state, state.params)
            out["update_ratio"], out["update_ratio_layers"] = update_ratios(updates, state.params)
        if getattr(model, "hidden", None) is not None:
            acts = model.hidden({"params": state.params, "state": state.model_state},
                                preprocess(images, mean, std))
            if acts:
                out["dead_relu_fraction"], out["dead_relu_layers"] = dead_relu_fraction(acts)
        return out

    def monitor(state: Any, step_stats: dict[str, Any] | None, images: Array, labels: Array,
                epoch_done: Any = True) -> dict[str, Any]:
        out = {} if step_stats is None else {"steps": summarize_steps(step_stats)}
        images, labels = images[:probe_size], labels[:probe_size]
        if epoch_done is True:
            out["epoch"] = probe(state, images, labels)
        else:
            shapes = jax.eval_shape(probe, state, images, labels)
            zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
            out["epoch"] = jax.lax.cond(epoch_done, probe, lambda *_: zeros, state, images, labels)
        return out

    return monitor


def _plain(v: Any) -> Any:
    """Host values as JSON-ready Python: floats (``None`` where not finite), dicts, lists."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    arr = np.asarray(v, np.float64)
    if arr.ndim:
        return [_plain(a) for a in arr]
    return float(arr) if np.isfinite(arr) else None


def accumulate_monitor(total: Mapping[str, Any] | None, chunk: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Add one compiled call's ``monitor`` output (already on the host) to the epoch's running
    total: step sums and counts add, maxima take the larger, and the ``epoch`` probe is kept
    from the call that ended the epoch. The total is plain JSON-ready Python (it travels in a
    preemption checkpoint with the epoch's other partial sums); ``None`` stays ``None`` when
    there is nothing to add.

    Args:
      total: the epoch's total so far, or ``None`` at its start.
      chunk: one call's ``monitor`` output, fetched to the host, or ``None``.

    Returns:
      The new total (a new dict), or ``None``.

    Example:
      >>> from mlwork.train.diagnostics import accumulate_monitor, monitor_row
      >>> call = {"steps": {"grad_norm_sum": 12.0, "grad_norm_layers_sum": {"layer_1": 12.0},
      ...                   "grad_norm_max": 7.0, "monitored_steps": 2.0}}
      >>> total = accumulate_monitor(accumulate_monitor(None, call), call)
      >>> total["grad_norm_sum"], total["monitored_steps"], monitor_row(total)["grad_norm"]
      (24.0, 4.0, 6.0)
    """
    if not chunk:
        return None if total is None else dict(total)
    out = dict(total or {})
    steps = _plain(chunk.get("steps") or {})
    if steps:
        out["grad_norm_sum"] = out.get("grad_norm_sum", 0.0) + steps["grad_norm_sum"]
        layers = dict(out.get("grad_norm_layers_sum", {}))
        for name, value in steps["grad_norm_layers_sum"].items():
            layers[name] = layers.get(name, 0.0) + value
        out["grad_norm_layers_sum"] = layers
        maxima = [m for m in (out.get("grad_norm_max"), steps["grad_norm_max"]) if m is not None]
        out["grad_norm_max"] = max(maxima) if maxima else None
        out["monitored_steps"] = out.get("monitored_steps", 0.0) + steps["monitored_steps"]
    epoch = _plain(chunk.get("epoch") or {})
    if epoch.get("done"):
        out["epoch"] = {k: v for k, v in epoch.items() if k != "done"}
    return out


def monitor_row(total: Mapping[str, Any] | None) -> dict[str, Any]:
    """An epoch's :func:`accumulate_monitor` total as the fields of its ``metrics.jsonl`` row:
    ``grad_norm`` and ``grad_norm_layers`` (means over the sampled steps; ``None`` if none was
    sampled), ``grad_norm_max``, ``monitored_steps``, and the end-of-epoch probe's
    ``param_norm``, ``update_ratio``, ``dead_relu_fraction`` (each with ``*_layers``).

    Args:
      total: an epoch's :func:`accumulate_monitor` total, or ``None``.

    Returns:
      The row's fields, sorted by name; ``{}`` for no total.

    Example:
      >>> from mlwork.train.diagnostics import monitor_row
      >>> monitor_row({"grad_norm_sum": 12.0, "grad_norm_layers_sum": {"layer_1": 12.0}, "grad_norm_max": 7.0,
      ...              "monitored_steps": 2.0, "epoch": {"param_norm": 20.5}})  # doctest: +NORMALIZE_WHITESPACE
      {'grad_norm': 6.0, 'grad_norm_layers': {'layer_1': 6.0}, 'grad_norm_max': 7.0,
       'monitored_steps': 2.0, 'param_norm': 20.5}
    """
    if not total:
        return {}
    row: dict[str, Any] = {}
    n = total.get("monitored_steps")
    if n is not None:
        row["grad_norm"] = total["grad_norm_sum"] / n if n else None
        row["grad_norm_layers"] = {k: (v / n if n else None) for k, v in total["grad_norm_layers_sum"].items()}
        row["grad_norm_max"] = total.get("grad_norm_max")
        row["monitored_steps"] = n
    row.update(total.get("epoch", {}))
    return dict(sorted(row.items()))
