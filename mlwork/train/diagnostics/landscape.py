r"""The deck's "loss landscape", made visible: the cost :math:`J(\theta)` along a line and on a
plane through parameter space.

* :func:`loss_along_line` — linear interpolation between two parameter sets (Goodfellow et al.,
  2015), e.g. from the initial to the trained weights:
  :math:`\theta(\alpha) = (1-\alpha)\,\theta_0 + \alpha\,\theta_1`.
* :func:`loss_surface` — a 2-D slice through :math:`\theta^*` along two directions,
  :math:`J(\theta^* + \alpha\,\delta + \beta\,\eta)`, with :func:`filter_normalized_direction`
  making random directions comparable across layers and networks (Li et al., "Visualizing the
  Loss Landscape of Neural Nets", NeurIPS 2018).

Each evaluates all its points in one compiled program: ``vmap`` over the points, in chunks of
``chunk`` points (``lax.map`` with ``batch_size``) so that memory stays bounded. ``loss_fn``
takes ``(params, *args)``; the data travel in ``args`` as arguments of the program (never as
constants folded into it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from mlwork._static import this_call

Array = jax.Array


def interpolate(params_a: Any, params_b: Any, alpha: Array | float) -> Any:
    r""":math:`(1-\alpha)\,\theta_a + \alpha\,\theta_b`, leaf by leaf (``alpha`` a scalar).

    Args:
      params_a: :math:`\theta_a`, a pytree of arrays.
      params_b: :math:`\theta_b`, the same structure and shapes.
      alpha: :math:`\alpha`, a scalar (0 gives ``params_a``, 1 ``params_b``).

    Returns:
      The interpolated pytree.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.train.diagnostics import interpolate
      >>> interpolate({"w": jnp.array([0.0, 2.0])}, {"w": jnp.array([4.0, 2.0])}, 0.25)["w"].tolist()
      [1.0, 2.0]
    """
    return jax.tree.map(lambda a, b: a + alpha * (b - a), params_a, params_b)


def _map(f: Callable[[Array], Array], xs: Array, chunk: int | None) -> Array:
    if chunk is None or chunk >= xs.shape[0]:
        return jax.vmap(f)(xs)
    return jax.lax.map(f, xs, batch_size=chunk)


def _check_points(points: Any, name: str, ndim: int) -> Array:
    points = jnp.asarray(points, jnp.float32)
    if points.ndim != ndim or points.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty {ndim}-D array, got shape {points.shape}")
    return points


def _check_chunk(chunk: int | None) -> int | None:
    if chunk is not None and (isinstance(chunk, bool) or int(chunk) != chunk or chunk < 1):
        raise ValueError(f"chunk must be a positive number of points or None, got {chunk!r}")
    return None if chunk is None else int(chunk)


@functools.partial(jax.jit, static_argnums=(0, 5))
def _line(loss_fn, params_a, params_b, alphas, args, chunk):
    return _map(lambda a: loss_fn(interpolate(params_a, params_b, a), *args), alphas, chunk)


def loss_along_line(loss_fn: Callable[..., Array], params_a: Any, params_b: Any, alphas: Any, *args: Any,
                    chunk: int | None = None) -> Array:
    r"""The loss along the straight line between two parameter sets:

    .. math:: J\big((1-\alpha)\,\theta_a + \alpha\,\theta_b\big), \qquad \alpha \in \texttt{alphas},

    (:math:`\alpha = 0` is ``params_a``, :math:`1` is ``params_b``; values outside
    :math:`[0, 1]` extrapolate). ``loss_fn(params, *args)`` returns a scalar or any array (the
    results stack along a leading axis of ``len(alphas)``). One jitted program: all points
    vmapped, ``chunk`` at a time if given.

    Reference: Goodfellow, Vinyals & Saxe, "Qualitatively characterizing neural network
    optimization problems" (ICLR 2015).

    Args:
      loss_fn: ``loss_fn(params, *args) -> array``.
      params_a: :math:`\theta_a`.
      params_b: :math:`\theta_b`, the same pytree structure.
      alphas: the points :math:`\alpha`, a 1-D array.
      *args: passed to ``loss_fn`` (e.g. a batch).
      chunk: points vmapped at a time, >= 1; ``None``: all at once.

    Returns:
      ``(len(alphas), ...)``, the loss at each point.

    Raises:
      ValueError: the two parameter sets differ in structure, ``alphas`` not a non-empty 1-D array, a bad
        ``chunk``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.train.diagnostics import loss_along_line
      >>> loss = lambda p: jnp.sum(p["w"] ** 2)
      >>> loss_along_line(loss, {"w": jnp.array(0.0)}, {"w": jnp.array(2.0)}, jnp.array([0.0, 0.5, 1.0])).tolist()
      [0.0, 1.0, 4.0]
    """
    if jax.tree.structure(params_a) != jax.tree.structure(params_b):
        raise ValueError("params_a and params_b must have the same pytree structure")
    return _line(this_call(loss_fn), params_a, params_b, _check_points(alphas, "alphas", 1), tuple(args),
                 _check_chunk(chunk))


def _filter_axis(path: tuple, leaf: Array) -> int:
    """The axis that indexes filters (output units): axis 0 of the deck's ``W`` (``(n_out,
    n_in)``), the last axis of everything else (Flax ``kernel``: ``(..., in, out)``)."""
    last = path[-1] if path else None
    return 0 if getattr(last, "key", None) == "W" else leaf.ndim - 1


def filter_normalized_direction(key: Array, params: Any, *,
                                filter_axis: Callable[[tuple, Array], int] | None = None,
                                eps: float = 1e-10) -> Any:
    r"""A random direction in parameter space, scaled filter by filter to the parameters
    (Li et al., 2018, section 4):

    .. math:: d_{i,j} \leftarrow \frac{d_{i,j}}{\|d_{i,j}\|}\,\|\theta_{i,j}\|,
              \qquad d \sim \mathcal N(0, I),

    for filter :math:`j` of layer :math:`i` (Frobenius norms). A filter is one output unit:
    a row of the deck's ``W`` (``(n_out, n_in)``), one output channel of a convolution kernel,
    one column of a Flax ``Dense`` kernel — ``filter_axis(path, leaf)`` says which axis indexes
    them (default: axis 0 for leaves named ``W``, the last axis otherwise). Normalising per
    filter removes the scale invariance of ReLU/BatchNorm networks, so plots of different
    networks can be compared. Parameters with fewer than two axes (biases, BatchNorm scale and
    shift) get a zero direction: they have no filters and the slice leaves them fixed.

    Args:
      key: a PRNG key.
      params: :math:`\theta`, the pytree the direction is for.
      filter_axis: ``filter_axis(path, leaf) -> axis`` indexing the filters of a leaf.
      eps: added to :math:`\|d_{i,j}\|` so a zero draw does not divide by zero.

    Returns:
      A pytree like ``params``: each filter with the norm of its parameters' filter; zeros for
      leaves with fewer than two axes.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork.train.diagnostics import filter_normalized_direction
      >>> params = {"W": jnp.array([[3.0, 4.0], [0.0, 1.0]]), "b": jnp.array([0.5, 0.5])}
      >>> d = filter_normalized_direction(jax.random.key(0), params)
      >>> [round(float(n), 4) for n in jnp.linalg.norm(d["W"], axis=1)], d["b"].tolist()  # rows: 5 and 1
      ([5.0, 1.0], [0.0, 0.0])
    """
    return _directions(filter_axis or _filter_axis, float(eps), key, params)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _directions(axis_of, eps, key, params):
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, max(len(leaves), 1))
    out = []
    for (path, p), k in zip(leaves, keys, strict=False):
        p = jnp.asarray(p)
        if p.ndim < 2:
            out.append(jnp.zeros_like(p))
            continue
        axis = axis_of(path, p) % p.ndim
        others = tuple(a for a in range(p.ndim) if a != axis)
        d = jax.random.normal(k, p.shape, p.dtype)
        d_norm = jnp.sqrt(jnp.sum(jnp.square(d), axis=others, keepdims=True))
        p_norm = jnp.sqrt(jnp.sum(jnp.square(p), axis=others, keepdims=True))
        out.append(d * (p_norm / (d_norm + eps)))
    return jax.tree_util.tree_unflatten(treedef, out)


@functools.partial(jax.jit, static_argnums=(0, 6))
def _plane(loss_fn, params, d1, d2, coords, args, chunk):
    def at(ab):
        moved = jax.tree.map(lambda p, u, v: p + ab[0] * u + ab[1] * v, params, d1, d2)
        return loss_fn(moved, *args)

    return _map(at, coords, chunk)


def loss_surface(loss_fn: Callable[..., Array], params: Any, direction_1: Any, direction_2: Any, alphas: Any,
                 betas: Any, *args: Any, chunk: int | None = 64) -> Array:
    r"""The loss on the plane through ``params`` spanned by two directions:

    .. math:: S_{kl} = J(\theta^* + \alpha_l\,\delta + \beta_k\,\eta),

    returned with shape ``(len(betas), len(alphas), ...)`` (rows follow :math:`\beta`, columns
    :math:`\alpha`, ready for ``contour(alphas, betas, S)``). ``loss_fn(params, *args)``; all
    ``len(alphas)·len(betas)`` points in one jitted program, ``chunk`` points vmapped at a time
    (``None``: all at once, which holds that many copies of the parameters in memory).

    Reference: Li, Xu, Taylor, Studer & Goldstein, "Visualizing the Loss Landscape of Neural
    Nets" (NeurIPS 2018), with directions from :func:`filter_normalized_direction`.

    Args:
      loss_fn: ``loss_fn(params, *args) -> array``.
      params: :math:`\theta^*`, the centre.
      direction_1: :math:`\delta`, the structure of ``params``.
      direction_2: :math:`\eta`, likewise.
      alphas: the coordinates along :math:`\delta`, a 1-D array.
      betas: the coordinates along :math:`\eta`, a 1-D array.
      *args: passed to ``loss_fn``.
      chunk: points vmapped at a time, >= 1; ``None``: all at once.

    Returns:
      ``(len(betas), len(alphas), ...)``.

    Raises:
      ValueError: a direction whose structure differs from ``params``, ``alphas`` or ``betas``
        not non-empty 1-D arrays, a bad ``chunk``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork.train.diagnostics import loss_surface
      >>> loss = lambda p: jnp.sum(p["w"] ** 2)
      >>> params = {"w": jnp.array([1.0, 0.0])}
      >>> e1, e2 = {"w": jnp.array([1.0, 0.0])}, {"w": jnp.array([0.0, 1.0])}
      >>> loss_surface(loss, params, e1, e2, jnp.array([-1.0, 0.0]), jnp.array([0.0, 2.0])).tolist()
      [[0.0, 1.0], [4.0, 5.0]]
    """
    for name, d in (("direction_1", direction_1), ("direction_2", direction_2)):
        if jax.tree.structure(d) != jax.tree.structure(params):
            raise ValueError(f"{name} must have the pytree structure of params")
    alphas, betas = _check_points(alphas, "alphas", 1), _check_points(betas, "betas", 1)
    grid_b, grid_a = jnp.meshgrid(betas, alphas, indexing="ij")
    coords = jnp.stack([grid_a.reshape(-1), grid_b.reshape(-1)], axis=1)
    values = _plane(this_call(loss_fn), params, direction_1, direction_2, coords, tuple(args), _check_chunk(chunk))
    return values.reshape((betas.shape[0], alphas.shape[0]) + values.shape[1:])
