r"""Boosting (deck section 17): AdaBoost (SAMME) and gradient boosting, each one ``lax.scan``.

Boosting fits trees sequentially, each correcting the ensemble so far; the rounds are a
``jax.lax.scan`` whose carry is the sample weights (AdaBoost) or the current scores
:math:`F(x_i)` (gradient boosting), so the whole fit is one compiled program (AdaBoost) or one
compiled program called once per ``ROUND_CHUNK`` (32) rounds (gradient boosting).

**Compiled programs of gradient boosting** (issue 29). A compilation costs seconds, far more than
a fit on small data, so the fits of a grid search or a cross-validation share programs: the rounds
run in calls of 32 rounds (``n_estimators`` and early stopping only decide which rounds of a call
run), and fits of at most ``mlwork.trees._padding.BUCKET_MAX_ROWS`` (8192) rows pad their rows
with zero-weight rows to a bucket of eight per octave and pass ``learning_rate``, the
``subsample`` size, ``reg_lambda``, ``gamma``, ``min_child_weight`` and ``min_samples_leaf`` as
traced arguments. A small-data program is compiled per tree depth, loss, number of features, row
bucket and choice of ``second_order``, ``line_search``, ``subsample < 1`` and a validation set.
Padding changes results by float32 rounding only (XLA orders a sum over another row count
differently; a near-tied split can flip), see ``mlwork/trees/_padding.py``. Larger fits are not
padded and compile those settings in: they compute what they computed before, bit for bit.

**AdaBoost / SAMME** (Zhu, Zou, Rosset & Hastie 2009). With weighted error
:math:`\varepsilon_t = \sum_i w_i [h_t(x_i) \ne y_i] / \sum_i w_i` over :math:`K` classes,

.. math:: \alpha_t = \eta\left(\ln\frac{1-\varepsilon_t}{\varepsilon_t} + \ln(K-1)\right), \qquad
          w_i \leftarrow w_i\, e^{\alpha_t [h_t(x_i) \ne y_i]}, \qquad
          H(x) = \arg\max_k \sum_t \alpha_t [h_t(x) = k].

For :math:`K = 2` and :math:`\eta = 1` this is the deck's discrete AdaBoost: the deck's
:math:`\alpha_t = \tfrac12 \ln\frac{1-\varepsilon_t}{\varepsilon_t}` is half of SAMME's, which
scales the vote but not its sign, and its update :math:`w_i e^{\mp\alpha_t}` is SAMME's after
normalisation. Boosting stops (later :math:`\alpha_t = 0`) when a learner is perfect
(:math:`\alpha_t = 1`, scikit-learn's convention) or no better than chance
(:math:`\varepsilon_t \ge 1 - 1/K`, :math:`\alpha_t = 0`).

**Gradient boosting** (Friedman 2001; deck: "each new model fits the residuals"):
:math:`F_0 = \arg\min_c \sum_i L(y_i, c)`, then for :math:`t = 1..T`

.. math:: g_i = \partial_F L(y_i, F_{t-1}(x_i)), \quad h_i = \partial^2_F L(y_i, F_{t-1}(x_i)),
          \quad F_t = F_{t-1} + \eta\, f_t.

First order (``second_order=False``, the deck) fits :math:`f_t` by least squares to the
pseudo-residuals :math:`r_i = -g_i` (:math:`y_i - F` for squared loss): variance-reduction
splits; each leaf then takes Friedman's line-search step :math:`\sum_{i \in \ell} r_i /
\sum_{i \in \ell} h_i` (the mean residual for squared loss, exactly the deck's algorithm;
``line_search=False`` keeps the mean residual for every loss). Second order
(``second_order=True``, XGBoost, Chen & Guestrin 2016) uses leaf weights :math:`-G/(H+\lambda)` and split gain
:math:`\tfrac12[G_L^2/(H_L+\lambda) + G_R^2/(H_R+\lambda) - G^2/(H+\lambda)]`, splitting only
when it exceeds :math:`\gamma` and both children have :math:`H \ge` ``min_child_weight``.
Gradients and Hessians come from ``jax.grad`` and ``jax.hessian`` of the per-sample loss, for
the built-in losses as for any callable ``loss(y_i, f_i)``. Multi-output losses (softmax) fit
one tree per output per round with the diagonal of the Hessian, as XGBoost and LightGBM do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from mlwork._static import this_call
from mlwork._validate import fail
from mlwork.trees import _checks, _deprecated, _early_stopping, _padding
from mlwork.trees._grow import GrowSpec, feature_parallel, grow, run_feature_parallel
from mlwork.trees.tree import (
    Tree,
    check_X_any,
    clip_to_bounds,
    leaf_values,
    prepare,
    to_tree,
    tree_spec,
    tree_value,
)

Array = jax.Array


# ============================================================================= AdaBoost
@flax.struct.dataclass
class AdaBoost:
    r"""A fitted SAMME AdaBoost model (:func:`fit_adaboost`), a pytree.

    It predicts :math:`H(x) = \arg\max_k \sum_t \alpha_t [h_t(x) = k]` (:func:`predict`);
    :func:`predict_proba` gives SAMME's probability estimates.

    Attributes:
      trees: the :class:`Tree` of every round, arrays stacked along a leading ``(T,)`` axis.
      alpha: ``(T,)`` float32 votes :math:`\alpha_t`; 0 for the rounds after boosting stopped.
      n_classes: :math:`K` (static).

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0, 0, 0, 1, 1, 1])
      >>> model = trees.fit_adaboost(X, y, 3)
      >>> model.alpha.tolist(), model.n_classes  # a perfect first stump: alpha 1, then stop
      ([1.0, 0.0, 0.0], 2)
    """

    trees: Tree
    alpha: Array
    n_classes: int = flax.struct.field(pytree_node=False)


def samme_alpha(error, n_classes: int, learning_rate: float = 1.0):
    r"""The vote of a learner with weighted error :math:`\varepsilon` in SAMME:

    .. math:: \alpha = \eta\left(\ln\frac{1-\varepsilon}{\varepsilon} + \ln(K-1)\right)

    positive exactly when the learner beats chance, :math:`\varepsilon < 1 - 1/K`. For
    :math:`K = 2` and :math:`\eta = 1` it is :math:`\ln\frac{1-\varepsilon}{\varepsilon}`,
    Freund & Schapire's :math:`\ln(1/\beta)` (twice the deck's
    :math:`\tfrac12 \ln\frac{1-\varepsilon}{\varepsilon}`). :math:`\varepsilon` is clipped into
    :math:`[10^{-12}, 1 - 10^{-12}]`, so a perfect learner gets a large finite vote. Traceable,
    it checks nothing and raises nothing (it runs inside :func:`fit_adaboost`'s scan).

    Args:
      error: :math:`\varepsilon`, the weighted error rate in :math:`[0, 1]`: a Python float or a
        float array (any shape; traceable).
      n_classes: :math:`K \ge 2`, a Python int.
      learning_rate: :math:`\eta > 0`, the shrinkage of every vote.

    Returns:
      :math:`\alpha`, float32 (the dtype of ``error``), the shape of ``error``; in nats.

    Example:
      >>> from mlwork import trees
      >>> round(float(trees.samme_alpha(0.25, 2)), 4)  # ln 3
      1.0986
      >>> round(float(trees.samme_alpha(0.5, 3)), 4)  # ln 1 + ln 2: better than chance (2/3)
      0.6931

    Reference: Zhu, Zou, Rosset & Hastie, "Multi-class AdaBoost", Statistics and Its Interface 2
    (2009), Algorithm 2 (SAMME), step 2(c); Freund & Schapire, JCSS 55 (1997), AdaBoost.M1.
    """
    error = jnp.clip(error, 1e-12, 1 - 1e-12)
    return learning_rate * (jnp.log1p(-error) - jnp.log(error) + jnp.log(n_classes - 1.0))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _fit_adaboost(spec: GrowSpec, n_estimators: int, learning_rate: float, XbT, y, w0, lower, upper):
    return run_feature_parallel(spec, functools.partial(_adaboost_rounds, spec, n_estimators, learning_rate),
                                XbT, y, w0, lower, upper)


def _adaboost_rounds(spec: GrowSpec, n_estimators: int, learning_rate: float, XbT, y, w0, lower, upper):
    k = spec.n_classes

    def round_(carry, _):
        w, stopped = carry
        grown = grow(spec, XbT, y, w, lower, upper, jax.random.key(0))
        value = leaf_values(spec, grown)
        tree = to_tree(spec, grown, value, "classification", lower.shape[0])
        wrong = (jnp.argmax(value[grown.leaf], axis=1) != y).astype(jnp.float32)
        error = jnp.sum(w * wrong) / jnp.sum(w)
        perfect = error <= 0
        useless = error >= 1.0 - 1.0 / k
        alpha = jnp.where(perfect, 1.0, jnp.where(useless, 0.0, samme_alpha(error, k, learning_rate)))
        alpha = jnp.where(stopped, 0.0, alpha)
        # w·e^{α[wrong]} up to the normalisation, written as w·e^{−α[right]}: no overflow for
        # large α; right answers may underflow to 0 but the wrong ones (error > 0) keep the sum > 0.
        new_w = w * jnp.exp(-jnp.where(perfect | useless, 0.0, alpha) * (1.0 - wrong))
        new_w = jnp.where(stopped, w, new_w / jnp.sum(new_w))
        return (new_w, stopped | perfect | useless), (tree, alpha)

    _, (trees, alpha) = jax.lax.scan(round_, (w0 / jnp.sum(w0), jnp.array(False)), None,
                                     length=n_estimators)
    return trees, alpha


@_deprecated.key_keyword
def fit_adaboost(X, y, n_estimators: int = 50, *, key: Array | None = None, max_depth: int = 1,
                 learning_rate: float = 1.0,
                 criterion: str = "gini", max_bins: int | None = 255, sample_weight=None,
                 n_classes: int | None = None) -> AdaBoost:
    r"""AdaBoost with SAMME weights (the deck's algorithm for :math:`K = 2`) on depth-``max_depth``
    trees (stumps by default), fit in one ``lax.scan`` over rounds.

    Round :math:`t` fits a tree :math:`h_t` to the weights :math:`w`, then

    .. math:: \varepsilon_t = \frac{\sum_i w_i [h_t(x_i) \ne y_i]}{\sum_i w_i}, \quad
              \alpha_t = \eta\left(\ln\frac{1-\varepsilon_t}{\varepsilon_t} + \ln(K-1)\right),
              \quad w_i \leftarrow w_i\, e^{\alpha_t [h_t(x_i) \ne y_i]}

    (:func:`samme_alpha`), and the model predicts :math:`\arg\max_k \sum_t \alpha_t
    [h_t(x) = k]`. The reweighting is computed as :math:`w_i e^{-\alpha_t [h_t(x_i) = y_i]}`
    (equal after normalisation) so a large :math:`\alpha_t` cannot overflow; weights that
    underflow to 0 simply drop out. Boosting stops (the later :math:`\alpha_t` are 0) after a
    perfect learner (:math:`\alpha_t = 1`, scikit-learn's convention) or one no better than
    chance (:math:`\varepsilon_t \ge 1 - 1/K`, :math:`\alpha_t = 0`). If every
    :math:`\alpha_t = 0` the model predicts the weighted class prior.

    Args:
      X: ``(n, d)`` features (float32 after conversion); NaN marks a missing value.
      y: ``(n,)`` class indices ``0..K−1`` (integers), at least two classes.
      n_estimators: rounds :math:`T \ge 1`.
      key: unused (SAMME draws nothing: every round reweights all samples); accepted so that
        every ``fit_*`` of :mod:`mlwork.trees` has one signature.
      max_depth: depth of each tree (1: stumps).
      learning_rate: :math:`\eta > 0`, scaling every :math:`\alpha_t`.
      criterion: the trees' split criterion, ``"gini"`` or ``"entropy"``.
      max_bins: value bins per feature (≤ 255); ``None`` for every midpoint (exact).
      sample_weight: ``(n,)`` initial weights, non-negative with a positive sum; default ones.
      n_classes: :math:`K` (default ``max(y) + 1``).

    Returns:
      An :class:`AdaBoost` with ``T`` trees and votes ``alpha`` ``(T,)``.

    Raises:
      ValueError: bad shapes, ±inf in ``X``, a single class, ``n_estimators < 1``,
        ``learning_rate <= 0``, an unknown ``criterion``, ``sample_weight`` all zero,
        negative or NaN.

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0, 0, 1, 0, 1, 1])
      >>> model = trees.fit_adaboost(X, y, 3)
      >>> round(float(model.alpha[0]), 4)  # first stump: error 1/6, alpha = ln 5
      1.6094
      >>> trees.predict(model, X).tolist()
      [0, 0, 1, 0, 1, 1]

    Reference: Freund & Schapire, "A decision-theoretic generalization of on-line learning and
    an application to boosting", JCSS 55 (1997); Zhu, Zou, Rosset & Hastie, "Multi-class
    AdaBoost", Statistics and Its Interface 2 (2009), Algorithm 2 (SAMME).
    """
    del key  # deterministic
    _checks.check_not_key(n_estimators, "n_estimators", "a positive integer")
    n_estimators = _checks.check_int(n_estimators, "n_estimators", 1)
    learning_rate = _checks.check_positive(learning_rate, "learning_rate")
    data = prepare(X, max_bins, sample_weight)
    spec, target, w = tree_spec(data, y, task="classification", criterion=criterion,
                                max_depth=max_depth, min_samples_split=2, min_samples_leaf=1,
                                max_features=None, sample_weight=sample_weight, n_classes=n_classes)
    spec = feature_parallel(spec._replace(counted=True))  # the boosting weights are not integers
    trees, alpha = _fit_adaboost(spec, n_estimators, learning_rate, data.XbT, target, w,
                                 data.lower, data.upper)
    return AdaBoost(trees=trees, alpha=alpha, n_classes=spec.n_classes)


@jax.jit
def adaboost_decision(model: AdaBoost, X: Array) -> Array:
    r"""Normalised vote :math:`\sum_t \alpha_t [h_t(x) = k] / \sum_t \alpha_t`, ``(n, K)``.

    When every :math:`\alpha_t = 0` (the first learner was no better than chance) there is no
    vote; every row then gets the weighted class prior of the training data (read from the
    first tree's leaves, fit on the initial weights) instead of ``0/0``.
    """
    def body(total, ta):
        tree, alpha = ta
        vote = jax.nn.one_hot(jnp.argmax(tree_value(tree, X), axis=1), model.n_classes)
        return total + alpha * vote, None

    total, _ = jax.lax.scan(body, jnp.zeros((X.shape[0], model.n_classes)), (model.trees, model.alpha))
    mass = jnp.sum(model.alpha)
    first_w, first_v = model.trees.leaf_weight[0], model.trees.value[0]
    prior = jnp.sum(first_w[:, None] * first_v, axis=0) / jnp.sum(first_w)
    return jnp.where(mass > 0, total / jnp.where(mass > 0, mass, 1.0), prior[None, :])


def adaboost_predict(model: AdaBoost, X) -> Array:
    r"""The weighted vote :math:`\arg\max_k \sum_t \alpha_t [h_t(x) = k]`."""
    vote = adaboost_decision(model, check_X_any(X, model.trees.n_features))
    return jnp.argmax(vote, axis=1).astype(jnp.int32)


def adaboost_predict_proba(model: AdaBoost, X) -> Array:
    r"""Class probabilities :math:`\mathrm{softmax}(f(x)/(K-1))` with SAMME's coded vote
    :math:`f_k = v_k - (1 - v_k)/(K-1)` of the normalised vote :math:`v` (Zhu et al. 2009,
    eq. 15; for :math:`K = 2` a logistic of :math:`f_1 - f_0`), as scikit-learn computes it."""
    vote = adaboost_decision(model, check_X_any(X, model.trees.n_features))
    k = model.n_classes
    coded = vote - (1.0 - vote) / (k - 1)  # SAMME's symmetric coding: 1 for a vote, −1/(K−1) else
    if k == 2:
        margin = coded[:, 1] - coded[:, 0]
        return jax.nn.softmax(jnp.stack([-margin, margin], axis=1) / 2, axis=1)
    return jax.nn.softmax(coded / (k - 1), axis=1)


# ============================================================================= gradient boosting
def squared_loss(y, f):
    r"""Squared loss of one sample for gradient boosting (``loss="squared"``):

    .. math:: L(y, f) = \tfrac12 (y - f)^2, \qquad -\partial_f L = y - f, \qquad \partial_f^2 L = 1

    so the negative gradient is the deck's residual.

    Args:
      y: the target, a float scalar (or any shape broadcasting with ``f``).
      f: the score :math:`F(x)`, a float scalar.

    Returns:
      :math:`L`, float32 (the inputs' dtype), the broadcast shape; in the target's unit squared.

    Example:
      >>> from mlwork import trees
      >>> float(trees.squared_loss(3.0, 1.0))
      2.0

    Reference: Friedman, "Greedy function approximation: a gradient boosting machine",
    Ann. Statist. 29 (2001), LS_Boost (Algorithm 2).
    """
    return 0.5 * jnp.square(y - f)


def logistic_loss(y, f):
    r"""Binary log loss of one sample for gradient boosting (``loss="logistic"``):

    .. math:: L(y, f) = \log(1 + e^{f}) - y f, \qquad \partial_f L = \sigma(f) - y, \qquad
              \partial_f^2 L = \sigma(f)(1 - \sigma(f))

    the negative log-likelihood of :math:`y` under :math:`P(y = 1) = \sigma(f)`, computed with
    ``softplus`` (finite for any logit).

    Args:
      y: the label, 0 or 1 (float).
      f: the logit :math:`F(x)`, a float scalar.

    Returns:
      :math:`L` in nats, float32 (the inputs' dtype), the broadcast shape.

    Example:
      >>> from mlwork import trees
      >>> round(float(trees.logistic_loss(1.0, 0.0)), 4)  # ln 2
      0.6931

    Reference: Friedman (2001), L2_TreeBoost (Algorithm 5); Chen & Guestrin, "XGBoost", KDD 2016.
    """
    return jax.nn.softplus(f) - y * f


def softmax_loss(y, f):
    r"""Multi-class log loss of one sample for gradient boosting (``loss="softmax"``):

    .. math:: L(y, f) = \log\sum_{k=1}^K e^{f_k} - f_y, \qquad
              \partial_{f_k} L = \mathrm{softmax}(f)_k - [y = k]

    the negative log-likelihood of class :math:`y` under :math:`\mathrm{softmax}(f)`; boosting
    uses the diagonal of its Hessian, :math:`p_k(1 - p_k)`.

    Args:
      y: the class index :math:`y \in \{0..K-1\}` (any numeric dtype; cast to int32).
      f: ``(K,)`` float logits.

    Returns:
      :math:`L` in nats, a float32 scalar (the dtype of ``f``).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import trees
      >>> round(float(trees.softmax_loss(jnp.array(0), jnp.zeros(3))), 4)  # ln 3
      1.0986

    Reference: Friedman (2001), L_K_TreeBoost (Algorithm 6); Chen & Guestrin, "XGBoost", KDD 2016.
    """
    return jax.nn.logsumexp(f) - jnp.take(f, y.astype(jnp.int32))


#: Gradient-boosting losses by name, each a per-sample ``loss(y_i, f_i)``: the names that
#: :func:`fit_gradient_boosting` and :func:`grad_hess` accept (not :data:`mlwork.nn.LOSSES`).
BOOSTING_LOSSES: dict[str, Callable] = {"squared": squared_loss, "logistic": logistic_loss, "softmax": softmax_loss}


@flax.struct.dataclass
class GradientBoosting:
    r"""A fitted gradient-boosting model (:func:`fit_gradient_boosting`), a pytree.

    Its raw score is :math:`F(x) = F_0 + \eta \sum_{t=1}^{T} f_t(x)` with one tree per output per
    round; :func:`predict` gives classes (``"logistic"``, ``"softmax"``) or :math:`F(x)`,
    :func:`predict_proba` :math:`\sigma(F)` or :math:`\mathrm{softmax}(F)`.

    Attributes:
      trees: the trees (a :class:`Tree`), arrays stacked along leading ``(T, K)`` axes (:math:`K`
        outputs: 1, or the number of classes for ``"softmax"``).
      init: ``(K,)`` float32 constant start :math:`F_0 = \arg\min_c \sum_i w_i L(y_i, c)`.
      learning_rate: :math:`\eta` (static).
      loss: the loss name or callable (static).
      train_loss: ``None``, or for a fit with a validation set (``validation_fraction`` or
        ``eval_set`` of :func:`fit_gradient_boosting`) the ``(n_iter + 1,)`` float32 weighted mean
        training loss :math:`L(y, F_t)` after each round :math:`t = 0..n_{iter}` (entry 0: :math:`F_0`).
      validation_loss: ``None``, or the ``(n_iter + 1,)`` float32 validation loss of the same rounds.

    With early stopping (``n_iter_no_change``) ``trees`` holds the rounds up to the best one,
    :attr:`best_iteration` of them, while the curves run to the round where the fit stopped.

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
      >>> model = trees.fit_gradient_boosting(X, y, n_estimators=3, max_depth=1)
      >>> model.init.tolist(), model.trees.feature.shape, model.learning_rate  # F_0 = mean(y)
      ([0.5], (3, 1, 1), 0.1)
    """

    trees: Tree
    init: Array
    learning_rate: float = flax.struct.field(pytree_node=False)
    loss: str | Callable = flax.struct.field(pytree_node=False)
    train_loss: Array | None = None
    validation_loss: Array | None = None

    @property
    def n_iter(self) -> int:
        """The number of rounds computed, ``len(validation_loss) - 1`` with a validation set, else
        :math:`T`."""
        if self.validation_loss is None:
            return int(self.trees.feature.shape[0])
        return int(self.validation_loss.shape[0]) - 1

    @property
    def best_iteration(self) -> int | None:
        """The number of rounds whose model has the smallest validation loss (the first such if
        tied; 0 when :math:`F_0` alone is best), or ``None`` without a validation set. It is read
        on the host (not under ``jit``); after early stopping ``trees`` holds this many rounds."""
        if self.validation_loss is None:
            return None
        return int(np.argmin(np.asarray(self.validation_loss)))


def loss_fn(loss) -> Callable:
    """The per-sample loss function for a built-in name or a callable; anything else raises a
    one-line ``ValueError`` that names ``loss`` and the choices."""
    if isinstance(loss, str) and loss in BOOSTING_LOSSES:
        return BOOSTING_LOSSES[loss]
    if isinstance(loss, str) or not callable(loss):
        fail("loss", f"one of {', '.join(map(repr, sorted(BOOSTING_LOSSES)))} or a callable", repr(loss))
    return loss


def grad_hess(loss, y: Array, F: Array) -> tuple[Array, Array]:
    r"""Per-sample gradient and Hessian diagonal of a boosting loss, by autodiff:

    .. math:: g_i = \partial_F L(y_i, F_i), \qquad h_i = \partial^2_F L(y_i, F_i)

    (``jax.grad`` and the diagonal of ``jax.hessian``), the statistics of XGBoost's
    second-order approximation of the loss; :math:`-g_i` is Friedman's pseudo-residual.

    Args:
      loss: a name of :data:`BOOSTING_LOSSES` (``"squared"``, ``"logistic"``, ``"softmax"``) or a
        callable ``loss(y_i, f_i) -> scalar``, ``f_i`` a scalar when ``K = 1`` else ``(K,)``.
        Static (hashable).
      y: ``(n,)`` targets (class indices for ``"softmax"``).
      F: ``(n, K)`` float current scores.

    Returns:
      ``(g, h)``, each ``(n, K)`` in the dtype of ``F``.

    Raises:
      ValueError: ``loss`` neither a name of :data:`BOOSTING_LOSSES` nor a callable (a one-line
        message naming ``loss`` and the choices).

    Example:
      >>> import jax.numpy as jnp
      >>> from mlwork import trees
      >>> g, h = trees.grad_hess("logistic", jnp.array([1.0, 0.0]), jnp.zeros((2, 1)))
      >>> g.ravel().tolist(), h.ravel().tolist()  # sigma(0) - y and sigma(0)(1 - sigma(0))
      ([-0.5, 0.5], [0.25, 0.25])

    Reference: Chen & Guestrin, "XGBoost: a scalable tree boosting system", KDD 2016, eq. (3);
    Friedman (2001), Algorithm 1.
    """
    fn = loss_fn(loss)  # a user's callable is traced as it is now (never a stale compiled program)
    return _grad_hess(this_call(fn, BOOSTING_LOSSES.values()), y, F)


@functools.partial(jax.jit, static_argnums=0)
def _grad_hess(fn, y: Array, F: Array) -> tuple[Array, Array]:
    fn = BOOSTING_LOSSES[fn] if isinstance(fn, str) else fn
    k = F.shape[1]

    def one(yi, fi):
        f = fi[0] if k == 1 else fi
        g = jax.grad(fn, argnums=1)(yi, f)
        h = jax.hessian(fn, argnums=1)(yi, f)
        return jnp.reshape(g, (k,)), jnp.reshape(h, (k,)) if k == 1 else jnp.diagonal(h)

    return jax.vmap(one)(y, F)


def _initial_score(loss, y: Array, w: Array, k: int) -> Array:
    """:math:`F_0 = \\arg\\min_c \\sum_i w_i L(y_i, c)`: closed forms, else 50 Newton steps."""
    sw = jnp.sum(w)
    if loss == "squared":
        return jnp.reshape(jnp.sum(w * y) / sw, (1,))
    if loss == "logistic":
        p = jnp.clip(jnp.sum(w * y) / sw, 1e-7, 1 - 1e-7)
        return jnp.reshape(jnp.log(p) - jnp.log1p(-p), (1,))
    if loss == "softmax":
        prior = jax.ops.segment_sum(w, y.astype(jnp.int32), num_segments=k) / sw
        logp = jnp.log(jnp.maximum(prior, 1e-7))
        return logp - jnp.mean(logp)

    def step(c, _):
        g, h = _grad_hess(loss, y, jnp.broadcast_to(c, (y.shape[0], k)))
        return c - jnp.sum(w[:, None] * g, 0) / jnp.maximum(jnp.sum(w[:, None] * h, 0), 1e-12), None

    return jax.lax.scan(step, jnp.zeros(k), None, length=50)[0]


#: Boosting rounds per call of the compiled round program: a fit of ``n_estimators`` rounds calls
#: it ``ceil(n_estimators / ROUND_CHUNK)`` times, carrying the scores, so one program serves every
#: ``n_estimators`` (rounds past the last, or after an early stop, are skipped by a ``lax.cond``).
#: Prediction sums the trees in chunks of the same size.
ROUND_CHUNK = 32
#: Grower settings that padded (small-data) fits pass to the compiled rounds as traced values, so
#: a grid over them reuses one program; unpadded fits compile them in, as they always did.
TRACED_SETTINGS = ("reg_lambda", "gamma", "min_child_weight", "min_samples_leaf")


@functools.partial(jax.jit, static_argnums=(0, 1))
def _boosting_init(loss, k: int, y, w):
    """``(F_0 (K,), F (n, K), 0)``: the initial score, the scores of every training row, the rounds done."""
    F0 = _initial_score(loss, y, w, k)
    return F0, jnp.broadcast_to(F0, (y.shape[0], k)), jnp.zeros((), jnp.int32)


@functools.partial(jax.jit, static_argnums=0)
def _initial_losses(loss, F0, y, w, y_val, w_val):
    """``(train, validation, F_val)``: the mean losses of :math:`F_0` and the validation scores."""
    F_val = jnp.broadcast_to(F0, (y_val.shape[0], F0.shape[0]))
    train = _mean_loss(loss, y, jnp.broadcast_to(F0, (y.shape[0], F0.shape[0])), w)
    return train, _mean_loss(loss, y_val, F_val, w_val), F_val


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _fit_chunk(spec: GrowSpec, loss, k: int, subsampled: bool, line_search: bool, static: tuple,
               XbT, y, w, lower, upper, key, t, F, hyper, val):
    rounds = functools.partial(_chunk_rounds, spec, loss, k, subsampled, line_search, static)
    return run_feature_parallel(spec, rounds, XbT, y, w, lower, upper, key, t, F, hyper, val)


def _round_fn(spec: GrowSpec, loss, k: int, learning_rate, subsampled: bool, line_search: bool,
              XbT, y, w, lower, upper, key, n_real, n_drawn, grow_fn=grow, draws=None):
    """``round_(F, t) -> (F + eta f_t, trees of round t)``: one boosting round (``t`` from 0).

    With ``subsampled``, each round keeps ``n_drawn`` of the first ``n_real`` rows (the real
    ones; padding rows draw 2 and sort last), those of the smallest uniforms
    ``jax.random.uniform(fold_in(key, t), (n_real,))``: drawn here, or, for padded rows, given
    as ``draws`` ``(ROUND_CHUNK, n)`` (round ``t`` in row ``t % ROUND_CHUNK``) by
    :func:`_subsample_draws` (with JAX's default threefry the first ``n_real`` of ``n`` draws are
    not those of ``n_real`` draws)."""
    n = XbT.shape[1]
    newton = spec.criterion == "newton"

    def fit_output(args):
        gh, wk = args  # (n, 2) gradient and Hessian of one output, (n,) weights
        if newton:
            grown = grow_fn(spec, XbT, gh, wk, lower, upper, jax.random.key(0))
            return grown, leaf_values(spec, grown)
        residual = -gh[:, 0]
        grown = grow_fn(spec, XbT, residual, wk, lower, upper, jax.random.key(0))
        m = 2**spec.depth
        num = jax.ops.segment_sum(wk * residual, grown.leaf, num_segments=m)
        hess = jax.ops.segment_sum(wk * gh[:, 1], grown.leaf, num_segments=m)
        cnt = jax.ops.segment_sum(wk, grown.leaf, num_segments=m)
        mean = num / jnp.maximum(cnt, 1e-30)
        if line_search:  # Friedman's one Newton step per leaf; the mean for squared loss
            value = jnp.where(hess > 1e-12 * cnt, num / jnp.where(hess > 0, hess, 1.0), mean)
        else:
            value = mean
        return grown, clip_to_bounds(grown, value[:, None])

    def round_(F, t):
        g, h = _grad_hess(loss, y, F)  # (n, K)
        wt = w
        if subsampled:  # a fresh subsample without replacement each round, of the real rows
            rows = jnp.arange(n)
            if draws is None:
                u = jnp.where(rows < n_real, jax.random.uniform(jax.random.fold_in(key, t), (n,)), 2.0)
            else:
                u = draws[t % ROUND_CHUNK]
            rank = jnp.argsort(u)
            wt = w * jnp.zeros(n, jnp.float32).at[rank].set((rows < n_drawn).astype(jnp.float32))
        targets = jnp.stack([g.T, h.T], axis=-1)  # (K, n, 2)
        grown, value = jax.lax.map(fit_output, (targets, jnp.broadcast_to(wt, (k, n))))
        step = jnp.take_along_axis(value[..., 0], grown.leaf, axis=1).T  # (n, K)
        trees = jax.vmap(lambda gr, v: to_tree(spec, gr, v, "boosting", lower.shape[0]))(grown, value)
        return F + learning_rate * step, trees

    return round_


@functools.partial(jax.jit, static_argnums=(2, 3))
def _subsample_draws(key, start, n_real: int, n: int):
    """``(ROUND_CHUNK, n)``: row ``j`` the uniforms of round ``start + j`` of an unpadded fit of
    ``n_real`` rows, then 2 for each padding row (a small program per ``n_real``)."""
    def one(t):
        return jax.random.uniform(jax.random.fold_in(key, t), (n_real,))

    u = jax.vmap(one)(start + jnp.arange(ROUND_CHUNK, dtype=jnp.int32))
    return jnp.concatenate([u, jnp.full((ROUND_CHUNK, n - n_real), 2.0, u.dtype)], axis=1)


def _unrun(shapes):
    """Trees of a round never run: int fields -2, floats NaN, bools False."""
    def fill(s):
        value = -2 if jnp.issubdtype(s.dtype, jnp.integer) else (False if s.dtype == jnp.bool_ else jnp.nan)
        return jnp.full(s.shape, value, s.dtype)

    return jax.tree.map(fill, shapes)


def _chunk_rounds(spec: GrowSpec, loss, k: int, subsampled: bool, line_search: bool, static: tuple,
                  XbT, y, w, lower, upper, key, t, F, hyper, val):
    """Up to :data:`ROUND_CHUNK` rounds from ``t`` rounds done and scores ``F`` ``(n, K)``.

    The settings are ``dict(static)`` (compiled in) updated by ``hyper`` (traced): always
    ``n_estimators``, ``n_real`` and ``n_drawn`` (see :func:`_round_fn`), and ``learning_rate``
    and :data:`TRACED_SETTINGS` in one of the two. A round runs while ``t < n_estimators`` (and,
    with a validation set ``val``, until :func:`_chunk_stop` says stop).

    Returns ``(t, F, trees (ROUND_CHUNK, K, ...))`` without ``val``; with it
    ``(t, stopped, F, F_val, trees, train_loss (ROUND_CHUNK,), val_loss (ROUND_CHUNK,))``, the
    losses after each round run (NaN for the others).
    """
    s = {**dict(static), **hyper}
    traced = [name for name in TRACED_SETTINGS if name in hyper]
    if traced:  # the jitted grow takes its spec as a static argument: call the function itself
        spec = spec._replace(**{name: hyper[name] for name in traced})
    round_ = _round_fn(spec, loss, k, s["learning_rate"], subsampled, line_search, XbT, y, w, lower, upper, key,
                       s["n_real"], s["n_drawn"], grow.__wrapped__ if traced else grow, s.get("draws"))
    empty = _unrun(jax.eval_shape(round_, F, t)[1])
    if val is None:
        def body(carry, _):
            t, F = carry
            active = t < s["n_estimators"]
            F, trees = jax.lax.cond(active, round_, lambda F, t: (F, empty), F, t)
            return (t + active.astype(t.dtype), F), trees

        (t, F), trees = jax.lax.scan(body, (t, F), None, length=ROUND_CHUNK)
        return t, F, trees

    start = t
    curve = jnp.full(ROUND_CHUNK + 1, jnp.nan, jnp.float32).at[0].set(val["last"])
    nan = jnp.float32(jnp.nan)

    def run(args):
        t, _, F, F_val, curve, j = args
        F, trees = round_(F, t)
        step = jax.vmap(lambda tr: tree_value(tr, val["X"])[:, 0], out_axes=1)(trees)  # (m, K)
        F_val = F_val + s["learning_rate"] * step
        t = t + 1
        train = _mean_loss(loss, y, F, w)
        loss_val = _mean_loss(loss, val["y"], F_val, val["w"])
        curve = curve.at[j + 1].set(loss_val)
        stop = _chunk_stop(curve, j, t, start, val)
        return t, stop, F, F_val, curve, trees, train, loss_val

    def skip(args):
        t, stopped, F, F_val, curve, _ = args
        return t, stopped, F, F_val, curve, empty, nan, nan

    def body(carry, j):
        t, stopped, F, F_val, curve = carry
        active = (t < s["n_estimators"]) & ~stopped
        t, stopped, F, F_val, curve, trees, train, loss_val = jax.lax.cond(
            active, run, skip, (t, stopped, F, F_val, curve, j))
        return (t, stopped, F, F_val, curve), (trees, train, loss_val)

    carry = (t, jnp.array(False), F, val["F"], curve)
    (t, stopped, F, F_val, _), (trees, train, loss_val) = jax.lax.scan(
        body, carry, jnp.arange(ROUND_CHUNK, dtype=jnp.int32))
    return t, stopped, F, F_val, trees, train, loss_val


def _chunk_stop(curve, j, t, start, val):
    r""":func:`_early_stopping.stop_now` after round ``t`` (the ``j``-th of a chunk from ``start``),
    from the chunk's validation losses ``curve`` (``ROUND_CHUNK + 1``: :math:`L_{start}`, then the
    chunk's rounds) and, for a reference round :math:`t - p` before ``start``, the host's
    ``val["prev_ref"][j]`` :math:`= L_{t-p}` and ``val["prev_improved"][j]``: whether a loss
    :math:`L_s`, :math:`t - p < s \le start`, is below :math:`L_{t-p} - \tau` (:func:`_stop_inputs`).
    Comparisons only, in float32 as in ``stop_now``: the same decision, bit for bit."""
    patience, tol = val["patience"], val["tol"]
    i = jnp.arange(ROUND_CHUNK + 1, dtype=t.dtype)
    local = t - patience >= start  # the reference loss is in this chunk
    ref = jnp.where(local, curve[jnp.clip(t - patience - start, 0, ROUND_CHUNK)], val["prev_ref"][j])
    window = (i >= 1) & (i <= j + 1) & (start + i > t - patience)
    improved = jnp.any(window & (curve < ref - tol)) | (~local & val["prev_improved"][j])
    return (t >= patience) & ~improved


def _stop_inputs(curve: np.ndarray, start: int, patience: int, tol: np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The host's part of :func:`_chunk_stop` for a chunk from ``start`` (``curve``: the float32
    validation losses :math:`L_0 .. L_{start}`)."""
    prev_ref = np.full(ROUND_CHUNK, np.nan, np.float32)
    prev_improved = np.zeros(ROUND_CHUNK, bool)
    for j in range(ROUND_CHUNK):
        r = start + j + 1 - patience
        if 0 <= r < start:
            prev_ref[j] = curve[r]
            prev_improved[j] = bool(np.any(curve[r + 1: start + 1] < curve[r] - tol))
    return prev_ref, prev_improved


def _mean_loss(loss, y: Array, F: Array, w: Array) -> Array:
    r""":math:`\sum_i w_i L(y_i, F_i) / \sum_i w_i`, float32 (the boosting loss itself)."""
    fn = BOOSTING_LOSSES[loss] if isinstance(loss, str) else loss
    per = jax.vmap(fn)(y, F[:, 0] if F.shape[1] == 1 else F)
    return jnp.sum(w * jnp.reshape(per, w.shape)) / jnp.sum(w)


def _fit_boosting(spec: GrowSpec, loss, k: int, n_estimators: int, learning_rate: float, subsample: float,
                  line_search: bool, XbT, y, w, lower, upper, key, validation=None, patience=None, tol=None):
    """The rounds of :func:`fit_gradient_boosting`, :data:`ROUND_CHUNK` per call of one compiled
    program, with or without a validation set ``(X_val, y_val, w_val)``.

    Up to :data:`_padding.BUCKET_MAX_ROWS` training rows are padded to their row bucket (and the
    validation rows to theirs) and every setting is traced: one program per row bucket, tree
    depth, loss and the structural settings, whatever ``n_estimators``, ``learning_rate``,
    ``subsample`` and :data:`TRACED_SETTINGS`. Larger fits compile ``learning_rate`` and those in.

    Returns ``(trees, F0)``, or with ``validation`` ``(trees, F0, n_iter, train_loss,
    val_loss)`` (trees: every round run, or up to the stop; losses ``(n_iter + 1,)``).
    """
    n_real = XbT.shape[1]
    small = n_real <= _padding.BUCKET_MAX_ROWS
    n = _padding.row_bucket(n_real) if small else n_real
    settings = {"learning_rate": learning_rate, **{name: getattr(spec, name) for name in TRACED_SETTINGS}}
    hyper = {"n_estimators": np.int32(n_estimators), "n_real": np.int32(n_real),
             "n_drawn": np.int32(max(1, int(round(subsample * n_real))))}
    if small:  # pad the rows, trace the settings (placeholders in the static spec)
        (XbT,) = _padding.pad_rows(n, np.asarray(XbT), axis=1)
        (y,) = _padding.pad_rows(n, np.asarray(y))
        w = _padding.pad_weights(n, np.asarray(w))
        hyper.update({name: np.asarray(v, np.float32) for name, v in settings.items()})
        spec = spec._replace(reg_lambda=0.0, gamma=0.0, min_child_weight=0.0, min_samples_leaf=1)
        static = ()
    else:
        static = tuple(settings.items())
    XbT, y, w = jax.device_put((XbT, y, w))  # jnp.asarray would compile a small program per shape
    F0, F, t = _boosting_init(loss, k, y, w)  # t (0) from a program too: every chunk call has the same inputs
    call = functools.partial(_fit_chunk, spec, loss, k, subsample < 1.0, bool(line_search), static, XbT, y, w,
                             lower, upper, key)
    chunks = []
    def with_draws(start):
        if subsample < 1.0 and small:
            return {**hyper, "draws": _subsample_draws(key, np.int32(start), n_real, n)}
        return hyper

    if validation is None:
        for start in range(0, n_estimators, ROUND_CHUNK):
            t, F, trees = call(t, F, with_draws(start), None)
            chunks.append(trees)
        return _concat(chunks, n_estimators), F0
    X_val, y_val, w_val = (np.asarray(a) for a in validation)
    m = _padding.row_bucket(X_val.shape[0]) if small else X_val.shape[0]
    X_val, y_val = _padding.pad_rows(m, X_val, y_val)
    X_val, y_val, w_val = jax.device_put((X_val, y_val, _padding.pad_weights(m, w_val)))
    train0, val0, F_val = _initial_losses(loss, F0, y, w, y_val, w_val)
    train_curve, val_curve = [np.float32(train0)], [np.float32(val0)]
    tol = np.float32(tol)
    for start in range(0, n_estimators, ROUND_CHUNK):
        prev_ref, prev_improved = _stop_inputs(np.asarray(val_curve, np.float32), start, patience, tol)
        val = {"X": X_val, "y": y_val, "w": w_val, "F": F_val, "last": val_curve[start],
               "patience": np.int32(patience), "tol": tol, "prev_ref": prev_ref, "prev_improved": prev_improved}
        t, stopped, F, F_val, trees, train, loss_val = call(t, F, with_draws(start), val)
        chunks.append(trees)
        train_curve.extend(np.asarray(train))
        val_curve.extend(np.asarray(loss_val))
        if bool(stopped):
            break
    n_iter = int(t)
    return (_concat(chunks, n_iter), F0, n_iter, jax.device_put(np.asarray(train_curve[: n_iter + 1], np.float32)),
            jax.device_put(np.asarray(val_curve[: n_iter + 1], np.float32)))


def _concat(chunks, n_rounds: int):
    """The first ``n_rounds`` rounds of the chunks' trees, concatenated on the host (eager device
    concatenation would compile a program per shape) and put back on the device."""
    return jax.device_put(jax.tree.map(lambda *c: np.concatenate(c)[:n_rounds], *chunks))


@_deprecated.key_keyword
def fit_gradient_boosting(X, y, n_estimators: int = 100, *, key: Array | None = None,
                          loss: str | Callable | None = None, learning_rate: float = 0.1, max_depth: int = 3,
                          subsample: float = 1.0,
                          second_order: bool = False, reg_lambda: float = 1.0, gamma: float = 0.0,
                          min_child_weight: float = 1.0, min_samples_leaf: int = 1,
                          max_bins: int | None = 255, sample_weight=None,
                          n_classes: int | None = None, n_outputs: int = 1,
                          line_search: bool = True, validation_fraction: float | None = None,
                          eval_set=None, n_iter_no_change: int | None = None,
                          tol: float = 1e-7, monotonic_cst=None,
                          categorical_features=None) -> GradientBoosting:
    r"""Gradient boosting with trees of depth ``max_depth``, compiled ``lax.scan`` calls of 32 rounds.

    Starting from :math:`F_0 = \arg\min_c \sum_i w_i L(y_i, c)`, round :math:`t` takes
    :math:`g_i, h_i` (:func:`grad_hess`) at :math:`F_{t-1}`, fits a tree :math:`f_t` and sets
    :math:`F_t = F_{t-1} + \eta f_t`:

    * first order (default, Friedman 2001, Algorithm 1; the deck's "fit the residuals"): a
      least-squares tree on the pseudo-residuals :math:`r_i = -g_i`, each leaf :math:`\ell`
      then set to :math:`\sum_{i \in \ell} w_i r_i / \sum_{i \in \ell} w_i h_i` (one Newton
      step; the mean residual for squared loss);
    * second order (``second_order=True``, XGBoost): leaf weights and split gain

    .. math:: w_\ell^* = -\frac{G_\ell}{H_\ell + \lambda}, \qquad
              \mathcal{L}_{\mathrm{split}} = \frac12\left[\frac{G_L^2}{H_L+\lambda} +
              \frac{G_R^2}{H_R+\lambda} - \frac{(G_L+G_R)^2}{H_L+H_R+\lambda}\right] - \gamma

    (Chen & Guestrin 2016, eqs. (5) and (7); :math:`G, H` the sums of :math:`w_i g_i, w_i h_i`),
    a split made only when :math:`\mathcal{L}_{\mathrm{split}} > 0` and both children have
    :math:`H \ge` ``min_child_weight``.

    Args:
      X: ``(n, d)`` features (float32 after conversion); NaN marks a missing value.
      y: ``(n,)`` targets: reals (``"squared"``, callables), labels 0/1 (``"logistic"``), class
        indices (``"softmax"``); ``(n, n_outputs)`` for a multi-output callable.
      n_estimators: rounds :math:`T \ge 1`.
      key: PRNG key for ``subsample`` (default ``jax.random.key(0)``: a fit is reproducible).
        0.1-style ``fit_gradient_boosting(key, X, y, ...)`` works until 0.3, with a
        ``DeprecationWarning``.
      loss: ``"squared"`` (:math:`\tfrac12(y-F)^2`, regression), ``"logistic"`` (binary
        labels 0/1), ``"softmax"`` (class indices, one tree per class per round), or a callable
        ``loss(y_i, f_i) -> scalar`` with ``f_i`` a scalar (``n_outputs=1``) or an
        ``(n_outputs,)`` vector; its gradient and Hessian diagonal come from ``jax.grad`` and
        ``jax.hessian``. ``None`` (default) follows the targets: integer or boolean labels are
        ``"logistic"`` for two classes (``n_classes``, else ``max(y) + 1``) and ``"softmax"``
        for more; float targets are ``"squared"`` (pass ``loss="logistic"`` for 0/1 labels
        stored as floats). An explicit ``loss`` always wins.
      second_order: XGBoost's Newton trees (``reg_lambda``, ``gamma``, ``min_child_weight``
        apply) instead of least-squares trees on the negative gradient (the deck).
      subsample: fraction of samples drawn without replacement for each round (needs ``key``).
      line_search: first order only: leaf values :math:`\sum r / \sum h`, one Newton step
        per leaf (Friedman's TreeBoost line search, scikit-learn's ``GradientBoosting*``; the
        mean residual for squared loss), instead of the plain mean residual (``False``). Falls
        back to the mean where the Hessian vanishes (e.g. absolute loss).
      min_samples_leaf: samples each child must keep (both modes).
      learning_rate: shrinkage :math:`\eta > 0`.
      max_depth: depth of each tree (default 3: boosting adds many shallow trees, as
        scikit-learn's ``GradientBoosting*`` does).
      reg_lambda: :math:`\lambda \ge 0`, the L2 penalty on leaf weights (second order).
      gamma: :math:`\gamma \ge 0`, the smallest gain worth a split (second order).
      min_child_weight: the smallest Hessian sum :math:`H` of a child (second order).
      max_bins: value bins per feature (≤ 255); ``None`` for every midpoint (exact).
      sample_weight: ``(n,)`` non-negative weights with a positive sum; default ones.
      n_classes: number of classes for ``"softmax"``/``"logistic"`` (default ``max(y) + 1``).
      n_outputs: :math:`K` for a callable loss with vector scores.
      validation_fraction: ``None``, or a fraction in ``(0, 1)`` of the rows held out as a
        validation set before binning: :math:`\lceil f n_+ \rceil` of the :math:`n_+` rows of
        positive ``sample_weight`` (all rows by default), drawn with ``key``, stratified by class
        for ``"logistic"``/``"softmax"``; their weights go with them, zero-weight rows stay in training.
      eval_set: ``None``, or ``(X_val, y_val)``: a validation set of ``(m, d)`` features and targets
        coded as ``y`` (class indices in ``[0, C)``); at most one of it and ``validation_fraction``.
      n_iter_no_change: ``None`` (run all rounds; with a validation set its losses are still
        recorded), or the patience :math:`p \ge 1` of early stopping, which needs a validation
        set: after round :math:`t \ge p` the fit stops when
        :math:`\min_{t-p < s \le t} L_s \ge L_{t-p} - \tau` (scikit-learn's rule, :math:`L_s` the
        weighted mean validation loss of :math:`F_s`, :math:`L_0` that of :math:`F_0`), and the model
        keeps the rounds up to :math:`\arg\min_s L_s` (the first if tied; possibly 0).
      tol: :math:`\tau \ge 0`, the smallest improvement of the validation loss that counts.
      monotonic_cst: ``(d,)`` ints in {-1, 0, 1}: the score :math:`F` (so the prediction, or
        :math:`P(y = 1)` for ``"logistic"``) is non-decreasing (+1) or non-increasing (-1) in
        that feature, 0 free; ``None`` (default) constrains nothing. Every tree is grown with
        the constraints of :func:`~mlwork.trees.fit_tree` (its bounds on the values of its
        criterion: the mean residual first order, :math:`-G/(H+\lambda)` second order), and
        its final leaf values, Friedman's line-search steps included, are clipped to its leaves'
        bounds; a sum of monotone trees is monotone. Single-output losses only, as in
        scikit-learn's ``HistGradientBoosting*``.
      categorical_features: indices or a ``(d,)`` boolean mask of categorical features, as for
        :func:`~mlwork.trees.fit_tree` (each tree orders a node's categories by
        :math:`G/(H+\lambda)`, second order, or their mean residual, first order).

    The rounds run in calls of ``ROUND_CHUNK`` (32) rounds of one compiled program; with a
    validation set it also computes the training and validation losses of every round on the
    device and decides the stop after each round, skipping the rest of its call (later calls are
    not made). Compilation: up to 8192 rows, one program serves every ``n_estimators``,
    ``learning_rate``, ``subsample`` fraction, ``reg_lambda``, ``gamma``, ``min_child_weight``,
    ``min_samples_leaf > 1`` and every row count of a bucket (the rows are padded with zero-weight
    copies of the first: float32 rounding, see the module notes); above, nothing is padded and
    those settings are compiled in.

    Returns:
      A :class:`GradientBoosting` with ``(T, K)`` trees: ``T = n_estimators``, or after early
      stopping its :attr:`~GradientBoosting.best_iteration`; with a validation set also the loss
      curves ``train_loss`` and ``validation_loss`` ``(n_iter + 1,)``.

    Raises:
      ValueError: an unknown ``loss``, ``"logistic"`` with other than two classes, bad shapes
        (a PRNG key where ``X``, ``y`` or ``n_estimators`` belongs, ``X`` and ``y`` of different
        lengths), ±inf in ``X``, out-of-range settings
        (``n_estimators``, ``learning_rate``, ``subsample``, ``reg_lambda``, ``gamma``,
        ``min_child_weight``), ``sample_weight`` all zero, negative or NaN; ``validation_fraction``
        outside ``(0, 1)`` or leaving an empty side, ``eval_set`` not a pair, of another width or
        with bad targets, both of them, ``n_iter_no_change < 1`` or without a validation set,
        ``tol < 0``; ``monotonic_cst``
        not of length ``d`` or with values other than -1, 0, 1, or given with more than one output
        (``"softmax"``, ``n_outputs > 1``).

    Zero weight: a leaf, or a whole round, that holds no weight (a subsample of zero-weight rows)
    adds 0 to the score — the ensemble keeps its value — as does a second-order leaf with
    :math:`H + \lambda = 0`. ``sample_weight`` all zero, negative or NaN raises ``ValueError``.

    Example:
      >>> import numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
      >>> gb = trees.fit_gradient_boosting(X, y, 3, max_depth=1)  # float y: loss="squared"
      >>> gb.loss, [round(v, 4) for v in trees.predict(gb, X[[0, 5]]).tolist()]  # 0.5 -+ 0.5 (1 - 0.9^3)
      ('squared', [0.3645, 0.6355])
      >>> trees.fit_gradient_boosting(X, y.astype(int), 3, max_depth=1).loss  # integer labels
      'logistic'
      >>> xgb = trees.fit_gradient_boosting(X, y, n_estimators=1, max_depth=1, second_order=True)
      >>> xgb.trees.value.ravel().tolist()  # -G/(H + lambda) = -(3 * 0.5)/(3 + 1)
      [-0.375, 0.375]
      >>> X_val, y_val = np.array([[1.0], [4.0]]), np.array([1.0, 0.0])  # the opposite labels
      >>> es = trees.fit_gradient_boosting(X, y, 50, max_depth=1, eval_set=(X_val, y_val), n_iter_no_change=2)
      >>> es.n_iter, es.best_iteration, es.trees.feature.shape[0]  # worse from round 1: keep F_0 alone
      (2, 0, 0)

    Reference: Friedman, "Greedy function approximation: a gradient boosting machine",
    Ann. Statist. 29 (2001), Algorithm 1; Chen & Guestrin, "XGBoost: a scalable tree boosting
    system", KDD 2016, eqs. (5)-(7).
    """
    _checks.check_not_key(n_estimators, "n_estimators", "a positive integer")
    n_estimators = _checks.check_int(n_estimators, "n_estimators", 1)
    learning_rate = _checks.check_positive(learning_rate, "learning_rate")
    subsample = _checks.check_fraction(subsample, "subsample")
    reg_lambda = _checks.check_positive(reg_lambda, "reg_lambda", allow_zero=True)
    gamma = _checks.check_positive(gamma, "gamma", allow_zero=True)
    min_child_weight = _checks.check_positive(min_child_weight, "min_child_weight", allow_zero=True)
    if not isinstance(second_order, bool):
        raise ValueError(f"second_order must be True or False, got {second_order!r}")
    if not (loss is None or callable(loss) or loss in BOOSTING_LOSSES):
        raise ValueError(f"loss must be None, one of {sorted(BOOSTING_LOSSES)} or a callable, got {loss!r}")
    validation_fraction, n_iter_no_change, tol = _early_stopping.check_settings(
        validation_fraction, eval_set, n_iter_no_change, tol)
    validation = None
    if validation_fraction is not None:  # split first: bins and F_0 come from the training rows only
        X = _checks.check_X(X)
        n_all = X.shape[0]
        if loss is None:
            loss = _default_loss(y, n_all, n_classes)
        target, k, c = _targets(loss, y, n_all, n_classes, n_outputs)
        sw = _checks.check_sample_weight(sample_weight, n_all)
        train, val = _early_stopping.split(jax.random.key(0) if key is None else key, n_all, validation_fraction,
                                           target if loss in ("logistic", "softmax") else None,
                                           None if sample_weight is None else sw)
        validation = (X[val], target[val], sw[val])
        X, target = X[train], target[train]
        sample_weight = None if sample_weight is None else sw[train]
    data = prepare(X, max_bins, sample_weight, categorical_features)
    n = data.X.shape[0]
    if validation is None:
        if loss is None:
            loss = _default_loss(y, n, n_classes)
        target, k, c = _targets(loss, y, n, n_classes, n_outputs)
    if eval_set is not None:
        X_val, y_val = _early_stopping.check_eval_set(eval_set, data.X.shape[1])
        validation = (X_val, _eval_targets(loss, y_val, X_val.shape[0], c, target), np.ones(X_val.shape[0], np.float32))
    target = np.asarray(target)  # on the host: padded (small data) before it goes to the device
    if monotonic_cst is not None and k != 1:
        raise ValueError(f"monotonic_cst needs a single-output loss; got {k} outputs per round "
                         f"(loss={loss!r}: multi-class is not supported)")
    spec, _, w = tree_spec(data, np.zeros(n, np.float32), task="regression", criterion=None,
                           max_depth=max_depth, min_samples_split=2, min_samples_leaf=min_samples_leaf,
                           max_features=None, sample_weight=sample_weight, n_classes=None,
                           monotonic_cst=monotonic_cst, categorical_features=categorical_features)
    spec = spec._replace(midpoint=False)
    if second_order:
        spec = spec._replace(criterion="newton", reg_lambda=reg_lambda, gamma=gamma,
                             min_child_weight=min_child_weight, counted=min_samples_leaf > 1)
    spec = feature_parallel(spec)
    key = jax.random.key(0) if key is None else key
    # A callable loss is traced as it is now on every fit (ThisCall), never served from a program
    # compiled for the same function object when its closure held other values.
    fn = loss_fn(loss)
    fn = loss if isinstance(loss, str) else this_call(fn)
    if validation is None:
        trees, F0 = _fit_boosting(spec, fn, k, n_estimators, learning_rate, subsample, bool(line_search),
                                  data.XbT, target, w, data.lower, data.upper, key)
        return GradientBoosting(trees=trees, init=F0, learning_rate=learning_rate, loss=loss)
    patience = n_estimators + 1 if n_iter_no_change is None else n_iter_no_change  # > n_estimators: never
    buffer, F0, n_iter, train_loss, val_loss = _fit_boosting(
        spec, fn, k, n_estimators, learning_rate, subsample, bool(line_search), data.XbT, target, w, data.lower,
        data.upper, key, validation, patience, tol)
    kept = n_iter if n_iter_no_change is None else int(np.argmin(np.asarray(val_loss)))
    trees = jax.tree.map(lambda a: a[:kept], buffer)
    return GradientBoosting(trees=trees, init=F0, learning_rate=learning_rate, loss=loss, train_loss=train_loss,
                            validation_loss=val_loss)


def _targets(loss, y, n: int, n_classes, n_outputs) -> tuple[np.ndarray, int, int | None]:
    """``(target, K, C)``: checked targets for ``loss`` (NumPy), outputs :math:`K`, classes :math:`C`
    (``None`` for regression)."""
    c = None
    if loss in ("logistic", "softmax"):
        labels, c = _checks.check_labels(y, n, n_classes)
        if loss == "logistic" and c != 2:
            raise ValueError(f"loss='logistic' needs labels 0/1; got {c} classes (use 'softmax')")
        target = np.asarray(labels) if loss == "softmax" else np.asarray(labels, np.float32)
        k = c if loss == "softmax" else 1
    else:
        target = (_checks.check_targets(y, n) if loss == "squared" or np.ndim(y) == 1
                  else np.asarray(y, np.float32))
        k = 1 if loss == "squared" else _checks.check_int(n_outputs, "n_outputs", 1)
    if target.shape[0] != n:
        raise ValueError(f"y has {target.shape[0]} samples but X has {n}")
    return target, k, c


def _eval_targets(loss, y_val, m: int, c: int | None, target: np.ndarray) -> np.ndarray:
    """``eval_set``'s targets, checked like the training ones (dtype and trailing shape of ``target``)."""
    if c is not None:
        return _early_stopping.check_eval_labels(y_val, m, c).astype(target.dtype)
    try:
        y_val = (_checks.check_targets(y_val, m) if np.ndim(y_val) == 1 else np.asarray(y_val, np.float32))
    except ValueError as e:
        fail("eval_set", "(X_val, y_val) with finite real y_val", str(e))
    if y_val.shape != (m,) + target.shape[1:]:
        fail("eval_set", f"(X_val, y_val) with y_val of shape {(m,) + target.shape[1:]}", f"shape {y_val.shape}")
    return y_val


def _default_loss(y, n: int, n_classes) -> str:
    """The loss the targets call for: labels (integer or boolean) are ``"logistic"`` for two
    classes and ``"softmax"`` for more; anything else ``"squared"``."""
    if not (_checks.is_label_dtype(y) and np.ndim(y) == 1):
        return "squared"
    _, c = _checks.check_labels(y, n, n_classes)
    return "logistic" if c == 2 else "softmax"


def boosting_scores(model: GradientBoosting, X: Array) -> Array:
    r"""Raw scores :math:`F(x) = F_0 + \eta \sum_t f_t(x)`, ``(n, K)``.

    The trees are summed in order, ``ROUND_CHUNK`` (32) rounds per call of one compiled program
    (the last chunk padded with trees of value 0, which add exactly 0): models of any
    ``n_estimators`` share the program; :math:`F_0 + \eta\,\cdot` is a tiny program per :math:`\eta`.
    """
    total = jax.device_put(np.zeros((X.shape[0], model.init.shape[0]), np.float32))
    n_rounds = model.trees.feature.shape[0]
    extra = -n_rounds % ROUND_CHUNK
    # Concrete trees are cut into chunks on the host (eager device ops would compile one small
    # program per shape); under a trace, with jnp.
    xp = jnp if any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(model.trees)) else np

    def chunks(a):
        a = xp.concatenate([a, xp.zeros((extra, *a.shape[1:]), a.dtype)]) if extra else xp.asarray(a)
        return a.reshape(-1, ROUND_CHUNK, *a.shape[1:])

    stacked = jax.tree.map(chunks, model.trees)
    for i in range(stacked.feature.shape[0]):
        total = _add_trees(jax.device_put(jax.tree.map(lambda a, i=i: a[i], stacked)), X, total)
    return _scores(model.init, model.learning_rate, total)


@jax.jit
def _add_trees(trees: Tree, X: Array, total: Array) -> Array:
    def body(total, trees):
        return total + jax.vmap(lambda t: tree_value(t, X)[:, 0], out_axes=1)(trees), None

    return jax.lax.scan(body, total, trees)[0]


@functools.partial(jax.jit, static_argnums=1)
def _scores(init: Array, learning_rate: float, total: Array) -> Array:
    # learning_rate compiled in (a tiny program per value): XLA then contracts the multiply-add
    # into one rounding, as the one-program prediction before issue 29 did (bit for bit).
    return init[None, :] + learning_rate * total


def boosting_predict(model: GradientBoosting, X) -> Array:
    """Classes (logistic: :math:`F > 0`; softmax: argmax), else the raw scores :math:`F(x)`."""
    F = boosting_scores(model, check_X_any(X, model.trees.n_features))
    if model.loss == "logistic":
        return (F[:, 0] > 0).astype(jnp.int32)
    if model.loss == "softmax":
        return jnp.argmax(F, axis=1).astype(jnp.int32)
    return F[:, 0] if F.shape[1] == 1 else F


def boosting_predict_proba(model: GradientBoosting, X) -> Array:
    r"""Probabilities :math:`\sigma(F)` (logistic) or :math:`\mathrm{softmax}(F)`."""
    F = boosting_scores(model, check_X_any(X, model.trees.n_features))
    if model.loss == "logistic":
        p = jax.nn.sigmoid(F[:, 0])
        return jnp.stack([1.0 - p, p], axis=1)
    if model.loss == "softmax":
        return jax.nn.softmax(F, axis=1)
    raise ValueError("predict_proba needs a model fit with loss='logistic' or 'softmax'")


# The name of 0.1 works until 0.3, with a DeprecationWarning.
__getattr__ = _deprecated.module_getattr("mlwork.trees.boosting", globals(), {"LOSSES": "BOOSTING_LOSSES"})
