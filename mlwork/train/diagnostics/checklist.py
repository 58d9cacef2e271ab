r"""The deck's "Debugging Checklist", as functions that measure instead of asking.

1. Can the model overfit one batch?          :func:`check_overfit_one_batch`
2. Are the labels correct?                   :func:`check_labels`
3. Is the data normalised?                   :func:`check_normalization`
4. Are gradients flowing?                    :func:`check_gradient_flow`
5. Is the loss function appropriate?         :func:`check_loss_matches_task`
6. Is train/eval mode correct?               :func:`check_train_eval_mode`
7. Are shapes matching?                      :func:`check_shapes`
8. Is the initial loss ≈ ln K?               :func:`check_initial_loss`

Every check returns a :class:`CheckResult`: whether it passed, the measured evidence, and, when
it failed, the likely cause in the words of the deck's "Common Problems" (*Loss = NaN: LR too
high, divide by zero, log of zero*; *Loss doesn't decrease: LR too low, bug in forward pass,
wrong loss function*) and "Tips for Successful Training". :func:`run_checklist` runs all eight
on a model, an optimizer and a data set.

Inputs ``x`` are what the model sees: preprocessed float arrays with a batch axis. Models follow
the ``Model(init, apply, output_activation)`` contract; ``loss_fn(outputs, labels)`` takes
integer labels, as the trainer's does. The checks run eagerly or in small jitted programs on
concrete arrays; they are diagnostics, not functions to call under ``jit``.

References: the deck's "Tips for Successful Training", "Common Problems", "Debugging
Checklist"; Karpathy, "A Recipe for Training Neural Networks" (2019); Zhang et al.,
"Understanding deep learning requires rethinking generalization" (2017) for the
label-shuffle control.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlwork._static import this_call
from mlwork.nn.losses import softmax_cross_entropy
from mlwork.train.diagnostics.monitor import norms

Array = jax.Array
LossFn = Callable[[Array, Array], Array]
#: The library's losses, cached by identity; a user's ``loss_fn`` is traced anew on every call.
_KNOWN = (softmax_cross_entropy,)

# The deck's "Common Problems", and what each check adds to them.
NAN = "Loss = NaN: learning rate too high, a divide by zero, or a log of zero"
LR_TOO_HIGH = "learning rate too high: the loss rose instead of falling (\"if in doubt, lower the learning rate\")"
NO_DECREASE = ("Loss doesn't decrease: learning rate too low, a bug in the forward pass, or the wrong loss "
               "function (or too few steps / too small a model)")
WRONG_LOSS = "Wrong loss function: match the loss to the task and the output activation"
LOG_OF_ZERO = "Log of zero / divide by zero: compute the loss from logits (log-sum-exp) or clip probabilities"
BAD_LABELS = ("Labels are not correct: they carry no information about the inputs (shuffled, misaligned with "
              "the images, or read from the wrong file)")
NOT_NORMALISED = ("Data not normalised (\"huge impact on training stability\"): standardise inputs with the "
                  "training set's statistics, x' = (x/255 - mu)/sigma")
DETACHED = ("No gradient reaches these parameters: a detached layer (stop_gradient), a parameter the forward "
            "pass never uses, or dead ReLUs (a bug in the forward pass)")
VANISHING = ("Vanishing or exploding gradients: saturating activations, a bad initialisation scale, or "
             "un-normalised inputs")
MODE_RANDOM_EVAL = ("Evaluation mode is random: dropout (or another random layer) stays on when train=False; "
                    "always toggle train/eval appropriately")
MODE_NO_TRAIN = ("Training mode changes nothing: dropout/BatchNorm never switch to training behaviour "
                 "(is train=True passed through to them?)")
SHAPES = ("Shapes don't match: check the input shape (28x28 -> 784 when flattening), the number of output "
          "units (one per class) and the labels' shape")
OVERCONFIDENT = ("Initial outputs are not near-uniform: an initialisation scale that is too large, "
                 "un-normalised inputs, or a log of zero")


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One checklist item's verdict.

    Attributes:
      number: its place in the checklist (1-8).
      name: a short name ("overfit one batch", ...).
      passed: whether the check passed.
      evidence: what was measured, in one line.
      cause: when it failed, the likely cause from the deck's "Common Problems"; else ``None``.
      values: the measured numbers (JSON-ready), for programs and tests.
    """

    number: int
    name: str
    passed: bool
    evidence: str
    cause: str | None = None
    values: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict, one key per attribute."""
        return dataclasses.asdict(self)


def _result(number: int, name: str, failures: Sequence[str], evidence: str, values: dict[str, Any]) -> CheckResult:
    return CheckResult(number, name, not failures, evidence, "; ".join(dict.fromkeys(failures)) or None, values)


def _variables(variables: Any) -> dict[str, Any]:
    return {"params": variables["params"], "state": variables.get("state", {})}


def _log_probs(outputs: Array, output_activation: str | None) -> Array:
    """Log class probabilities from a classifier's outputs: log-softmax of logits, or the log of
    (clipped) probabilities when the model already applies softmax."""
    if output_activation is None:
        return jax.nn.log_softmax(outputs, axis=-1)
    if output_activation == "softmax":
        return jnp.log(jnp.clip(outputs, 1e-30, 1.0))
    raise ValueError(f"a multi-class classifier's output_activation must be None (logits) or 'softmax', "
                     f"got {output_activation!r}")


def _output_fn(output_activation: str | None) -> Callable[[Array], Array]:
    return {None: lambda z: z, "identity": lambda z: z, "softmax": lambda z: jax.nn.softmax(z, axis=-1),
            "sigmoid": jax.nn.sigmoid}[output_activation]


def _check_batch(x: Any, y: Any, n_classes: int | None = None) -> tuple[Array, Array]:
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim < 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must be a batch (n, ...) and labels a vector (n,); got x {x.shape}, labels {y.shape}")
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
    if n_classes is not None and (isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 2):
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    return x, y.astype(jnp.int32)


@functools.partial(jax.jit, static_argnums=(0, 2))
def _init(model, key, input_shape):
    return model.init(key, input_shape)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _outputs(model, train, variables, x, key):
    return model.apply(variables, x, train=train, key=key)[0]


# 1 ------------------------------------------------------------------------------------------------

@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _fit_one_batch(model, tx, loss_fn, steps, variables, x, y, key):
    def step(carry, i):
        params, model_state, opt_state = carry

        def objective(p):
            out, new_state = model.apply({"params": p, "state": model_state}, x, train=True,
                                         key=jax.random.fold_in(key, i))
            return loss_fn(out, y), new_state

        (loss, new_state), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), new_state, opt_state), loss

    params = variables["params"]
    carry = (params, variables["state"], tx.init(params))
    (params, model_state, _), losses = jax.lax.scan(step, carry, jnp.arange(steps))
    out, _ = model.apply({"params": params, "state": model_state}, x)
    return losses, loss_fn(out, y), jnp.mean((jnp.argmax(out, -1) == y).astype(jnp.float32))


def check_overfit_one_batch(model, tx: optax.GradientTransformation, x, y, *, key: Array,
                            loss_fn: LossFn = softmax_cross_entropy, steps: int = 200,
                            variables: Any = None, min_accuracy: float = 0.99,
                            max_loss_fraction: float = 0.05, max_rise: float = 1.2) -> CheckResult:
    r"""Checklist 1, "Can the model overfit one batch?" (the deck's *start simple: verify it can
    overfit one batch*).

    Trains a fresh copy of the model (``variables``, or ``model.init(key, ...)``) with ``tx`` on
    the single batch ``(x, y)`` for ``steps`` steps (one compiled ``lax.scan``; dropout keys
    ``fold_in(key, step)``), then evaluates it on the same batch in evaluation mode. Passes when

    .. math:: \text{acc} \ge 0.99, \qquad J_{\text{final}} \le 0.05\,J_0, \qquad
              \max_t J_t \le 1.2\,J_0

    (a healthy run memorises 64 examples and its loss never climbs above where it started).
    A non-finite loss points to "Loss = NaN", a climb to a learning rate that is too high, a
    loss that stays up to "Loss doesn't decrease".

    Args:
      model: the model (``init``, ``apply``).
      tx: the optimizer to train with.
      x: a preprocessed float batch ``(B, ...)``.
      y: integer labels ``(B,)``.
      key: a PRNG key (initialisation unless ``variables``, and dropout).
      loss_fn: ``loss_fn(outputs, labels) -> scalar``; default softmax cross-entropy (nats).
      steps: optimizer steps, >= 1.
      variables: the starting variables; default a fresh ``model.init``.
      min_accuracy: the accuracy on the batch to reach, a fraction.
      max_loss_fraction: the final loss allowed, as a fraction of the initial one.
      max_rise: the highest loss allowed during training, as a multiple of the initial one.

    Returns:
      A :class:`CheckResult` numbered 1; ``values`` has ``initial_loss``, ``final_loss``,
      ``peak_loss_ratio``, ``accuracy`` (and ``first_nonfinite_step`` when the loss broke).

    Raises:
      ValueError: ``x`` not a batch, labels not an integer vector of its length, ``steps`` not a
        positive integer.

    Example:
      >>> import jax, optax
      >>> from mlwork import nn
      >>> from mlwork.train.diagnostics import check_overfit_one_batch
      >>> x = jax.random.normal(jax.random.key(1), (16, 4))
      >>> y = x[:, :3].argmax(-1)
      >>> result = check_overfit_one_batch(nn.mlp([4, 8, 3]), optax.adam(0.05), x, y, key=jax.random.key(0),
      ...                                  steps=100)
      >>> result.passed, result.values["accuracy"], result.cause is None
      (True, 1.0, True)
    """
    x, y = _check_batch(x, y)
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    k_init, k_train = jax.random.split(key)
    variables = _variables(variables if variables is not None else _init(model, k_init, tuple(x.shape[1:])))
    losses, final, acc = jax.device_get(_fit_one_batch(model, tx, this_call(loss_fn, _KNOWN), int(steps), variables,
                                                       x, y, k_train))
    start, peak = float(losses[0]), float(np.max(losses))
    final, acc = float(final), float(acc)
    values = {"steps": int(steps), "batch_size": int(x.shape[0]), "initial_loss": start, "final_loss": final,
              "peak_loss_ratio": peak / start if start > 0 else math.inf, "accuracy": acc}
    failures = []
    if not (np.all(np.isfinite(losses)) and np.isfinite(final)):
        bad = int(np.argmin(np.isfinite(losses))) if not np.all(np.isfinite(losses)) else steps
        values["first_nonfinite_step"] = bad
        failures.append(NAN)
        evidence = f"the training loss became non-finite at step {bad} of {steps}"
    else:
        if peak > max_rise * start:
            failures.append(LR_TOO_HIGH)
        if acc < min_accuracy or final > max_loss_fraction * start:
            failures.append(NO_DECREASE)
        evidence = (f"{x.shape[0]} examples, {steps} steps: loss {start:.3g} -> {final:.3g} "
                    f"({100 * final / start:.2g}% of start), accuracy {100 * acc:.1f}%, "
                    f"peak loss {peak / start:.2f}x start")
    return _result(1, "overfit one batch", failures, evidence, values)


# 2 ------------------------------------------------------------------------------------------------

def _nearest_mean_accuracy(x_train: Array, y_train: Array, x_test: Array, y_test: Array, n_classes: int) -> Array:
    one_hot = jax.nn.one_hot(y_train, n_classes, dtype=jnp.float32)
    counts = jnp.sum(one_hot, axis=0)
    centroids = (one_hot.T @ x_train) / jnp.maximum(counts, 1.0)[:, None]
    # argmin ||x - c_k||^2 = argmax (x . c_k - ||c_k||^2 / 2); an empty class is never predicted.
    bias = jnp.where(counts > 0, -0.5 * jnp.sum(centroids * centroids, axis=1), -jnp.inf)
    scores = x_test @ centroids.T + bias[None, :]
    return jnp.mean((jnp.argmax(scores, axis=1) == y_test).astype(jnp.float32))


@functools.partial(jax.jit, static_argnums=(3, 4))
def _label_probe(x, y, key, n_hold, n_classes):
    k_split, k_shuffle = jax.random.split(key)
    n = x.shape[0]
    order = jax.random.permutation(k_split, n)
    flat = x.reshape(n, -1).astype(jnp.float32)
    x_fit, y_fit, x_hold, y_hold = flat[order[n_hold:]], y[order[n_hold:]], flat[order[:n_hold]], y[order[:n_hold]]
    given = _nearest_mean_accuracy(x_fit, y_fit, x_hold, y_hold, n_classes)
    control = _nearest_mean_accuracy(x_fit, jax.random.permutation(k_shuffle, y_fit), x_hold, y_hold, n_classes)
    return given, control, y_hold


def check_labels(x, y, *, n_classes: int, key: Array, holdout: float = 0.25, min_gain: float = 0.2) -> CheckResult:
    r"""Checklist 2, "Are the labels correct?": the class histogram, and whether the labels carry
    information about the inputs, measured against a label-shuffle control.

    A reference learner that needs no training — the nearest class mean (each held-out example
    gets the class whose training mean is closest in Euclidean distance) — is fitted on a
    seeded ``1 − holdout`` of ``(x, y)`` twice: with the labels as given, and with them randomly
    permuted (the control). Both are scored on the held-out examples' given labels. With
    :math:`c` the majority-class frequency of the held-out set (chance) and
    :math:`n` its size, the check passes when every label is in ``[0, n_classes)``, every class
    occurs, and

    .. math:: \text{acc}_{\text{given}} \ge c + 0.2, \qquad
              \text{acc}_{\text{control}} \le c + 3\sqrt{c(1-c)/n} + 0.02.

    Shuffled or misaligned labels pull the first accuracy down to chance; a control above chance
    means held-out examples leak from the training part (duplicates). The learner does not
    depend on the model or the optimizer, so this check judges the data alone; it is invariant
    to a common shift and scale of the inputs.

    Args:
      x: preprocessed inputs ``(n, ...)``, float.
      y: integer labels ``(n,)``.
      n_classes: the number of classes :math:`K`, >= 2.
      key: a PRNG key (the held-out split and the control's permutation).
      holdout: the fraction of examples held out for scoring, in ``(0, 1)``.
      min_gain: how far above chance the given labels' accuracy must be (0.2 above).

    Returns:
      A :class:`CheckResult` numbered 2; ``values`` has the ``histogram``, ``accuracy_given``,
      ``accuracy_control``, ``chance`` and ``control_band``.

    Raises:
      ValueError: ``x`` not a batch, labels not an integer vector of its length, ``n_classes`` not
        an integer >= 2.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork.train.diagnostics import check_labels
      >>> x = jax.random.normal(jax.random.key(1), (60, 4))
      >>> y = x[:, :3].argmax(-1)  # labels that are a function of the inputs
      >>> check_labels(x, y, n_classes=3, key=jax.random.key(0)).passed
      True
      >>> check_labels(x, jnp.roll(y, 1), n_classes=3, key=jax.random.key(0)).passed  # misaligned
      False
    """
    x, y = _check_batch(x, y, n_classes)
    n = x.shape[0]
    labels = np.asarray(y)
    counts = np.bincount(np.clip(labels, 0, None), minlength=n_classes)[:n_classes]
    values: dict[str, Any] = {"histogram": counts.tolist(), "n": int(n)}
    outside = int(np.sum((labels < 0) | (labels >= n_classes)))
    if outside:
        values["outside_range"] = outside
        return _result(2, "labels", [f"{outside} labels outside [0, {n_classes}): wrong label encoding "
                                     "(1-based?) or the wrong n_classes"],
                       f"{outside} of {n} labels outside [0, {n_classes})", values)
    n_hold = max(n_classes, int(round(holdout * n)))
    if n - n_hold < n_classes:
        raise ValueError(f"check_labels needs more examples: {n} leave {n - n_hold} to fit {n_classes} class means")
    given, control, y_hold = (np.asarray(v) for v in _label_probe(x, y, key, n_hold, n_classes))
    given, control = float(given), float(control)
    chance = float(np.max(np.bincount(y_hold, minlength=n_classes)) / n_hold)
    band = 3.0 * math.sqrt(chance * (1.0 - chance) / n_hold) + 0.02
    values.update(accuracy_given=given, accuracy_control=control, chance=chance, control_band=band)
    failures = []
    missing = [k for k in range(n_classes) if counts[k] == 0]
    if missing:
        failures.append(f"classes {missing} never occur: wrong n_classes, a filtered data set, or labels read "
                        "from the wrong file")
    if given < chance + min_gain:
        failures.append(BAD_LABELS)
    if control > chance + band:
        failures.append("the label-shuffle control scores above chance: held-out examples duplicate training "
                        "examples (a leak), so accuracies are inflated")
    hist = " ".join(str(int(c)) for c in counts)
    evidence = (f"histogram [{hist}] (max/min {counts.max() / max(counts.min(), 1):.2f}); nearest-class-mean "
                f"held-out accuracy {100 * given:.1f}% with the given labels vs {100 * control:.1f}% shuffled "
                f"(chance {100 * chance:.1f}%)")
    return _result(2, "labels", failures, evidence, values)


# 3 ------------------------------------------------------------------------------------------------

def check_normalization(x, *, mean_tol: float = 0.1, std_tol: float = 0.1) -> CheckResult:
    r"""Checklist 3, "Is the data normalised?": the inputs after preprocessing have mean ≈ 0 and
    standard deviation ≈ 1 over all their values (the deck's section 20 standardisation
    :math:`x' = (x/255 - \mu)/\sigma`). Passes when :math:`|\bar x| \le 0.1` and
    :math:`|s - 1| \le 0.1`, and every value is finite. Computed in float64.

    Args:
      x: the preprocessed inputs, any shape.
      mean_tol: the largest :math:`|\bar x|` allowed.
      std_tol: the largest :math:`|s - 1|` allowed.

    Returns:
      A :class:`CheckResult` numbered 3; ``values`` has ``mean``, ``std``, ``min``, ``max``.

    Example:
      >>> import jax
      >>> from mlwork.train.diagnostics import check_normalization
      >>> x = jax.random.normal(jax.random.key(0), (1000, 4))
      >>> check_normalization(x).passed, check_normalization(x * 255).passed
      (True, False)
    """
    values_np = np.asarray(x, np.float64)
    if values_np.size == 0:
        raise ValueError("x is empty; pass the preprocessed inputs")
    finite = bool(np.all(np.isfinite(values_np)))
    mean = float(np.mean(values_np)) if finite else math.nan
    std = float(np.std(values_np)) if finite else math.nan
    values = {"mean": mean, "std": std, "min": float(np.nanmin(values_np)), "max": float(np.nanmax(values_np)),
              "finite": finite}
    failures = []
    if not finite:
        failures.append(NAN)
    elif abs(mean) > mean_tol or abs(std - 1.0) > std_tol:
        failures.append(NOT_NORMALISED)
    evidence = (f"inputs: mean {mean:.3f}, std {std:.3f}, range [{values['min']:.3g}, {values['max']:.3g}] "
                f"over {values_np.size:,} values (want 0 +/- {mean_tol}, 1 +/- {std_tol})")
    return _result(3, "normalisation", failures, evidence, values)


# 4 ------------------------------------------------------------------------------------------------

@functools.partial(jax.jit, static_argnums=(0, 1))
def _gradients(model, loss_fn, variables, x, y, key):
    def objective(params):
        out, _ = model.apply({"params": params, "state": variables["state"]}, x, train=True, key=key)
        return loss_fn(out, y)

    return jax.grad(objective)(variables["params"])


def check_gradient_flow(model, variables: Any, x, y, *, key: Array, loss_fn: LossFn = softmax_cross_entropy,
                        max_ratio: float = 1e4) -> CheckResult:
    r"""Checklist 4, "Are gradients flowing?": on one batch in training mode, every parameter
    tensor gets a finite, non-zero gradient, and the per-layer gradient norms
    :math:`\|\nabla_{\theta_l} J\|` (see :func:`mlwork.train.diagnostics.norms`) span less than
    a factor ``max_ratio`` (1e4): no layer's gradient is 10⁴× smaller than another's.

    Args:
      model: the model (``init``, ``apply``).
      variables: its variables (``{"params", "state"}``, or the params alone).
      x: a preprocessed float batch ``(B, ...)``.
      y: integer labels ``(B,)``.
      key: a PRNG key (dropout).
      loss_fn: ``loss_fn(outputs, labels) -> scalar``; default softmax cross-entropy.
      max_ratio: the largest ratio allowed between the largest and the smallest layer norm.

    Returns:
      A :class:`CheckResult` numbered 4; ``values`` has ``layer_norms``, ``tensor_norms``,
      ``max_min_ratio`` and the ``zero`` and ``nonfinite`` tensors' paths.

    Raises:
      ValueError: ``x`` not a batch, or labels not an integer vector of its length.

    Example:
      >>> import jax
      >>> from mlwork import nn
      >>> from mlwork.train.diagnostics import check_gradient_flow
      >>> model = nn.mlp([4, 8, 3])
      >>> x = jax.random.normal(jax.random.key(1), (16, 4))
      >>> result = check_gradient_flow(model, model.init(jax.random.key(0), (4,)), x, x[:, :3].argmax(-1),
      ...                              key=jax.random.key(0))
      >>> result.passed, sorted(result.values["layer_norms"])
      (True, ['layer_1', 'layer_2'])
    """
    x, y = _check_batch(x, y)
    grads = jax.device_get(_gradients(model, this_call(loss_fn, _KNOWN), _variables(variables), x, y, key))
    tensors = {jax.tree_util.keystr(path): float(np.linalg.norm(np.asarray(g, np.float64)))
               for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]}
    _, layers = norms(grads)
    layers = {k: float(v) for k, v in layers.items()}
    zero = [k for k, v in tensors.items() if v == 0.0]
    bad = [k for k, v in tensors.items() if not np.isfinite(v)]
    positive = [v for v in layers.values() if v > 0 and np.isfinite(v)]
    ratio = max(positive) / min(positive) if positive else math.inf
    values = {"layer_norms": layers, "tensor_norms": tensors, "max_min_ratio": ratio, "zero": zero, "nonfinite": bad}
    failures = []
    if bad:
        failures.append(NAN)
    if zero:
        failures.append(DETACHED)
    if ratio > max_ratio:
        failures.append(VANISHING)
    shown = ", ".join(f"{k} {v:.2g}" for k, v in layers.items())
    evidence = f"gradient norms per layer: {shown} (max/min {ratio:.3g})"
    if zero:
        evidence += f"; zero gradient: {', '.join(zero)}"
    if bad:
        evidence += f"; non-finite gradient: {', '.join(bad)}"
    return _result(4, "gradient flow", failures, evidence, values)


# 5 ------------------------------------------------------------------------------------------------

@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _loss_probe(loss_fn, output_activation, n_classes, confidence):
    act = _output_fn(output_activation)
    y = jnp.arange(n_classes, dtype=jnp.int32)
    right = jax.nn.one_hot(y, n_classes, dtype=jnp.float32)
    wrong = jax.nn.one_hot((y + 1) % n_classes, n_classes, dtype=jnp.float32)

    def loss_of(z):
        return loss_fn(act(z), y)

    return {"right": loss_of(confidence * right), "uniform": loss_of(0.0 * right),
            "wrong": loss_of(confidence * wrong), "extreme": loss_of(1000.0 * wrong),
            "grad_wrong": jax.grad(loss_of)(confidence * wrong) * n_classes,  # per-example gradient rows
            "grad_extreme": jax.grad(loss_of)(1000.0 * wrong)}


def check_loss_matches_task(model, loss_fn: LossFn = softmax_cross_entropy, *, n_classes: int,
                            x=None, variables: Any = None, confidence: float = 10.0,
                            min_gradient: float = 0.1) -> CheckResult:
    r"""Checklist 5, "Is the loss function appropriate?" for a multi-class classifier, from the
    model's declared ``output_activation`` (``None``: logits; ``"softmax"``: probabilities).

    The loss is probed on outputs :math:`o = \sigma_{\text{out}}(z)` made from chosen
    pre-activation scores :math:`z` for :math:`K` examples (one per class): confidently right
    (:math:`z = c\,e_y`), uniform (:math:`z = 0`) and confidently wrong
    (:math:`z = c\,e_{y+1}`), :math:`c` = ``confidence``. A loss that fits the task

    * ranks them: :math:`J(\text{right}) < J(\text{uniform}) < J(\text{wrong})`;
    * keeps teaching when confidently wrong: the per-example gradient
      :math:`\|\partial \mathcal{L}/\partial z\| \ge 0.1` there (cross-entropy on logits gives
      :math:`\|\mathrm{softmax}(z) - e_y\| \approx \sqrt 2`; MSE on softmax probabilities
      saturates to ~1e-4 — the deck's reason for matching cross-entropy to softmax);
    * stays finite at :math:`c = 1000`, where probabilities underflow to 0 (log of zero).

    With ``x`` and ``variables``, the model's actual outputs are also checked against the
    declaration (probabilities that sum to 1 declared as logits, or the reverse).

    Args:
      model: the model; its ``output_activation`` is the declaration.
      loss_fn: ``loss_fn(outputs, labels) -> scalar`` with integer labels.
      n_classes: the number of classes :math:`K`, >= 2.
      x: optionally, a preprocessed batch, to check the model's actual outputs.
      variables: the model's variables, with ``x``.
      confidence: :math:`c`, the score of the confident probes.
      min_gradient: the smallest gradient norm allowed when confidently wrong.

    Returns:
      A :class:`CheckResult` numbered 5; ``values`` has ``loss_right``, ``loss_uniform``,
      ``loss_wrong`` and ``grad_confidently_wrong``.

    Raises:
      ValueError: ``n_classes`` not an integer >= 2.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork import nn
      >>> from mlwork.train.diagnostics import check_loss_matches_task
      >>> check_loss_matches_task(nn.mlp([4, 8, 3]), n_classes=3).passed  # cross-entropy on logits
      True
      >>> mse = lambda probs, labels: jnp.mean((probs - jax.nn.one_hot(labels, 3)) ** 2)
      >>> check_loss_matches_task(nn.mlp([4, 8, 3], output_activation="softmax"), mse, n_classes=3).passed
      False
    """
    if isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    declared = model.output_activation
    name = getattr(loss_fn, "__name__", type(loss_fn).__name__)
    values: dict[str, Any] = {"output_activation": declared, "loss": name}
    if declared not in (None, "softmax"):
        return _result(5, "loss matches task", [WRONG_LOSS + f": a {n_classes}-class classifier needs logits or "
                                                f"softmax outputs, not {declared!r}"],
                       f"output_activation={declared!r} for a {n_classes}-class task", values)
    try:
        probe = jax.device_get(_loss_probe(this_call(loss_fn, _KNOWN), declared, int(n_classes), float(confidence)))
        j_right, j_uniform, j_wrong, j_extreme = (float(probe[k]) for k in ("right", "uniform", "wrong", "extreme"))
        grad_wrong = float(np.mean(np.linalg.norm(probe["grad_wrong"], axis=1)))
        g_extreme = probe["grad_extreme"]
    except (ValueError, TypeError) as e:
        return _result(5, "loss matches task", [WRONG_LOSS + " (it must take (outputs, integer labels))"],
                       f"loss_fn({declared or 'logits'}, labels) raised {type(e).__name__}: {e}", values)
    values.update(loss_right=j_right, loss_uniform=j_uniform, loss_wrong=j_wrong, grad_confidently_wrong=grad_wrong,
                  loss_extreme=j_extreme)
    failures = []
    if not (np.isfinite(j_extreme) and np.all(np.isfinite(g_extreme))):
        failures.append(LOG_OF_ZERO)
    if not j_right < j_uniform < j_wrong:
        failures.append(WRONG_LOSS + ": it does not rank a confident right answer below a wrong one")
    if not grad_wrong >= min_gradient:
        failures.append(WRONG_LOSS + ": its gradient vanishes when the model is confidently wrong "
                        "(e.g. MSE on softmax probabilities); use cross-entropy on logits")
    evidence = (f"outputs {declared or 'logits'}, loss {name}: J(right/uniform/wrong) = {j_right:.3g}/"
                f"{j_uniform:.3g}/{j_wrong:.3g}; norm of dL/dz when confidently wrong {grad_wrong:.2g} "
                f"(cross-entropy: 1.41)")
    if x is not None and variables is not None:
        out = np.asarray(_outputs(model, False, _variables(variables), jnp.asarray(x), None), np.float64)
        looks_like_probs = out.min() >= 0.0 and np.allclose(out.sum(-1), 1.0, atol=1e-3)
        values["outputs_look_like_probabilities"] = bool(looks_like_probs)
        if out.shape[-1] != n_classes:
            failures.append(SHAPES)
        elif declared is None and looks_like_probs:
            failures.append(WRONG_LOSS + ": the model's outputs are probabilities but it declares logits "
                            "(output_activation=None)")
        elif declared == "softmax" and not looks_like_probs:
            failures.append(WRONG_LOSS + ": the model declares softmax outputs that do not sum to 1")
    return _result(5, "loss matches task", failures, evidence, values)


# 6 ------------------------------------------------------------------------------------------------

def check_train_eval_mode(model, variables: Any, x, *, key: Array, expect_mode_difference: bool = True,
                          atol: float = 1e-6) -> CheckResult:
    """Checklist 6, "Is train/eval mode correct?": evaluation (``train=False``) is deterministic
    — the same outputs with two different keys and with none — and, for a model with dropout or
    BatchNorm (``expect_mode_difference``), training mode gives different outputs (random masks,
    batch statistics). Differences are max-abs over the outputs, relative to their scale; the
    second test is only meaningful, and only made, when evaluation is deterministic.

    Args:
      model: the model (``apply(variables, x, train=..., key=...)``).
      variables: its variables.
      x: a preprocessed batch ``(B, ...)``.
      key: a PRNG key (split into the two keys compared).
      expect_mode_difference: whether training mode should differ from evaluation (dropout or
        BatchNorm present).
      atol: the largest difference, relative to the outputs' scale, that counts as none.

    Returns:
      A :class:`CheckResult` numbered 6; ``values`` has ``eval_max_difference``,
      ``train_vs_eval`` and ``train_vs_train``.

    Example:
      >>> import jax
      >>> from mlwork import nn
      >>> from mlwork.train.diagnostics import check_train_eval_mode
      >>> model = nn.mlp([4, 8, 3], dropout=0.5)
      >>> x = jax.random.normal(jax.random.key(1), (8, 4))
      >>> check_train_eval_mode(model, model.init(jax.random.key(0), (4,)), x, key=jax.random.key(2)).passed
      True
    """
    x = jnp.asarray(x)
    variables = _variables(variables)
    k1, k2 = jax.random.split(key)

    def run(train: bool, k):
        return np.asarray(_outputs(model, train, variables, x, k), np.float64)

    e1 = run(False, k1)
    scale = max(1.0, float(np.max(np.abs(e1))))
    e_diff = max(float(np.max(np.abs(e1 - run(False, k2)))), float(np.max(np.abs(e1 - run(False, None)))))
    t1, t2 = run(True, k1), run(True, k2)
    train_vs_eval = float(np.max(np.abs(t1 - e1)))
    train_vs_train = float(np.max(np.abs(t1 - t2)))
    values = {"eval_max_difference": e_diff, "train_vs_eval": train_vs_eval, "train_vs_train": train_vs_train}
    failures = []
    if not e_diff <= atol * scale:
        failures.append(MODE_RANDOM_EVAL)
    elif expect_mode_difference and not train_vs_eval > atol * scale:
        failures.append(MODE_NO_TRAIN)
    evidence = (f"eval outputs differ by {e_diff:.2g} across keys (want 0); train vs eval {train_vs_eval:.2g}, "
                f"train vs train (other key) {train_vs_train:.2g}")
    return _result(6, "train/eval mode", failures, evidence, values)


# 7 ------------------------------------------------------------------------------------------------

def check_shapes(model, x, y, *, key: Array, n_classes: int, loss_fn: LossFn = softmax_cross_entropy) -> CheckResult:
    """Checklist 7, "Are shapes matching?": ``init(key, x.shape[1:])`` and ``apply`` on the batch
    give ``(batch, n_classes)`` outputs in both modes; the labels are ``(batch,)``; the loss is
    a scalar; ``hidden`` (if any) keeps the batch axis. Everything is traced with
    ``jax.eval_shape`` (nothing is computed, so this check is instant even for a large model);
    the assertions are chex's (``assert_shape``, ``assert_rank``).

    Args:
      model: the model (``init``, ``apply``).
      x: a preprocessed batch ``(B, ...)``.
      y: labels, expected ``(B,)``.
      key: a PRNG key (only traced).
      n_classes: the number of classes, the outputs' last axis.
      loss_fn: ``loss_fn(outputs, labels) -> scalar``.

    Returns:
      A :class:`CheckResult` numbered 7; the evidence names the first mismatch.

    Example:
      >>> import jax
      >>> from mlwork import nn
      >>> from mlwork.train.diagnostics import check_shapes
      >>> x = jax.random.normal(jax.random.key(1), (8, 4))
      >>> y = x[:, :3].argmax(-1)
      >>> print(check_shapes(nn.mlp([4, 8, 3]), x, y, key=jax.random.key(0), n_classes=3).evidence)
      input (8, 4) -> outputs (8, 3) (want (8, 3)); labels (8,); loss scalar
      >>> check_shapes(nn.mlp([4, 8, 3]), x, y, key=jax.random.key(0), n_classes=10).passed
      False
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    batch = x.shape[0] if x.ndim else 0
    values: dict[str, Any] = {"input": list(x.shape), "labels": list(y.shape)}
    try:
        k_init, k_drop = jax.random.split(key)
        variables = jax.eval_shape(lambda k: model.init(k, tuple(x.shape[1:])), k_init)
        out = jax.eval_shape(lambda v, x: model.apply(v, x)[0], variables, x)
        values["output"] = list(out.shape)
        chex.assert_shape(out, (batch, n_classes))
        out_train = jax.eval_shape(lambda v, x, k: model.apply(v, x, train=True, key=k)[0], variables, x, k_drop)
        chex.assert_shape(out_train, (batch, n_classes))
        chex.assert_shape(y, (batch,))
        chex.assert_rank(jax.eval_shape(loss_fn, out, y), 0)
        if getattr(model, "hidden", None) is not None:
            for name, a in jax.eval_shape(model.hidden, variables, x).items():
                if a.shape[:1] != (batch,):
                    raise AssertionError(f"hidden layer {name} has shape {a.shape}; expected batch axis {batch}")
    except (AssertionError, ValueError, TypeError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return _result(7, "shapes", [SHAPES], f"{type(e).__name__}: {message}", values)
    evidence = (f"input {tuple(x.shape)} -> outputs {tuple(out.shape)} (want ({batch}, {n_classes})); "
                f"labels {tuple(y.shape)}; loss scalar")
    return _result(7, "shapes", [], evidence, values)


# 8 ------------------------------------------------------------------------------------------------

def check_initial_loss(model, variables: Any, x, y, *, n_classes: int, factor: float = 2.0) -> CheckResult:
    r"""Checklist 8, "initial loss ≈ ln K": an untrained classifier should be unsure, predicting
    near-uniform probabilities, so its cross-entropy on ``K`` classes starts near

    .. math:: J_0 \approx -\log\tfrac1K = \ln K \quad(\ln 10 \approx 2.303).

    Measured in evaluation mode from the model's outputs (log-softmax of logits, or the log of
    its softmax probabilities), whatever loss trains it. Logits with a spread :math:`\sigma`
    across classes add about :math:`\sigma^2/2` nats, and a He/Glorot-initialised network has
    :math:`\sigma \approx 1`–:math:`1.5` (the deck's MLP starts between 2.6 and 3.9 nats over
    200 seeds), so the check passes when :math:`J_0` is within a ``factor`` (2) of
    :math:`\ln K`: :math:`\ln K/2 \le J_0 \le 2\ln K`. Far above means over-confident
    initial outputs (a too-large initialisation scale, un-normalised inputs); far below, that
    the untrained model already knows the labels (a leak).

    Args:
      model: the model.
      variables: its untrained variables.
      x: preprocessed inputs ``(n, ...)``.
      y: integer labels ``(n,)``.
      n_classes: :math:`K`, >= 2.
      factor: how far from :math:`\ln K` the loss may be, a ratio > 1.

    Returns:
      A :class:`CheckResult` numbered 8; ``values`` has the ``initial_loss`` (nats), the
      ``expected`` :math:`\ln K` and the ``allowed`` range.

    Raises:
      ValueError: ``x`` not a batch, labels not an integer vector of its length, ``n_classes`` not
        an integer >= 2, ``factor <= 1``.

    Example:
      >>> import jax
      >>> from mlwork import nn
      >>> from mlwork.train.diagnostics import check_initial_loss
      >>> model = nn.mlp([4, 8, 3])
      >>> x = jax.random.normal(jax.random.key(1), (60, 4))
      >>> check_initial_loss(model, model.init(jax.random.key(0), (4,)), x, x[:, :3].argmax(-1), n_classes=3).passed
      True
    """
    x, y = _check_batch(x, y, n_classes)
    if not factor > 1.0:
        raise ValueError(f"factor must be > 1, got {factor}")
    out = _outputs(model, False, _variables(variables), x, None)
    try:
        logp = _log_probs(out, model.output_activation)
    except ValueError as e:
        return _result(8, "initial loss", [WRONG_LOSS], str(e), {})
    j0 = float(-jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1)))
    expected = math.log(n_classes)
    low, high = expected / factor, expected * factor
    values = {"initial_loss": j0, "expected": expected, "allowed": [low, high]}
    failures = []
    if not np.isfinite(j0):
        failures.append(NAN)
    elif j0 > high:
        failures.append(OVERCONFIDENT)
    elif j0 < low:
        failures.append("The untrained model already predicts the labels: they leak into the inputs")
    evidence = (f"initial cross-entropy {j0:.3f} nats on {x.shape[0]} examples vs ln {n_classes} = {expected:.3f} "
                f"(allowed {low:.2f}-{high:.2f})")
    return _result(8, "initial loss", failures, evidence, values)


# all ----------------------------------------------------------------------------------------------

def run_checklist(model, x, y, *, tx: optax.GradientTransformation, key: Array,
                  loss_fn: LossFn = softmax_cross_entropy, n_classes: int = 10, batch_size: int = 64,
                  overfit_steps: int = 200, eval_size: int = 512,
                  expect_mode_difference: bool = True) -> list[CheckResult]:
    """Run the eight checks on a model, its optimizer ``tx`` and a data set ``(x, y)`` of
    preprocessed inputs and integer labels, in the checklist's order.

    A seeded permutation picks the batch of ``batch_size`` (checks 1, 4, 6, 7) and the first
    ``eval_size`` examples for the initial loss (8); checks 2-3 use all of ``x``. One
    initialisation from ``key`` serves checks 1, 4, 5, 6 and 8 (7 initialises its own).

    Args:
      model: the model (``init``, ``apply``, ``output_activation``).
      x: preprocessed float inputs ``(n, ...)``, ``n >= batch_size``.
      y: integer labels ``(n,)``.
      tx: the optimizer, for check 1.
      key: a PRNG key, split among the checks.
      loss_fn: ``loss_fn(outputs, labels) -> scalar``; default softmax cross-entropy.
      n_classes: the number of classes, >= 2.
      batch_size: the batch of checks 1, 4, 6 and 7.
      overfit_steps: the steps of check 1.
      eval_size: the examples of check 8.
      expect_mode_difference: passed to check 6 (``False`` for a model without dropout or
        BatchNorm).

    Returns:
      The eight :class:`CheckResult`, numbered 1 to 8.

    Raises:
      ValueError: fewer than ``batch_size`` examples, ``x`` not a batch, labels not an integer
        vector of its length, ``n_classes`` not an integer >= 2.

    Example:
      >>> import jax, optax
      >>> from mlwork import nn
      >>> from mlwork.train.diagnostics import run_checklist
      >>> x = jax.random.normal(jax.random.key(1), (60, 4))
      >>> results = run_checklist(nn.mlp([4, 8, 3]), x, x[:, :3].argmax(-1), tx=optax.adam(0.05),
      ...                         key=jax.random.key(0), n_classes=3, batch_size=16, overfit_steps=100,
      ...                         expect_mode_difference=False)
      >>> [r.number for r in results], [r.name for r in results if not r.passed]  # a sample's stats
      ([1, 2, 3, 4, 5, 6, 7, 8], ['normalisation'])
    """
    x, y = _check_batch(x, y, n_classes)
    if x.shape[0] < batch_size:
        raise ValueError(f"the checklist needs at least batch_size={batch_size} examples, got {x.shape[0]}")
    k_init, k_order, k_fit, k_labels, k_grad, k_mode, k_shape = jax.random.split(key, 7)
    variables = _init(model, k_init, tuple(x.shape[1:]))
    order = jax.random.permutation(k_order, x.shape[0])
    xb, yb = x[order[:batch_size]], y[order[:batch_size]]
    xe, ye = x[order[:eval_size]], y[order[:eval_size]]
    return [
        check_overfit_one_batch(model, tx, xb, yb, key=k_fit, loss_fn=loss_fn, steps=overfit_steps,
                                variables=variables),
        check_labels(x, y, n_classes=n_classes, key=k_labels),
        check_normalization(x),
        check_gradient_flow(model, variables, xb, yb, key=k_grad, loss_fn=loss_fn),
        check_loss_matches_task(model, loss_fn, n_classes=n_classes, x=xb, variables=variables),
        check_train_eval_mode(model, variables, xb, key=k_mode, expect_mode_difference=expect_mode_difference),
        check_shapes(model, xb, yb, key=k_shape, n_classes=n_classes, loss_fn=loss_fn),
        check_initial_loss(model, variables, xe, ye, n_classes=n_classes),
    ]


def format_table(results: Sequence[CheckResult]) -> str:
    """The results as a Markdown table (``#``, check, result, evidence), each failure's likely
    cause on a line below it.

    Args:
      results: checklist results, e.g. from :func:`run_checklist`.

    Returns:
      The Markdown text, ending with the line ``"<passed>/<total> checks passed"``.

    Example:
      >>> from mlwork.train.diagnostics import CheckResult, format_table
      >>> print(format_table([CheckResult(3, "normalisation", False, "mean 28.9", cause="not normalised")]))
      | # | check | result | evidence |
      |---|---|---|---|
      | 3 | normalisation | FAIL | mean 28.9<br>**likely cause:** not normalised |
      <BLANKLINE>
      0/1 checks passed
    """
    lines = ["| # | check | result | evidence |", "|---|---|---|---|"]
    for r in results:
        evidence = r.evidence.replace("|", "/")
        if r.cause:
            evidence += f"<br>**likely cause:** {r.cause}"
        lines.append(f"| {r.number} | {r.name} | {'PASS' if r.passed else 'FAIL'} | {evidence} |")
    passed = sum(r.passed for r in results)
    lines.append("")
    lines.append(f"{passed}/{len(results)} checks passed")
    return "\n".join(lines)
