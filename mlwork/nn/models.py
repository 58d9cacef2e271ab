r"""Models as pairs of pure functions (deck sections 9-11).

A model is ``Model(init, apply)``:

* ``init(key, input_shape) -> variables`` with ``variables = {"params": ..., "state": ...}``;
* ``apply(variables, x, *, train=False, key=None) -> (outputs, new_state)``.

``state`` holds non-trainable model state such as BatchNorm running statistics (empty for an
MLP). Nothing is hidden in objects: the same pair runs under ``jit``, ``vmap`` and ``grad``.

The deck's own networks are written here in its notation: for layer :math:`l`,

.. math:: z^{[l]} = W^{[l]} a^{[l-1]} + b^{[l]}, \qquad a^{[l]} = \sigma_l(z^{[l]}),

with :math:`W^{[l]} \in \mathbb{R}^{n_l \times n_{l-1}}` and :math:`a^{[0]} = x`. A batch is
stored one example per row, so the batched layer is ``Z = A Wᵀ + b``. Layers that Flax does well
(convolution, BatchNorm) come from ``flax.linen`` through :func:`from_flax`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mlwork._validate import check_choice, check_int, check_no_nan, fail
from mlwork.nn.activations import check_activation, get_activation
from mlwork.nn.layers import batch_norm as batch_norm_fn
from mlwork.nn.layers import batch_norm_init, check_rate
from mlwork.nn.layers import dropout as dropout_fn

Array = jax.Array
Variables = dict[str, Any]
#: The Flax collection a Linen module sows its hidden activations into (see :func:`from_flax`).
HIDDEN_COLLECTION = "hidden"


class Model(NamedTuple):
    """A model as two pure functions.

    Attributes:
      init: ``init(key, input_shape) -> {"params": ..., "state": ...}``. ``input_shape`` is the
        shape of one example (no batch axis).
      apply: ``apply(variables, x, *, train=False, key=None) -> (outputs, new_state)``.
      output_activation: what ``apply`` puts on its outputs: ``None`` for raw scores (logits or
        regression values), ``"sigmoid"`` or ``"softmax"`` for probabilities. Losses and the
        debugging checklist read it to match the loss to the output.
      hidden: optionally ``hidden(variables, x) -> {name: activations}``, the post-activation
        hidden representations in evaluation mode, features on the last axis (one entry per
        hidden layer, in order). ``None`` when the model does not expose them. The training
        diagnostics read it (e.g. the fraction of dead ReLU units).
    """

    init: Callable[..., Variables]
    apply: Callable[..., tuple[Array, Any]]
    output_activation: str | None = None
    hidden: Callable[[Variables, Any], dict[str, Array]] | None = None


#: The widest layer (and the longest axis) a model here may have: array axes are int32-indexed.
MAX_WIDTH = 2**31 - 1


def _check_variables(variables: Any) -> None:
    """``variables`` must be what ``init`` returned: a mapping with ``"params"`` (and ``"state"``).
    Its parameters alone (``variables["params"]``, a list for the MLP) are the usual mistake."""
    if isinstance(variables, Mapping) and "params" in variables:
        return
    if isinstance(variables, Mapping):
        got = f"a dict with keys {sorted(map(str, variables))}"
    else:
        got = f"a {type(variables).__name__}"
    fail("variables", "the dict init returns, {'params': ..., 'state': ...} (pass all of it, not "
         "variables['params'])", got)


def _check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    try:
        sizes = tuple(sizes)
    except TypeError:
        fail("sizes", "a sequence of layer widths", repr(sizes))
    if len(sizes) < 2:
        fail("sizes", "at least the input and output widths, e.g. [784, 256, 10]", repr(sizes))
    return tuple(check_int(n, f"sizes[{i}]", minimum=1, maximum=MAX_WIDTH) for i, n in enumerate(sizes))


def _check_input_shape(input_shape: Sequence[int] | int | None, n_inputs: int) -> tuple[int, ...]:
    if input_shape is None:
        return (n_inputs,)
    if isinstance(input_shape, (int, np.integer)):
        input_shape = (input_shape,)
    input_shape = tuple(check_int(d, f"input_shape[{i}]", minimum=1, maximum=MAX_WIDTH)
                        for i, d in enumerate(input_shape))
    if math.prod(input_shape) != n_inputs:
        fail("input_shape", f"a shape of {n_inputs} features (sizes[0])",
             f"{input_shape}, {math.prod(input_shape)} features")
    return input_shape


def _flatten_features(x: Array, n_inputs: int, argument: str = "x") -> Array:
    """Reshape ``x`` to ``(*batch, n_inputs)`` by flattening the fewest trailing axes whose
    product is ``n_inputs`` (so ``(784,)``, ``(B, 784)``, ``(28, 28)`` and ``(B, 28, 28, 1)`` all
    work for ``n_inputs = 784``)."""
    shape = tuple(np.shape(x))
    for k in range(1, len(shape) + 1):
        if math.prod(shape[-k:]) == n_inputs:
            return jnp.reshape(x, shape[:-k] + (n_inputs,))
        if math.prod(shape[-k:]) > n_inputs:
            break
    fail(argument, f"an array whose trailing axes hold {n_inputs} features in all, e.g. ({n_inputs},) "
         f"for one example or (batch, {n_inputs}) for a batch", f"shape {shape}")


#: The compute dtypes a network's forward pass may use (parameters stay float32 either way).
COMPUTE_DTYPES = ("float32", "bfloat16")


def check_compute_dtype(compute_dtype: Any, name: str = "compute_dtype") -> jnp.dtype:
    """A network's compute dtype: one of :data:`COMPUTE_DTYPES`.

    Args:
      compute_dtype: a dtype or its name (``"float32"``, ``jnp.bfloat16``, ...).
      name: the argument's name in the error message.

    Returns:
      The NumPy dtype.

    Raises:
      ValueError: not float32 or bfloat16.

    Example:
      >>> from mlwork.nn.models import check_compute_dtype
      >>> check_compute_dtype("bfloat16").name
      'bfloat16'
    """
    try:
        dtype = jnp.dtype(compute_dtype)
    except TypeError:
        dtype = None
    check_choice(getattr(dtype, "name", compute_dtype), name, COMPUTE_DTYPES)
    return dtype


def _as_float_input(x) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def _init_dense(key: Array, n_out: int, n_in: int, activation: str) -> dict[str, Array]:
    # He initialisation for ReLU, Glorot (Xavier) for the saturating activations.
    if activation == "relu":
        init = jax.nn.initializers.he_normal(in_axis=1, out_axis=0)
    else:
        init = jax.nn.initializers.glorot_normal(in_axis=1, out_axis=0)
    return {"W": init(key, (n_out, n_in), jnp.float32), "b": jnp.zeros((n_out,), jnp.float32)}


def dense(layer: dict[str, Array], a: Array) -> Array:
    r"""A fully connected layer's pre-activation (deck section 10):

    .. math:: z = W a + b, \qquad Z = A W^\top + b \text{ for a batch (one example per row)}

    Args:
      layer: ``{"W": (n_out, n_in), "b": (n_out,)}`` (``"b"`` may be absent: a layer followed by
        BatchNorm has none).
      a: one example ``(n_in,)`` or a batch ``(..., n_in)``.

    Returns:
      :math:`z`, shape ``(n_out,)`` or ``(..., n_out)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import nn
      >>> nn.dense({"W": jnp.array([[1.0, 2.0]]), "b": jnp.array([0.5])}, jnp.array([3.0, 4.0])).tolist()
      [11.5]
    """
    z = a @ layer["W"].T
    if "b" not in layer:  # a layer followed by BatchNorm has no bias (β plays its part)
        return z
    return z + jnp.broadcast_to(layer["b"], z.shape)


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    output_activation: str | None = None,
    dropout: float = 0.0,
    batch_norm: bool = False,
    compute_dtype: Any = jnp.float32,
) -> Model:
    r"""A multi-layer perceptron in the deck's notation.

    ``sizes = [n_0, n_1, ..., n_L]`` lists the input width and every layer's width, so
    ``mlp([4, 5, 4, 2])`` has :math:`5·4+5 + 4·5+4 + 2·4+2 = 59` parameters and
    ``mlp([784, 256, 128, 10], dropout=0.2)`` is the deck's MNIST classifier.

    Params are a list of layers ``[{"W": W^[1], "b": b^[1]}, ...]`` with
    ``W^[l]`` of shape ``(n_l, n_{l-1})``. Hidden layers use ``activation``; the output layer
    uses ``output_activation`` (``None``: logits / linear). Inverted dropout with probability
    ``dropout`` follows every hidden activation when ``train=True`` (the ``key`` is then
    required); evaluation is deterministic.

    With ``batch_norm=True`` every hidden layer is ``z = W a`` → BatchNorm (learnable ``gamma``,
    ``beta``; running ``mean``/``var`` in ``variables["state"]["batch_norm"]``) → activation, the
    deck's "after linear, before ReLU" placement; the bias is dropped there since β replaces it.

    ``compute_dtype="bfloat16"`` is mixed precision for accelerators: the parameters (and so the
    optimizer state and the gradients) stay float32; the forward pass casts them and the input
    to bfloat16, BatchNorm runs in float32, and the outputs come back as float32, so the loss is
    computed in float32. On a CPU bfloat16 is emulated and slower.

    Args:
      sizes: ``[n_0, ..., n_L]``, at least two positive integer widths.
      activation: the hidden activation's name (not ``"softmax"``).
      output_activation: ``None`` (logits or values), ``"sigmoid"`` or ``"softmax"`` (or any
        name of :data:`ACTIVATIONS`).
      dropout: the probability of dropping a hidden unit in training, in ``[0, 1)``.
      batch_norm: BatchNorm after every hidden layer's linear map.
      compute_dtype: ``"float32"`` or ``"bfloat16"``.

    Returns:
      A :class:`Model`; ``apply`` takes ``(n_0,)``, ``(batch, n_0)`` or any trailing axes with
      :math:`n_0` features in all (``(B, 28, 28)`` for ``n_0 = 784``).

    Raises:
      ValueError: bad ``sizes`` (naming ``sizes[i]``), an unknown activation, ``"softmax"`` as
        the hidden activation, ``dropout`` outside ``[0, 1)``, an unknown ``compute_dtype``;
        when applied: inputs of the wrong width, NaN inputs, no ``key`` for dropout in training.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork import nn
      >>> model = nn.mlp([4, 5, 4, 2], output_activation="softmax")
      >>> variables = model.init(jax.random.key(0), (4,))
      >>> probs, _ = model.apply(variables, jnp.ones((3, 4)))
      >>> probs.shape, nn.count_params(variables), round(float(probs.sum()), 4)
      ((3, 2), 59, 3.0)
    """
    sizes = _check_sizes(sizes)
    hidden = check_activation(activation, "activation")
    if hidden == "softmax":
        fail("activation", "elementwise ('softmax' is only meaningful as an output_activation)", repr(activation))
    output = check_activation(output_activation, "output_activation")
    rate = check_rate(dropout, "dropout")
    dtype = check_compute_dtype(compute_dtype)
    sigma, sigma_out = get_activation(hidden), get_activation(output)
    n_layers = len(sizes) - 1

    def init(key: Array, input_shape: Sequence[int] | int | None = None) -> Variables:
        _check_input_shape(input_shape, sizes[0])
        keys = jax.random.split(key, n_layers)
        layers = [
            _init_dense(keys[l], sizes[l + 1], sizes[l], hidden if l < n_layers - 1 else output)
            for l in range(n_layers)
        ]
        if not batch_norm:
            return {"params": layers, "state": {}}
        stats = []
        for l in range(n_layers - 1):
            bn_params, bn_state = batch_norm_init(sizes[l + 1])
            layers[l] = {"W": layers[l]["W"], **bn_params}
            stats.append(bn_state)
        return {"params": layers, "state": {"batch_norm": stats}}

    def forward(variables: Variables, x, train: bool, key: Array | None):
        _check_variables(variables)
        params = variables["params"]
        if len(params) != n_layers:
            fail("variables['params']", f"{n_layers} layers for this mlp", f"{len(params)} layers")
        a = _flatten_features(_as_float_input(x), sizes[0])
        check_no_nan(a, "x")
        a = a.astype(dtype)
        if train and rate > 0.0 and key is None:
            fail("key", "a PRNG key when train=True and dropout > 0", None)
        state = variables.get("state", {})
        new_stats, hidden_acts = [], {}
        for l, layer in enumerate(params):
            z = dense({k: layer[k].astype(dtype) for k in ("W", "b") if k in layer}, a)
            if l < n_layers - 1:
                if batch_norm:  # in float32: its statistics and parameters stay float32
                    z, stats = batch_norm_fn(z.reshape(-1, z.shape[-1]).astype(jnp.float32), layer,
                                             state["batch_norm"][l], train=train)
                    z = z.reshape(a.shape[:-1] + z.shape[-1:]).astype(dtype)
                    new_stats.append(stats)
                a = hidden_acts[f"layer_{l + 1}"] = sigma(z)
                if rate > 0.0 and train:
                    a = dropout_fn(a, rate, key=jax.random.fold_in(key, l), train=True)
            else:
                a = sigma_out(z.astype(jnp.float32))
        return a, ({**state, "batch_norm": new_stats} if batch_norm else state), hidden_acts

    def apply(variables: Variables, x, *, train: bool = False, key: Array | None = None):
        out, new_state, _ = forward(variables, x, train, key)
        return out, new_state

    def hidden_fn(variables: Variables, x) -> dict[str, Array]:
        """``{"layer_1": a^[1], ...}``: every hidden layer's activations, evaluation mode."""
        return forward(variables, x, False, None)[2]

    return Model(init, apply, None if output == "identity" else output, hidden_fn)


def perceptron(n_inputs: int, activation: str = "sigmoid") -> Model:
    r"""Rosenblatt's perceptron, one neuron (deck section 9):

    .. math:: y = \sigma(\mathbf{w}^\top \mathbf{x} + b)

    Args:
      n_inputs: the number of inputs, a positive integer.
      activation: the neuron's activation name (``"sigmoid"`` for a probability; not
        ``"softmax"``).

    Returns:
      A :class:`Model` with params ``{"w": (n_inputs,), "b": ()}``; the output has the batch
      shape of ``x`` (one number per example).

    Raises:
      ValueError: ``n_inputs`` not a positive integer, an unknown activation or ``"softmax"``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from mlwork import nn
      >>> model = nn.perceptron(3)
      >>> y, _ = model.apply({"params": {"w": jnp.array([1.0, -1.0, 0.5]), "b": jnp.array(0.0)}},
      ...                    jnp.array([2.0, 2.0, 0.0]))
      >>> float(y)  # sigmoid(0)
      0.5
    """
    n_inputs = check_int(n_inputs, "n_inputs", minimum=1, maximum=MAX_WIDTH)
    act = check_activation(activation, "activation")
    if act == "softmax":
        fail("activation", "elementwise for a single neuron (use 'sigmoid' for a probability)", repr(activation))
    sigma = get_activation(act)

    def init(key: Array, input_shape: Sequence[int] | int | None = None) -> Variables:
        _check_input_shape(input_shape, n_inputs)
        w = jax.random.normal(key, (n_inputs,), jnp.float32) / math.sqrt(n_inputs)  # LeCun normal
        return {"params": {"w": w, "b": jnp.zeros((), jnp.float32)}, "state": {}}

    def apply(variables: Variables, x, *, train: bool = False, key: Array | None = None):
        del train, key  # a perceptron has no stochastic layers
        _check_variables(variables)
        p = variables["params"]
        x = _flatten_features(_as_float_input(x), n_inputs)
        check_no_nan(x, "x")
        return sigma(x @ p["w"] + p["b"]), variables.get("state", {})

    return Model(init, apply, None if act == "identity" else act)


def count_params(variables_or_params: Any) -> int:
    """The number of scalar parameters.

    Args:
      variables_or_params: ``variables`` (a dict with ``"params"``: the trainable ``params``
        are counted, not the state) or any pytree (all of its array leaves are counted).

    Returns:
      The count, a Python ``int``.

    Example:
      >>> import jax
      >>> from mlwork import nn
      >>> nn.count_params(nn.mlp([4, 5, 4, 2]).init(jax.random.key(0)))  # the deck's 59
      59
    """
    tree = variables_or_params
    if isinstance(tree, dict) and "params" in tree:
        tree = tree["params"]
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(tree)))


def from_flax(module: Any, *, output_activation: str | None = None, train_arg: str | None = "train",
              input_dtype: Any = jnp.float32) -> Model:
    """Wrap any ``flax.linen.Module`` as a :class:`Model`.

    ``init(key, input_shape)`` initialises the module on a dummy batch of one example;
    non-``params`` collections (e.g. ``batch_stats``) become ``variables["state"]``.
    ``apply(variables, x, *, train, key)`` takes a batch (Linen layers such as ``Conv`` need the
    batch axis), passes ``train`` to the module's ``__call__`` as the keyword ``train_arg`` (set
    ``train_arg=None`` for modules without one), uses ``key`` for the ``"dropout"`` RNG stream,
    and returns the updated state collections in training mode.

    ``hidden(variables, x)`` returns what the module sows into the ``"hidden"`` collection
    (``self.sow("hidden", name, activations)``) in evaluation mode, keyed by the sow path
    (``{}`` if it sows nothing); that collection is never part of ``variables``.

    Args:
      module: a ``flax.linen.Module``.
      output_activation: what the module puts on its outputs (``None``: raw scores).
      train_arg: the keyword of ``__call__`` that switches training mode, or ``None``.
      input_dtype: the dtype of the dummy batch ``init`` traces the module with.

    Returns:
      A :class:`Model` whose ``init`` takes ``(key, input_shape)`` (one example's shape).

    Raises:
      ValueError: an unknown ``output_activation``.

    Example:
      >>> import flax.linen as fnn, jax, jax.numpy as jnp
      >>> from mlwork import nn
      >>> model = nn.from_flax(fnn.Dense(3), train_arg=None)
      >>> variables = model.init(jax.random.key(0), (4,))
      >>> model.apply(variables, jnp.ones((2, 4)))[0].shape, nn.count_params(variables)
      ((2, 3), 15)
    """
    output = check_activation(output_activation, "output_activation")
    output = None if output == "identity" else output

    def _kwargs(train: bool) -> dict[str, bool]:
        return {train_arg: train} if train_arg else {}

    def init(key: Array, input_shape: Sequence[int]) -> Variables:
        input_shape = tuple(int(d) for d in input_shape)
        k_params, k_dropout = jax.random.split(key)
        dummy = jnp.zeros((1, *input_shape), input_dtype)
        variables = module.init({"params": k_params, "dropout": k_dropout}, dummy, **_kwargs(False))
        variables = dict(variables)
        variables.pop(HIDDEN_COLLECTION, None)
        params = variables.pop("params", {})
        return {"params": params, "state": variables}

    def apply(variables: Variables, x, *, train: bool = False, key: Array | None = None):
        _check_variables(variables)
        state = dict(variables.get("state", {}))
        flax_vars = {"params": variables["params"], **state}
        rngs = {"dropout": key} if key is not None else {}
        if train and state:
            out, updates = module.apply(flax_vars, x, rngs=rngs, mutable=list(state), **_kwargs(True))
            return out, {**state, **dict(updates)}
        out = module.apply(flax_vars, x, rngs=rngs, **_kwargs(train))
        return out, state

    def hidden(variables: Variables, x) -> dict[str, Array]:
        _check_variables(variables)
        flax_vars = {"params": variables["params"], **dict(variables.get("state", {}))}
        _, sown = module.apply(flax_vars, x, mutable=[HIDDEN_COLLECTION], **_kwargs(False))
        leaves = jax.tree_util.tree_flatten_with_path(dict(sown).get(HIDDEN_COLLECTION, {}))[0]
        return {"/".join(str(getattr(k, "key", k)) for k in path if not isinstance(k, jax.tree_util.SequenceKey)): v
                for path, v in leaves}

    return Model(init, apply, output, hidden)
