r"""Bias-variance decomposition (deck section 18), estimated by training many models in one
vmapped program.

Re-exported by :mod:`mlwork.theory.bounds` and :mod:`mlwork.theory`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mlwork._validate import check_callable, check_choice, check_int, check_int_labels, check_real, fail

Array = jax.Array

__all__ = ["BiasVariance", "bias_variance_decomposition"]

LOSSES = ("squared", "zero_one")
RESAMPLING = ("bootstrap", "stacked")


class BiasVariance(NamedTuple):
    r"""Result of :func:`bias_variance_decomposition`, each term averaged over the test points.

    Attributes:
      bias2: squared loss: :math:`\overline{(f(x) - \bar f(x))^2}`; 0-1 loss: Domingos' bias
        :math:`\overline{B(x)}`, :math:`B(x) = \mathbf 1[y_m(x) \ne y_*(x)]` (0 or 1, so equal to
        its square).
      variance: squared loss: :math:`\overline{\operatorname{Var}_D \hat f(x)}`; 0-1 loss:
        :math:`\overline{V(x)}`, :math:`V(x) = P_D(\hat y(x) \ne y_m(x))`.
      noise: squared loss: :math:`\sigma^2`; 0-1 loss: :math:`\overline{c_1(x) N}`.
      net_variance: the variance as it enters the error: equal to ``variance`` for squared loss;
        :math:`\overline{c_2(x) V(x)}` for 0-1 loss (variance on points with :math:`B = 0` adds
        to the error, variance on points with :math:`B = 1` reduces it).
      expected_error: the error measured directly, against freshly drawn noisy test labels,
        averaged over rounds and test points — a Monte Carlo check of
        ``bias2 + net_variance + noise``.
      main_prediction: :math:`\bar f(x)` (mean prediction) or :math:`y_m(x)` (most frequent
        class) at each test point.
    """

    bias2: Array
    variance: Array
    noise: Array
    net_variance: Array
    expected_error: Array
    main_prediction: Array

    @property
    def total(self) -> Array:
        """``bias2 + net_variance + noise``: the expected error the decomposition predicts."""
        return self.bias2 + self.net_variance + self.noise


#: The most models one decomposition trains (a leading axis of every per-model array).
MAX_ROUNDS = 2**31 - 1


def _leading(x: Array, name: str) -> int:
    if x.ndim < 1:
        fail(name, "an array with a leading example axis", "a scalar")
    return x.shape[0]


def _predictions(fit_fn, key, x_train, y_train, x_test, n_rounds, resample, batch_size) -> Array:
    k_data, k_fit = jax.random.split(key)
    data_keys = jax.random.split(k_data, n_rounds)
    fit_keys = jax.random.split(k_fit, n_rounds)

    if resample == "bootstrap":
        n = x_train.shape[0]

        def one_round(args, x_train, y_train, x_test):
            k_d, k_f = args
            idx = jax.random.randint(k_d, (n,), 0, n)
            return fit_fn(k_f, x_train[idx], y_train[idx])(x_test)

        per_round = (data_keys, fit_keys)
    else:

        def one_round(args, x_train, y_train, x_test):
            k_f, xs, ys = args
            return fit_fn(k_f, xs, ys)(x_test)

        per_round = (fit_keys, x_train, y_train)

    @jax.jit
    def run(per_round, x_train, y_train, x_test):
        def f(args):
            return one_round(args, x_train, y_train, x_test)

        if batch_size is None:
            return jax.vmap(f)(per_round)
        return jax.lax.map(f, per_round, batch_size=batch_size)

    return run(per_round, x_train, y_train, x_test)


def bias_variance_decomposition(
    fit_fn: Callable[[Array, Array, Array], Callable[[Array], Array]],
    key: Array,
    x_train,
    y_train,
    x_test,
    y_test_noiseless,
    noise_var: float,
    n_rounds: int,
    *,
    loss: str = "squared",
    resample: str = "bootstrap",
    batch_size: int | None = None,
) -> BiasVariance:
    r"""Estimate the bias-variance decomposition of a learning algorithm over training sets.

    **Contract.** ``fit_fn(key, x, y) -> predict`` trains one model on ``(x, y)`` and returns a
    function ``predict(x_test) -> predictions``; it must be traceable (jnp, Optax, a
    ``lax.scan`` training loop...), because ``n_rounds`` copies of it run in **one** jitted
    ``jax.vmap`` (or ``jax.lax.map`` in chunks of ``batch_size`` models, to bound memory). Each
    round gets its own key for resampling and for ``fit_fn``. Training sets come from:

    * ``resample="bootstrap"``: ``n`` examples drawn with replacement from ``(x_train, y_train)``
      (``n`` = their length);
    * ``resample="stacked"``: ``x_train``, ``y_train`` already hold ``n_rounds`` training sets
      drawn independently from the data distribution, stacked on a leading axis (fresh draws
      give the textbook decomposition; the bootstrap approximates it).

    **Squared loss** (``loss="squared"``): predictions have the shape of ``y_test_noiseless``
    :math:`= f(x)`, the noiseless target; labels are :math:`y = f(x) + \varepsilon`,
    :math:`\operatorname{Var}\varepsilon =` ``noise_var``. With :math:`\bar f = \mathbb E_D \hat f`,

    .. math:: \mathbb E_{D,\varepsilon}\big[(y - \hat f(x))^2\big]
              = \underbrace{(f(x) - \bar f(x))^2}_{\text{bias}^2}
              + \underbrace{\mathbb E_D(\hat f(x) - \bar f(x))^2}_{\text{variance}}
              + \underbrace{\sigma^2}_{\text{noise}}

    Over the ``n_rounds`` models, :math:`\text{bias}^2 + \text{variance}` equals the mean of
    :math:`(f(x) - \hat f(x))^2` exactly (population variance, ``ddof=0``).

    **0-1 loss** (``loss="zero_one"``, Domingos 2000): ``predict`` returns class scores of shape
    ``(n_test, K)`` (the predicted class is their argmax); ``y_test_noiseless`` are the optimal
    classes :math:`y_*(x)`, and ``noise_var`` is the label-noise rate :math:`N` (an observed
    label differs from :math:`y_*` with probability :math:`N`, uniformly over the other
    :math:`K - 1` classes). With the main prediction :math:`y_m` (most frequent class; ties to
    the smaller index), :math:`B = \mathbf 1[y_m \ne y_*]`, :math:`V = P_D(\hat y \ne y_m)`:

    .. math:: \mathbb E[L_{0\text{-}1}] = c_1 N + B + c_2 V, \qquad
              c_2 = \begin{cases} 1 & B = 0 \\ -P_D(\hat y = y_* \mid \hat y \ne y_m) & B = 1\end{cases},
              \quad c_1 = P_D(\hat y = y_*) - \frac{P_D(\hat y \ne y_*)}{K - 1}

    which is exact over the rounds for the noiseless part.

    Args:
      fit_fn: ``fit_fn(key, x, y) -> predict`` as above.
      key: a PRNG key; split into resampling, training and test-noise keys.
      x_train, y_train: the training data (see ``resample``).
      x_test: test inputs, shape ``(n_test, ...)``.
      y_test_noiseless: :math:`f(x)` for squared loss, integer :math:`y_*(x)` for 0-1 loss.
      noise_var: :math:`\sigma^2 \ge 0` (squared loss) or :math:`N \in [0, 1]` (0-1 loss).
      n_rounds: number of models (training sets), at least 2.

      loss: ``"squared"`` or ``"zero_one"``.
      resample: ``"bootstrap"`` or ``"stacked"``.
      batch_size: models per chunk of ``jax.lax.map`` (``None``: all at once in ``vmap``).

    Returns:
      :class:`BiasVariance`; ``.total`` is ``bias2 + net_variance + noise``.

    Raises:
      ValueError: ``fit_fn`` not callable, an unknown ``loss``/``resample``, ``n_rounds`` or
        ``batch_size`` not an integer in range (any integer type; a NumPy int64 is not
        wrapped), ``noise_var`` out of range, data of mismatched lengths or shapes, predictions
        of the wrong shape, labels out of range.

    Example:
      Polynomial least squares, 200 bootstrap fits in one program:

      >>> import jax, jax.numpy as jnp
      >>> from mlwork import theory
      >>> x = jnp.linspace(-1.0, 1.0, 40)
      >>> y = jnp.sin(3 * x) + 0.3 * jax.random.normal(jax.random.key(1), (40,))
      >>> def fit(key, x, y):
      ...     phi = lambda t: jnp.stack([t**k for k in range(4)], -1)
      ...     coef = jnp.linalg.pinv(phi(x)) @ y
      ...     return lambda t: phi(t) @ coef
      >>> x_test = jnp.linspace(-0.9, 0.9, 7)
      >>> r = theory.bias_variance_decomposition(fit, jax.random.key(0), x, y, x_test,
      ...                                        jnp.sin(3 * x_test), noise_var=0.09, n_rounds=200)
      >>> bool(r.bias2 >= 0), bool(r.variance >= 0), round(float(r.noise), 6)
      (True, True, 0.09)

    References: S. Geman, E. Bienenstock, R. Doursat, "Neural networks and the bias/variance
    dilemma", Neural Computation 4 (1992); P. Domingos, "A unified bias-variance decomposition
    and its applications", ICML 2000; deck §18 "Bias-Variance Tradeoff (Formal)".
    """
    check_callable(fit_fn, "fit_fn")
    check_choice(loss, "loss", LOSSES)
    check_choice(resample, "resample", RESAMPLING)
    n_rounds = check_int(n_rounds, "n_rounds", minimum=2, maximum=MAX_ROUNDS)
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=MAX_ROUNDS)
    if loss == "zero_one":
        noise_var = check_real(noise_var, "noise_var", low=0.0, high=1.0)
    else:
        noise_var = check_real(noise_var, "noise_var", low=0.0)

    x_train, y_train = jnp.asarray(x_train), jnp.asarray(y_train)
    x_test, y_star = jnp.asarray(x_test), jnp.asarray(y_test_noiseless)
    n_x, n_y = _leading(x_train, "x_train"), _leading(y_train, "y_train")
    if resample == "stacked":
        if n_x != n_rounds or n_y != n_rounds:
            fail("x_train and y_train", f"stacked on a leading axis of n_rounds={n_rounds} training sets "
                 "(resample='stacked')", f"shapes {x_train.shape} and {y_train.shape}")
        if x_train.ndim < 2 or y_train.ndim < 2 or x_train.shape[1] != y_train.shape[1]:
            fail("x_train and y_train", "stacked sets with the same number of examples (axis 1)",
                 f"shapes {x_train.shape} and {y_train.shape}")
    elif n_x != n_y:
        fail("y_train", f"one target per example of x_train ({n_x})", f"{n_y} targets")
    if _leading(x_test, "x_test") != _leading(y_star, "y_test_noiseless"):
        fail("y_test_noiseless", f"one target per example of x_test ({x_test.shape[0]})", f"{y_star.shape[0]}")

    k_models, k_noise = jax.random.split(key)
    preds = _predictions(fit_fn, k_models, x_train, y_train, x_test, n_rounds, resample, batch_size)
    if loss == "squared":
        return _squared(preds, y_star, noise_var, k_noise)
    return _zero_one(preds, y_star, noise_var, k_noise)


def _squared(preds: Array, y_star: Array, noise_var: float, key: Array) -> BiasVariance:
    if preds.shape[1:] != y_star.shape:
        fail("fit_fn", f"a predict(x_test) of the shape of y_test_noiseless, {y_star.shape}",
             f"predictions of shape {preds.shape[1:]}")
    if not jnp.issubdtype(preds.dtype, jnp.floating):
        preds = preds.astype(jnp.float32)
    return _squared_terms(preds, y_star.astype(preds.dtype), noise_var, key)


@jax.jit
def _squared_terms(preds: Array, y_star: Array, noise_var, key: Array) -> BiasVariance:
    mean = jnp.mean(preds, axis=0)
    bias2 = jnp.mean(jnp.square(mean - y_star))
    variance = jnp.mean(jnp.var(preds, axis=0))
    noise = jnp.asarray(noise_var, preds.dtype)
    y_noisy = y_star[None] + jnp.sqrt(noise) * jax.random.normal(key, preds.shape, preds.dtype)
    measured = jnp.mean(jnp.square(y_noisy - preds))
    return BiasVariance(bias2, variance, noise, variance, measured, mean)


def _zero_one(scores: Array, y_star: Array, noise_rate: float, key: Array) -> BiasVariance:
    if scores.ndim != 3 or scores.shape[1:2] != y_star.shape or y_star.ndim != 1:
        fail("fit_fn", "a predict(x_test) returning class scores (n_test, K) with integer y_test_noiseless "
             "(n_test,) for loss='zero_one'", f"{scores.shape[1:]} and {y_star.shape}")
    n_classes = scores.shape[-1]
    if n_classes < 2:
        fail("fit_fn", "class scores for at least 2 classes (loss='zero_one')", f"K={n_classes}")
    check_int_labels(y_star, n_classes, "y_test_noiseless")
    return _zero_one_terms(scores, y_star.astype(jnp.int32), noise_rate, key)


@jax.jit
def _zero_one_terms(scores: Array, y_star: Array, noise_rate, key: Array) -> BiasVariance:
    n_rounds, n_classes = scores.shape[0], scores.shape[-1]
    y_hat = jnp.argmax(scores, axis=-1).astype(jnp.int32)                 # (R, n_test)
    counts = jnp.sum(jax.nn.one_hot(y_hat, n_classes, dtype=jnp.float32), axis=0)  # (n_test, K)
    y_main = jnp.argmax(counts, axis=-1).astype(jnp.int32)
    p_main = jnp.take_along_axis(counts, y_main[:, None], axis=-1)[:, 0] / n_rounds
    p_star = jnp.take_along_axis(counts, y_star[:, None], axis=-1)[:, 0] / n_rounds
    biased = y_main != y_star
    var = 1.0 - p_main
    # c2 V = V where unbiased; -P(ŷ = y* | ŷ ≠ y_m) V = -P(ŷ = y*) where biased.
    net_var = jnp.where(biased, -p_star, var)
    c1 = p_star - (1.0 - p_star) / (n_classes - 1)
    flip = jax.random.bernoulli(jax.random.fold_in(key, 0), noise_rate, y_hat.shape)
    shift = jax.random.randint(jax.random.fold_in(key, 1), y_hat.shape, 1, n_classes, jnp.int32)
    truth = jnp.broadcast_to(y_star[None], y_hat.shape)
    y_obs = jnp.where(flip, (truth + shift) % n_classes, truth)
    measured = jnp.mean((y_hat != y_obs).astype(jnp.float32))
    return BiasVariance(
        bias2=jnp.mean(biased.astype(jnp.float32)),
        variance=jnp.mean(var),
        noise=jnp.mean(c1 * noise_rate),
        net_variance=jnp.mean(net_var),
        expected_error=measured,
        main_prediction=y_main,
    )
