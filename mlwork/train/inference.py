"""Class probabilities from a loaded run: :func:`predict`, and the pure function it compiles.

**Input convention** (the same for :func:`predict`, ``python -m experiments.predict`` and an
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

#: Images per compiled call in :func:`predict` (the last chunk is padded, so one program serves all).
CHUNK = 1024


def probabilities_fn(model: Any, mean: float, std: float, ensemble: bool):
    """The inference function ``f(variables, x) -> probs`` of a run, pure and jittable.

    Args:
      model: the :class:`~mlwork.nn.Model`.
      mean, std: the run's normalisation (of intensities in ``[0, 1]``).
      ensemble: ``True`` when ``variables`` has a leading member axis; ``f`` then returns every
        member's probabilities, shape ``(K, B, classes)``.

    Returns:
      ``f(variables, x)`` with ``x`` float32 ``(B, *input_shape)`` in ``[0, 1]``, returning
      float32 softmax probabilities ``(B, classes)`` (or ``(K, B, classes)``).
    """
    inv_std = 1.0 / std

    def one(variables, x):
        out, _ = model.apply(variables, (x - mean) * inv_std, train=False)
        if model.output_activation == "softmax":
            return out
        if model.output_activation is not None:
            raise ValueError(f"predict needs a model with logits or softmax outputs, not {model.output_activation}")
        return jax.nn.softmax(out, axis=-1)

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


def batch_shape(shape: tuple[int, ...], input_shape: tuple[int, ...], argument: str = "images") -> tuple[int, ...]:
    """The batch axes of an array of ``shape`` holding images of ``input_shape``: it must end
    with ``input_shape`` (or ``input_shape + (1,)``, a channel axis)."""
    n = len(input_shape)
    if tuple(shape[len(shape) - n:]) == tuple(input_shape):
        return tuple(shape[:len(shape) - n])
    if len(shape) > n and tuple(shape[len(shape) - n - 1:]) == (*input_shape, 1):
        return tuple(shape[:len(shape) - n - 1])
    raise ValueError(f"{argument} has shape {tuple(shape)}; expected (..., {', '.join(map(str, input_shape))}) "
                     f"— one image {tuple(input_shape)} or a batch of them")


def predict(loaded: Any, images: Any, *, per_member: bool = False) -> np.ndarray:
    """Class probabilities of a loaded run for ``images``.

    .. math:: p(y \\mid x) = \\operatorname{softmax}(f_\\theta((x - \\mu) / \\sigma)),
       \\qquad p_\\text{ensemble} = \\frac{1}{K} \\sum_{k=1}^{K} p_k

    Args:
      loaded: a :class:`~mlwork.train.LoadedRun` (:func:`~mlwork.train.load_run`).
      images: ``(*batch, H, W)`` or ``(*batch, H, W, 1)`` with ``(H, W)`` the run's
        ``input_shape`` — one image or any batch shape. Integer dtypes (``uint8``) are pixel
        levels in ``[0, 255]``; floating dtypes are intensities in ``[0, 1]``.
      per_member: for a population, return every member's probabilities instead of the mean.

    Returns:
      float32 numpy probabilities ``(*batch, classes)`` summing to 1 over the last axis; for a
      population the ensemble's mean softmax, or with ``per_member`` ``(K, *batch, classes)``.

    Raises:
      ValueError: a shape that does not end with the run's input shape, values outside the
        convention's range, ``per_member`` for a single model.

    Example:
      With a trained run, ``predict(load_run("runs/mnist-mlp"), images_uint8)``. Here a
      hand-made one whose logits are its biases, :math:`\\ln 9` for class 7 and 0 for the rest,
      so :math:`p_7 = 9 / (9 + 9) = 0.5` for any image:

      >>> import math
      >>> import jax.numpy as jnp, numpy as np
      >>> from mlwork import nn
      >>> from mlwork.train import LoadedRun, predict
      >>> variables = {"params": [{"W": jnp.zeros((10, 784)), "b": jnp.zeros(10).at[7].set(math.log(9))}],
      ...              "state": {}}
      >>> run = LoadedRun(nn.mlp([784, 10]), variables, {"mean": 0.1307, "std": 0.3081}, None, 0, "best")
      >>> probs = predict(run, np.zeros((2, 28, 28), np.uint8))
      >>> probs.shape, probs.dtype.name, round(float(probs[0, 7]), 4), probs.argmax(-1).tolist()
      ((2, 10), 'float32', 0.5, [7, 7])
      >>> predict(run, np.zeros((28, 28), np.float32)).shape  # one image, floats in [0, 1]
      (10,)
    """
    if per_member and not loaded.is_ensemble:
        raise ValueError("per_member needs a population run; this run holds a single model")
    x = as_unit_interval(images)
    input_shape = loaded.input_shape
    batch = batch_shape(x.shape, input_shape)
    n = math.prod(batch)
    x = x.reshape((n, *input_shape))
    mean, std = loaded.mean_std
    f = _compiled(loaded.model, mean, std, loaded.is_ensemble)
    chunk = min(CHUNK, max(n, 1))
    padded = -(-n // chunk) * chunk
    x = np.concatenate([x, np.zeros((padded - n, *input_shape), np.float32)]) if padded > n else x
    parts = [np.asarray(f(loaded.variables, jnp.asarray(x[i:i + chunk]))) for i in range(0, padded, chunk)]
    axis = 1 if loaded.is_ensemble else 0
    probs = np.concatenate(parts, axis=axis) if parts else np.zeros(
        ((loaded.members,) if loaded.is_ensemble else ()) + (0, loaded.num_classes), np.float32)
    probs = probs[:, :n] if loaded.is_ensemble else probs[:n]
    if loaded.is_ensemble and not per_member:
        return probs.mean(axis=0).reshape(*batch, probs.shape[-1])
    lead = (probs.shape[0],) if loaded.is_ensemble else ()
    return probs.reshape(*lead, *batch, probs.shape[-1])


@functools.lru_cache(maxsize=8)
def _compiled(model: Any, mean: float, std: float, ensemble: bool):
    return jax.jit(probabilities_fn(model, mean, std, ensemble))
