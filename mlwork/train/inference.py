"""Class probabilities from a loaded run: :func:`predict_run`, and the pure function it compiles.

**Input convention** (the same for :func:`predict_run`, ``python -m experiments.predict`` and an
exported run):

* integer images (``uint8`` like the training data, or any integer dtype) are pixel levels
  in ``[0, 255]``;
* floating images are intensities already scaled to ``[0, 1]`` (what ``uint8 / 255`` gives).

Either is then normalised as the trainer did, ``(x - mean) / std`` with ``x`` in ``[0, 1]``
(:func:`mlwork.data.preprocess`). Values outside the range are an error, not a silent rescale:
a float image in ``[0, 255]`` would otherwise give confident nonsense.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

#: Images per compiled call in :func:`predict_run` (the last chunk is padded, so one program serves all).
CHUNK = 1024


def probabilities_fn(model: Any, mean: Any, std: Any, ensemble: bool, *, target: str = "classes",
                     input_kind: str = "images", target_scaling: Any = None):
    """The inference function ``f(variables, x) -> probs`` of a run, pure and jittable.

    Args:
      model: the :class:`~mlwork.nn.Model`.
      mean, std: the run's normalisation (of intensities in ``[0, 1]`` for images; per-feature
        arrays for features; unused for tokens).
      ensemble: ``True`` when ``variables`` has a leading member axis; ``f`` then returns every
        member's outputs, shape ``(K, B, D)``.
      target: ``"classes"`` (softmax), ``"multilabel"`` (sigmoid) or ``"values"`` (the outputs).
      input_kind: ``"images"`` or ``"features"`` (standardised as ``(x - mean) / std``) or
        ``"tokens"`` (as they are).
      target_scaling: values only: ``(target_mean, target_std)`` per output; the values returned
        are ``target_mean + target_std * outputs`` (``None``: the outputs).

    Returns:
      ``f(variables, x)`` with ``x`` ``(B, *input_shape)`` (float32 in ``[0, 1]`` for images, raw
      float32 features, int32 tokens), returning float32 ``(B, D)``: probabilities or values
      (or ``(K, B, D)``).
    """
    if input_kind != "tokens":
        mean, inv_std = jnp.asarray(mean, jnp.float32), 1.0 / jnp.asarray(std, jnp.float32)

    def one(variables, x):
        if input_kind != "tokens":
            lead = (1,) * (x.ndim - mean.ndim)
            x = (x - mean.reshape(lead + mean.shape)) * inv_std.reshape(lead + inv_std.shape)
        out, _ = model.apply(variables, x, train=False)
        if target == "values":
            out = out.astype(jnp.float32).reshape(out.shape[0], -1)
            if target_scaling is not None:
                shift, scale = (jnp.asarray(v, jnp.float32) for v in target_scaling)
                out = out * scale[None] + shift[None]
            return out
        wanted = "softmax" if target == "classes" else "sigmoid"
        if model.output_activation == wanted:
            return out
        if model.output_activation is not None:
            raise ValueError(f"predict needs a model with logits or {wanted} outputs, not {model.output_activation}")
        return jax.nn.softmax(out, axis=-1) if target == "classes" else jax.nn.sigmoid(out)

    return jax.vmap(one, in_axes=(0, None)) if ensemble else one


def as_unit_interval(images: Any, argument: str = "images") -> np.ndarray:
    """``images`` as float32 intensities in ``[0, 1]`` under the module's input convention
    (integers: levels ``0..255``, divided by 255; floats: checked to lie in ``[0, 1]``).

    Raises:
      ValueError: a bool/complex/object dtype, integers outside ``[0, 255]``, floats outside
        ``[0, 1]`` or not finite.
    """
    x = np.asarray(images)
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"{argument} must be integer pixel levels (0-255) or floats in [0, 1], got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > 255):
            raise ValueError(f"{argument}: integer pixel levels must be in [0, 255], got [{x.min()}, {x.max()}]")
        return x.astype(np.float32) * np.float32(1.0 / 255.0)
    if x.size and not np.isfinite(x).all():
        raise ValueError(f"{argument} holds NaN or infinite values")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise ValueError(f"{argument}: float images must be intensities in [0, 1] (got [{x.min():g}, {x.max():g}]); "
                         "pass uint8 for pixel levels 0-255")
    return x.astype(np.float32)


def batch_shape(shape: tuple[int, ...], input_shape: tuple[int, ...], argument: str = "images",
                noun: str = "image") -> tuple[int, ...]:
    """The batch axes of an array of ``shape`` holding inputs of ``input_shape``: it must end
    with ``input_shape`` (or ``input_shape + (1,)``, a channel axis); ``noun`` names one input
    in the error."""
    n = len(input_shape)
    if tuple(shape[len(shape) - n:]) == tuple(input_shape):
        return tuple(shape[:len(shape) - n])
    if len(shape) > n and tuple(shape[len(shape) - n - 1:]) == (*input_shape, 1):
        return tuple(shape[:len(shape) - n - 1])
    raise ValueError(f"{argument} has shape {tuple(shape)}; expected (..., {', '.join(map(str, input_shape))}) "
                     f"— one {noun} {tuple(input_shape)} or a batch of them")


def as_model_input(loaded: Any, inputs: Any, argument: str = "images") -> np.ndarray:
    """``inputs`` as the run's inference function takes them: images in ``[0, 1]``
    (:func:`as_unit_interval`), raw features as float32 (finite), tokens as int32.

    Raises:
      ValueError: a dtype or value the run's input kind does not take.
    """
    kind = loaded.input_kind
    if kind == "images":
        return as_unit_interval(inputs, argument)
    x = np.asarray(inputs)
    if kind == "tokens":
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"{argument} must be integer tokens (the run trained on tokens); got dtype {x.dtype}")
        return x.astype(np.int32)
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{argument} must be real features (the run trained on float features); got dtype {x.dtype}")
    if x.size and not np.isfinite(x).all():
        raise ValueError(f"{argument} holds NaN or infinite values")
    return x.astype(np.float32)


def predict_run(loaded: Any, images: Any, *, per_member: bool = False) -> np.ndarray:
    """Class probabilities of a loaded run for ``images`` (or, for a regression, its values).

    For a run on other data than images the same call takes its inputs: raw float features
    (standardised with the training statistics recorded in ``config.json``) or integer tokens.
    A classification returns softmax probabilities (multi-hot labels: each label's sigmoid); a
    regression returns the predicted values, shape ``(*batch, *target_shape)``.

    .. math:: p(y \\mid x) = \\operatorname{softmax}(f_\\theta((x - \\mu) / \\sigma)),
       \\qquad p_\\text{ensemble} = \\frac{1}{K} \\sum_{k=1}^{K} p_k

    Args:
      loaded: a :class:`~mlwork.train.LoadedRun` (:func:`~mlwork.train.load_run`).
      images: ``(*batch, H, W)`` or ``(*batch, H, W, 1)`` with ``(H, W)`` the run's
        ``input_shape`` — one image or any batch shape. Integer dtypes (``uint8``) are pixel
        levels in ``[0, 255]``; floating dtypes are intensities in ``[0, 1]``. For a run on
        features or tokens, its inputs ``(*batch, *input_shape)`` (real numbers or integer
        tokens; errors then call them "inputs").
      per_member: for a population, return every member's probabilities instead of the mean.

    Returns:
      float32 numpy probabilities ``(*batch, classes)`` summing to 1 over the last axis; for a
      population the ensemble's mean softmax, or with ``per_member`` ``(K, *batch, classes)``.

    Raises:
      ValueError: a shape that does not end with the run's input shape, values outside the
        convention's range, ``per_member`` for a single model.

    Example:
      With a trained run, ``predict_run(load_run("runs/mnist-mlp"), images_uint8)``. Here a
      hand-made one whose logits are its biases, :math:`\\ln 9` for class 7 and 0 for the rest,
      so :math:`p_7 = 9 / (9 + 9) = 0.5` for any image:

      >>> import math
      >>> import jax.numpy as jnp, numpy as np
      >>> from mlwork import nn
      >>> from mlwork.train import LoadedRun, predict_run
      >>> variables = {"params": [{"W": jnp.zeros((10, 784)), "b": jnp.zeros(10).at[7].set(math.log(9))}],
      ...              "state": {}}
      >>> run = LoadedRun(nn.mlp([784, 10]), variables, {"mean": 0.1307, "std": 0.3081}, None, 0, "best")
      >>> probs = predict_run(run, np.zeros((2, 28, 28), np.uint8))
      >>> probs.shape, probs.dtype.name, round(float(probs[0, 7]), 4), probs.argmax(-1).tolist()
      ((2, 10), 'float32', 0.5, [7, 7])
      >>> predict_run(run, np.zeros((28, 28), np.float32)).shape  # one image, floats in [0, 1]
      (10,)
    """
    if per_member and not loaded.is_ensemble:
        raise ValueError("per_member needs a population run; this run holds a single model")
    # The argument is named for the deck's images; for features or tokens the errors say "inputs".
    argument, noun = ("images", "image") if loaded.input_kind == "images" else ("inputs", "example")
    x = as_model_input(loaded, images, argument)
    input_shape = loaded.input_shape
    batch = batch_shape(x.shape, input_shape, argument, noun)
    n = math.prod(batch)
    x = x.reshape((n, *input_shape))
    mean, std = loaded.mean_std
    f = _compiled(loaded.model, _key(mean), _key(std), loaded.is_ensemble, loaded.target, loaded.input_kind,
                  input_shape, loaded.target_scaling)
    chunk = min(CHUNK, max(n, 1))
    padded = -(-n // chunk) * chunk
    x = np.concatenate([x, np.zeros((padded - n, *input_shape), x.dtype)]) if padded > n else x
    parts = [np.asarray(f(loaded.variables, jnp.asarray(x[i:i + chunk]))) for i in range(0, padded, chunk)]
    axis = 1 if loaded.is_ensemble else 0
    probs = np.concatenate(parts, axis=axis) if parts else np.zeros(
        ((loaded.members,) if loaded.is_ensemble else ()) + (0, loaded.num_classes), np.float32)
    probs = probs[:, :n] if loaded.is_ensemble else probs[:n]
    out = loaded.target_shape if loaded.target == "values" else (probs.shape[-1],)
    if loaded.is_ensemble and not per_member:
        return probs.mean(axis=0).reshape((*batch, *out))
    lead = (probs.shape[0],) if loaded.is_ensemble else ()
    return probs.reshape((*lead, *batch, *out))


def _key(value: Any) -> Any:
    """A hashable form of a normalisation statistic (a scalar, or a nested list of per-feature values)."""
    if value is None or np.ndim(value) == 0:
        return value if value is None else float(value)
    return tuple(np.asarray(value, np.float64).reshape(-1).tolist())


@functools.lru_cache(maxsize=8)
def _compiled(model: Any, mean: Any, std: Any, ensemble: bool, target: str = "classes", input_kind: str = "images",
              input_shape: tuple[int, ...] = (), target_scaling: Any = None):
    if isinstance(mean, tuple):
        mean, std = np.reshape(mean, input_shape), np.reshape(std, input_shape)
    return jax.jit(probabilities_fn(model, mean, std, ensemble, target=target, input_kind=input_kind,
                                    target_scaling=target_scaling))
