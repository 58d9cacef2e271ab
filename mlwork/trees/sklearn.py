r"""scikit-learn estimators over :mod:`mlwork.trees` (the module name follows ``xgboost.sklearn``
and ``lightgbm.sklearn``).

Each estimator keeps scikit-learn's contract: ``__init__`` only stores its arguments,
``get_params``/``set_params`` come from :class:`~sklearn.base.BaseEstimator`, ``fit`` validates
its input with :func:`sklearn.utils.validation.validate_data`, stores the fitted functional model
as ``model_`` (a pytree that :func:`mlwork.trees.predict` and friends accept) and returns
``self``. They therefore work in ``cross_val_score``, ``GridSearchCV``, ``Pipeline`` and with
``pickle``.

Differences from the scikit-learn estimators of the same name, all from the fixed-size array
trees of :mod:`mlwork.trees`:

* ``max_depth=None`` cannot mean "grow until pure": a tree of depth :math:`D` is stored in
  :math:`2^D` leaf slots. ``None`` means depth :math:`\min(12, \lceil\log_2 n\rceil)` for
  :math:`n` training samples (the depth a balanced tree needs for one leaf per sample).
* Split search is over at most ``max_bins`` quantile bins per feature (255 by default, the
  "hist" method); ``max_bins=None`` tries every midpoint between distinct values, as
  scikit-learn's trees do.
* NaN in ``X`` is supported by every estimator (each split learns where missing values go).
* ``random_state`` seeds a JAX key: an int ``s`` becomes ``jax.random.key(s)`` (so the estimator
  reproduces ``fit_*(X, y, ..., key=jax.random.key(s))`` exactly); ``None`` or a
  :class:`numpy.random.RandomState` draws the seed from that generator, as scikit-learn does.
* Predictions are computed in float32 by compiled programs; rows are padded to a bucketed
  count (powers of two, then multiples of ``ROW_BUCKET``) so that predicting on many
  differently sized inputs reuses a few compiled programs.
* Fits compile too (seconds each). On small data (up to 8192 rows) the gradient-boosting
  estimators share their programs across a grid search: ``n_estimators``, ``learning_rate``,
  ``subsample`` and the regularisers are traced, and training rows are padded with zero-weight
  rows to a bucket (see :mod:`mlwork.trees.boosting`); ``max_depth`` compiles a program per value.
  Across sessions, :func:`mlwork.train.enable_compilation_cache` keeps the programs on disk.

This is the only mlwork module that imports scikit-learn (version 1.6 or later).
"""

from __future__ import annotations

import math
import numbers

import jax
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from mlwork.trees import _checks
from mlwork.trees import boosting as _boosting
from mlwork.trees import models as _models
from mlwork.trees.ensemble import fit_random_forest
from mlwork.trees.tree import fit_tree

__all__ = [
    "EXPECTED_FAILED_CHECKS",
    "AdaBoostClassifier",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "RandomForestClassifier",
    "RandomForestRegressor",
    "expected_failed_checks",
]

#: Deepest tree that ``max_depth=None`` resolves to (4096 leaf slots), as in the functional API.
AUTO_MAX_DEPTH = _checks.AUTO_MAX_DEPTH
#: Above this many rows, prediction inputs are padded to a multiple of it (powers of two below).
ROW_BUCKET = 16384


def jax_key(random_state) -> jax.Array:
    """A JAX PRNG key from a scikit-learn ``random_state``.

    Args:
      random_state: an int in ``[0, 2**32 − 1]`` (used as the seed itself), ``None`` (a seed
        drawn from NumPy's global generator) or a :class:`numpy.random.RandomState` (a seed
        drawn from it).

    Returns:
      A typed key ``jax.random.key(seed)``.

    Raises:
      ValueError: for any other ``random_state`` (negative or too large ints included).

    Example:
      >>> import jax
      >>> from mlwork.trees.sklearn import jax_key
      >>> bool((jax.random.key_data(jax_key(3)) == jax.random.key_data(jax.random.key(3))).all())
      True
    """
    rs = check_random_state(random_state)  # validates ints as NumPy seeds, raises otherwise
    seed = int(random_state) if isinstance(random_state, numbers.Integral) else int(rs.randint(np.iinfo(np.int32).max))
    return _key_of_seed(np.uint32(seed))  # seeds are below 2**32: the key of jax.random.key(seed)


#: ``jax.random.key`` compiled once for a traced seed (called eagerly with a Python int, it
#: compiles again for many seeds: a cost on every fit of a grid search).
_key_of_seed = jax.jit(jax.random.key)


def resolve_depth(max_depth, n_samples: int) -> int:
    r"""``max_depth``, with ``None`` resolved to :math:`\min(12, \max(1, \lceil\log_2 n\rceil))`."""
    if max_depth is None:
        return min(AUTO_MAX_DEPTH, max(1, math.ceil(math.log2(max(n_samples, 2)))))
    return max_depth


def _bucket(n: int) -> int:
    """Padded row count: the next power of two (at least 8), or a multiple of ``ROW_BUCKET``."""
    if n > ROW_BUCKET:
        return -(-n // ROW_BUCKET) * ROW_BUCKET
    return max(8, 1 << (n - 1).bit_length())


def _on_padded_rows(fn, X: np.ndarray) -> np.ndarray:
    """``fn(X)`` evaluated on ``X`` padded with zero rows to a bucketed count, padding dropped.

    Every tree model predicts each row independently, so this changes no value; it bounds the
    number of compiled prediction programs.
    """
    n = X.shape[0]
    padded = np.zeros((_bucket(n), X.shape[1]), np.float32)
    padded[:n] = X
    return np.asarray(fn(padded))[:n]


class _TreeModel(BaseEstimator):
    """Validation, keys, tags and importances shared by every estimator here."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _check_fit_input(self, X, y, sample_weight, y_numeric: bool):
        X, y = validate_data(self, X, y, dtype=np.float32, ensure_all_finite="allow-nan",
                             y_numeric=y_numeric)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float32, ensure_non_negative=True)
        return X, y, sample_weight

    def _check_predict_input(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        return validate_data(self, X, reset=False, dtype=np.float32, ensure_all_finite="allow-nan")

    @property
    def feature_importances_(self) -> np.ndarray:
        r"""Impurity-based importances ``(n_features,)``, summing to 1 (0 if nothing split).

        For one tree, :math:`I_j \propto \sum_{t: f_t = j} \Delta_t` with :math:`\Delta_t` the
        weighted impurity decrease of node :math:`t` (scikit-learn's mean decrease in impurity);
        forests average their trees' normalised importances, AdaBoost weights them by
        :math:`\alpha_t`, gradient boosting sums the gains of all trees
        (:func:`mlwork.trees.feature_importances`).
        """
        check_is_fitted(self, "model_")
        return np.asarray(_models.feature_importances(self.model_), np.float64)


class _Classifier(ClassifierMixin, _TreeModel):
    """Label encoding and predictions shared by the classifiers."""

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` ``(n_samples, n_features)`` (NaN allowed) and labels ``y`` ``(n_samples,)``.

        Args:
          X: array-like ``(n_samples, n_features)``, cast to float32; NaN marks a missing value.
          y: class labels ``(n_samples,)`` of any type :func:`numpy.unique` sorts.
          sample_weight: ``(n_samples,)`` non-negative weights, or ``None`` for ones.

        Returns:
          ``self``.

        Raises:
          ValueError: bad input (shapes, ±inf, a single class, negative weights, bad settings).
        """
        X, y, sample_weight = self._check_fit_input(X, y, sample_weight, y_numeric=False)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        self.n_classes_ = len(self.classes_)
        if self.n_classes_ < 2:
            raise ValueError(f"y has only one class ({self.classes_[0]!r}); a classifier needs at least two "
                             "classes")
        self.model_ = self._fit_model(X, encoded.astype(np.int32), sample_weight)
        return self

    def predict(self, X) -> np.ndarray:
        """The predicted class label of each row of ``X``, ``(n_samples,)``."""
        X = self._check_predict_input(X)
        index = _on_padded_rows(lambda Z: _models.predict(self.model_, Z), X)
        return self.classes_[index]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``, columns in the order of ``classes_``."""
        X = self._check_predict_input(X)
        return _on_padded_rows(lambda Z: _models.predict_proba(self.model_, Z), X).astype(np.float64)

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba` (``-inf`` where a probability is 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


class _Regressor(RegressorMixin, _TreeModel):
    """Target validation and predictions shared by the regressors."""

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` ``(n_samples, n_features)`` (NaN allowed) and real targets ``y`` ``(n_samples,)``.

        Args:
          X: array-like ``(n_samples, n_features)``, cast to float32; NaN marks a missing value.
          y: finite real targets ``(n_samples,)``.
          sample_weight: ``(n_samples,)`` non-negative weights, or ``None`` for ones.

        Returns:
          ``self``.

        Raises:
          ValueError: bad input (shapes, ±inf or NaN in ``y``, negative weights, bad settings).
        """
        X, y, sample_weight = self._check_fit_input(X, y, sample_weight, y_numeric=True)
        self.model_ = self._fit_model(X, y.astype(np.float32), sample_weight)
        return self

    def predict(self, X) -> np.ndarray:
        """The predicted value of each row of ``X``, ``(n_samples,)`` float64 (computed in float32)."""
        X = self._check_predict_input(X)
        return _on_padded_rows(lambda Z: _models.predict(self.model_, Z), X).astype(np.float64)


# ============================================================================= trees
class DecisionTreeClassifier(_Classifier):
    r"""A classification tree (:func:`mlwork.trees.fit_tree`), scikit-learn's interface.

    Each split maximises the weighted impurity decrease
    :math:`W_t\, i(t) - W_L\, i(L) - W_R\, i(R)` with :math:`i` the Gini impurity
    :math:`1 - \sum_c p_c^2` or the entropy :math:`-\sum_c p_c \log_2 p_c`
    (:func:`mlwork.trees.gini_impurity`, :func:`mlwork.trees.entropy_impurity`); a leaf
    predicts its class proportions (Breiman et al. 1984, CART).

    Args:
      criterion: ``"gini"``, ``"entropy"`` or ``"log_loss"`` (the same as ``"entropy"``).
      max_depth: depth ``1..20``, or ``None`` (see the module docstring).
      min_samples_split: fewest samples a node needs to split.
      min_samples_leaf: fewest samples each child must keep.
      max_features: features tried per node: ``None`` (all), ``"sqrt"``, ``"log2"``, an int or
        a fraction.
      max_bins: quantile bins per feature (2..255), or ``None`` for every midpoint.
      random_state: seeds the per-node feature sampling (see :func:`jax_key`).

    Attributes:
      model_: the fitted :class:`mlwork.trees.Tree`; ``classes_``, ``n_classes_``, ``n_features_in_``
        and ``feature_importances_`` as in scikit-learn.

    Raises:
      ValueError: from ``fit``: bad input (shapes, ±inf in ``X``, a single class, negative
        weights) or a bad setting (an unknown ``criterion``, ``max_depth < 1``, ...).

    Example:
      >>> import numpy as np
      >>> from mlwork.trees.sklearn import DecisionTreeClassifier
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array(["no", "no", "no", "yes", "yes", "yes"])
      >>> clf = DecisionTreeClassifier(max_depth=1).fit(X, y)
      >>> clf.predict([[1.0], [4.0]]).tolist(), clf.predict_proba([[1.0]]).tolist()
      (['no', 'yes'], [[1.0, 0.0]])
    """

    def __init__(self, criterion="gini", max_depth=None, min_samples_split=2, min_samples_leaf=1,
                 max_features=None, max_bins=255, random_state=None):
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_bins = max_bins
        self.random_state = random_state

    def _fit_model(self, X, y, sample_weight):
        criterion = "entropy" if self.criterion == "log_loss" else self.criterion
        return fit_tree(X, y, task="classification", criterion=criterion,
                        max_depth=resolve_depth(self.max_depth, X.shape[0]),
                        min_samples_split=self.min_samples_split, min_samples_leaf=self.min_samples_leaf,
                        max_features=self.max_features, max_bins=self.max_bins,
                        key=jax_key(self.random_state), sample_weight=sample_weight,
                        n_classes=len(self.classes_))


class DecisionTreeRegressor(_Regressor):
    r"""A regression tree with variance-reduction splits (:func:`mlwork.trees.fit_tree`).

    Each split maximises :math:`W_t \mathrm{Var}(t) - W_L \mathrm{Var}(L) - W_R \mathrm{Var}(R)`
    (:func:`mlwork.trees.variance_impurity`: the decrease of the squared error); a leaf
    predicts the weighted mean of its targets (Breiman et al. 1984, CART, chapter 8).

    Args:
      criterion: ``"squared_error"`` (variance reduction; the only one).
      max_depth, min_samples_split, min_samples_leaf, max_features, max_bins, random_state:
        as for :class:`DecisionTreeClassifier`.
      monotonic_cst: ``(n_features,)`` ints in {-1, 0, 1}: the prediction is non-decreasing
        (+1) or non-increasing (-1) in that feature, 0 free; ``None`` constrains nothing
        (scikit-learn's parameter; :func:`mlwork.trees.fit_tree` explains the method).
      categorical_features: indices or an ``(n_features,)`` boolean mask of categorical
        features, whose values are integer codes below ``max_bins`` (scikit-learn's
        ``HistGradientBoosting*`` parameter; splits send a set of categories left, see
        :func:`mlwork.trees.fit_tree`); ``None``: every feature is numeric.

    Attributes:
      model_: the fitted :class:`mlwork.trees.Tree`; ``n_features_in_``, ``feature_importances_``.

    Raises:
      ValueError: from ``fit``: bad input (shapes, ±inf in ``X``, non-finite ``y``, negative
        weights) or a bad setting (``criterion`` other than ``"squared_error"``, ...).

    Example:
      >>> import numpy as np
      >>> from mlwork.trees.sklearn import DecisionTreeRegressor
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0.0, 0.0, 0.0, 10.0, 10.0, 10.0])
      >>> DecisionTreeRegressor(max_depth=1).fit(X, y).predict([[1.0], [4.0]]).tolist()
      [0.0, 10.0]
    """

    def __init__(self, criterion="squared_error", max_depth=None, min_samples_split=2, min_samples_leaf=1,
                 max_features=None, max_bins=255, random_state=None, monotonic_cst=None,
                 categorical_features=None):
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_bins = max_bins
        self.random_state = random_state
        self.monotonic_cst = monotonic_cst
        self.categorical_features = categorical_features

    def _fit_model(self, X, y, sample_weight):
        return fit_tree(X, y, task="regression", criterion=_regression_criterion(self.criterion),
                        max_depth=resolve_depth(self.max_depth, X.shape[0]),
                        min_samples_split=self.min_samples_split, min_samples_leaf=self.min_samples_leaf,
                        max_features=self.max_features, max_bins=self.max_bins,
                        key=jax_key(self.random_state), sample_weight=sample_weight,
                        monotonic_cst=self.monotonic_cst, categorical_features=self.categorical_features)


def _regression_criterion(criterion) -> str:
    if criterion != "squared_error":
        raise ValueError(f"criterion must be 'squared_error' (variance reduction), got {criterion!r}")
    return "variance"


# ============================================================================= forests
class RandomForestClassifier(_Classifier):
    r"""A random forest (:func:`mlwork.trees.fit_random_forest`): bootstrap samples, soft vote.

    Predicts :math:`\arg\max_k \frac1T \sum_{t=1}^T p_t(k \mid x)`, trees fit to bootstrap
    samples with ``max_features`` features drawn at every node (Breiman 2001).

    Args:
      n_estimators: number of trees.
      criterion, max_depth, min_samples_split, min_samples_leaf, max_bins: as for
        :class:`DecisionTreeClassifier`.
      max_features: features tried per node (default ``"sqrt"``, scikit-learn's default).
      bootstrap: draw a bootstrap sample per tree (else every tree sees all samples).
      oob_score: compute the out-of-bag accuracy ``oob_score_`` (needs ``bootstrap``).
      random_state: seeds the bootstrap samples and feature sampling (see :func:`jax_key`).

    Attributes:
      model_: the fitted :class:`mlwork.trees.Forest`; ``oob_score_`` when ``oob_score``;
        ``classes_``, ``n_classes_``, ``n_features_in_``, ``feature_importances_``.

    Raises:
      ValueError: from ``fit``: bad input (shapes, ±inf in ``X``, a single class, negative
        weights) or a bad setting (an unknown ``criterion``, ``max_depth < 1``, ``oob_score`` without
        ``bootstrap``, ...).

    Example:
      >>> import numpy as np
      >>> from mlwork.trees.sklearn import RandomForestClassifier
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array(["no", "no", "no", "yes", "yes", "yes"])
      >>> rf = RandomForestClassifier(n_estimators=5, max_depth=1, oob_score=True, random_state=0)
      >>> rf.fit(X, y).predict([[1.0], [4.0]]).tolist(), rf.oob_score_
      (['no', 'yes'], 1.0)
    """

    def __init__(self, n_estimators=100, criterion="gini", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, max_features="sqrt", bootstrap=True, oob_score=False, max_bins=255,
                 random_state=None):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.max_bins = max_bins
        self.random_state = random_state

    def _fit_model(self, X, y, sample_weight):
        criterion = "entropy" if self.criterion == "log_loss" else self.criterion
        forest = _fit_forest(self, X, y, sample_weight, "classification", criterion, len(self.classes_))
        return forest


class RandomForestRegressor(_Regressor):
    r"""A regression forest (:func:`mlwork.trees.fit_random_forest`): the mean of the trees.

    Predicts :math:`\frac1T \sum_{t=1}^T h_t(x)`, trees fit to bootstrap samples
    (Breiman 2001).

    Args:
      n_estimators, max_depth, min_samples_split, min_samples_leaf, bootstrap, oob_score, max_bins, random_state: as
        for :class:`RandomForestClassifier` (``oob_score_`` is :math:`R^2`).
      criterion: ``"squared_error"``.
      max_features: features tried per node (default ``1.0``, all: scikit-learn's default; the
        deck's :math:`p/3` is ``1/3``).
      monotonic_cst, categorical_features: as for :class:`DecisionTreeRegressor`, in every tree.

    Attributes:
      model_: the fitted :class:`mlwork.trees.Forest`; ``oob_score_`` (:math:`R^2`) when
        ``oob_score``; ``n_features_in_``, ``feature_importances_``.

    Raises:
      ValueError: from ``fit``: bad input (shapes, ±inf in ``X``, non-finite ``y``, negative
        weights) or a bad setting (``criterion`` other than ``"squared_error"``, ...).

    Example:
      >>> import numpy as np
      >>> from mlwork.trees.sklearn import RandomForestRegressor
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0.0, 0.0, 0.0, 10.0, 10.0, 10.0])
      >>> rf = RandomForestRegressor(n_estimators=5, max_depth=1, random_state=0).fit(X, y)
      >>> rf.predict([[1.0], [4.0]]).tolist()
      [0.0, 10.0]
    """

    def __init__(self, n_estimators=100, criterion="squared_error", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, max_features=1.0, bootstrap=True, oob_score=False, max_bins=255,
                 random_state=None, monotonic_cst=None, categorical_features=None):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.max_bins = max_bins
        self.random_state = random_state
        self.monotonic_cst = monotonic_cst
        self.categorical_features = categorical_features

    def _fit_model(self, X, y, sample_weight):
        return _fit_forest(self, X, y, sample_weight, "regression", _regression_criterion(self.criterion), None)


def _fit_forest(est, X, y, sample_weight, task, criterion, n_classes):
    """Fit the forest of ``est`` and set ``est.oob_score_`` when asked."""
    if est.oob_score and not est.bootstrap:
        raise ValueError("oob_score=True needs bootstrap=True (out-of-bag samples come from bootstrap)")
    forest = fit_random_forest(X, y, est.n_estimators, key=jax_key(est.random_state), task=task,
                               criterion=criterion, max_depth=resolve_depth(est.max_depth, X.shape[0]),
                               max_features=est.max_features, bootstrap=est.bootstrap,
                               min_samples_split=est.min_samples_split, min_samples_leaf=est.min_samples_leaf,
                               max_bins=est.max_bins, compute_oob=bool(est.oob_score),
                               sample_weight=sample_weight, n_classes=n_classes,
                               monotonic_cst=getattr(est, "monotonic_cst", None),
                               categorical_features=getattr(est, "categorical_features", None))
    if est.oob_score:
        est.oob_score_ = float(forest.oob_score)
    return forest


# ============================================================================= boosting
class _GradientBoosting:
    """Constructor and fit of the gradient-boosting estimators."""

    def __init__(self, loss, learning_rate=0.1, n_estimators=100, subsample=1.0, max_depth=3, min_samples_leaf=1,
                 max_bins=255, second_order=False, reg_lambda=1.0, gamma=0.0, min_child_weight=1.0,
                 early_stopping="auto", validation_fraction=0.1, n_iter_no_change=10, tol=1e-7,
                 random_state=None, monotonic_cst=None, categorical_features=None):
        self.loss = loss
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.subsample = subsample
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_bins = max_bins
        self.second_order = second_order
        self.reg_lambda = reg_lambda
        self.gamma = gamma
        self.min_child_weight = min_child_weight
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.monotonic_cst = monotonic_cst
        self.categorical_features = categorical_features

    def _boost(self, X, y, sample_weight, loss, n_classes):
        if not (self.early_stopping == "auto" or isinstance(self.early_stopping, bool | np.bool_)):
            raise ValueError(f"early_stopping must be 'auto', True or False; got {self.early_stopping!r}")
        stop = X.shape[0] > 10_000 if self.early_stopping == "auto" else bool(self.early_stopping)
        model = _boosting.fit_gradient_boosting(
            X, y, loss=loss, n_estimators=self.n_estimators, learning_rate=self.learning_rate,
            max_depth=resolve_depth(self.max_depth, X.shape[0]), subsample=self.subsample,
            second_order=self.second_order, reg_lambda=self.reg_lambda, gamma=self.gamma,
            min_child_weight=self.min_child_weight, min_samples_leaf=self.min_samples_leaf,
            max_bins=self.max_bins, key=jax_key(self.random_state), sample_weight=sample_weight,
            n_classes=n_classes, validation_fraction=self.validation_fraction if stop else None,
            n_iter_no_change=self.n_iter_no_change if stop else None, tol=self.tol,
            monotonic_cst=self.monotonic_cst, categorical_features=self.categorical_features)
        self.do_early_stopping_ = stop
        self.n_iter_ = int(model.trees.feature.shape[0])
        self.n_trees_per_iteration_ = int(model.init.shape[0])
        empty = np.zeros(0, np.float64)
        self.train_score_ = empty if not stop else -np.asarray(model.train_loss, np.float64)
        self.validation_score_ = empty if not stop else -np.asarray(model.validation_loss, np.float64)
        return model

    def _raw_scores(self, X) -> np.ndarray:
        """:math:`F(x)` ``(n_samples, K)`` in float64."""
        X = self._check_predict_input(X)
        return _on_padded_rows(lambda Z: _boosting.boosting_scores(self.model_, Z), X).astype(np.float64)


_GB_PARAMS_DOC = """

    Args:
      loss: {loss}
      learning_rate: shrinkage :math:`\\eta` of each tree.
      n_estimators: boosting rounds.
      subsample: fraction of samples drawn (without replacement) for each round.
      max_depth: depth of each tree (``None``: see the module docstring).
      min_samples_leaf: fewest samples each child must keep.
      max_bins: quantile bins per feature, or ``None`` for every midpoint.
      second_order: XGBoost's Newton trees (leaf weight :math:`-G/(H+\\lambda)`, gain with
        ``reg_lambda`` and ``gamma``, ``min_child_weight``) instead of Friedman's first-order trees.
      reg_lambda, gamma, min_child_weight: XGBoost's regularisers (``second_order`` only).
      early_stopping: ``"auto"`` (on when ``n_samples > 10000``, as scikit-learn's
        ``HistGradientBoosting*``), ``True`` or ``False``: hold out ``validation_fraction`` of the
        rows (stratified for the classifier, drawn with ``random_state``) and stop when the
        validation loss has not improved by more than ``tol`` for ``n_iter_no_change`` rounds
        (scikit-learn's rule; the ``n_iter_no_change`` of :func:`mlwork.trees.fit_gradient_boosting`).
      validation_fraction: the held-out fraction, in ``(0, 1)``.
      n_iter_no_change: the patience :math:`p \\ge 1`, in rounds.
      tol: the smallest improvement :math:`\\tau \\ge 0` of the loss that counts.
      random_state: seeds the subsampling and the validation split (see :func:`jax_key`).
      monotonic_cst: ``(n_features,)`` ints in {{-1, 0, 1}}: the score :math:`F` is
        non-decreasing (+1) or non-increasing (-1) in that feature, 0 free; ``None`` constrains
        nothing. Single-output only (a multi-class classifier refuses it, as scikit-learn does).
      categorical_features: indices or an ``(n_features,)`` boolean mask of categorical
        features (integer codes below ``max_bins``), as for :func:`mlwork.trees.fit_tree`.

    Attributes:
      model_: the fitted :class:`mlwork.trees.GradientBoosting`; ``n_features_in_``,
        ``feature_importances_`` (summed gains){extra}.
      n_iter_: rounds in the model: ``n_estimators``, or after early stopping the round of the
        smallest validation loss (XGBoost's ``best_iteration``; scikit-learn keeps the rounds up to
        the stop instead).
      n_trees_per_iteration_: trees per round (1, or the number of classes above two).
      do_early_stopping_: whether early stopping was on for this fit (``early_stopping`` resolved).
      train_score_: with early stopping, the negated loss (scikit-learn's "higher is better"
        ``scoring="loss"``) of the training rows before the first round and after every round
        computed, ``(n_computed + 1,)`` float64 with ``n_computed >= n_iter_``; empty without.
      validation_score_: the same for the validation rows (early stopping watches it).

    Raises:
      ValueError: from ``fit``: another ``loss``, bad input or a bad setting (as
        :func:`mlwork.trees.fit_gradient_boosting`).
{example}"""


class GradientBoostingClassifier(_GradientBoosting, _Classifier):
    r"""Gradient boosting with the log loss (:func:`mlwork.trees.fit_gradient_boosting`): the
    logistic loss for two classes, softmax (one tree per class per round) for more.

    The score :math:`F(x) = F_0 + \eta \sum_t f_t(x)` is the log-odds of ``classes_[1]``
    (:math:`P = \sigma(F)`) or the softmax logits; each tree fits the negative gradient
    :math:`y - p` (Friedman 2001, Algorithms 5 and 6), or XGBoost's Newton trees with
    ``second_order`` (Chen & Guestrin 2016, eqs. (5) and (7))."""

    __doc__ += _GB_PARAMS_DOC.format(loss='``"log_loss"`` (the only one).', extra="; ``classes_``, ``n_classes_``",
                                     example="""
    Example:
      >>> import numpy as np
      >>> from mlwork.trees.sklearn import GradientBoostingClassifier
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array(["no", "no", "no", "yes", "yes", "yes"])
      >>> gb = GradientBoostingClassifier(n_estimators=3, max_depth=1).fit(X, y)
      >>> gb.predict([[1.0], [4.0]]).tolist(), gb.decision_function([[4.0]]).round(4).tolist()
      (['no', 'yes'], [0.5501])
""")

    def __init__(self, loss="log_loss", learning_rate=0.1, n_estimators=100, subsample=1.0, max_depth=3,
                 min_samples_leaf=1, max_bins=255, second_order=False, reg_lambda=1.0, gamma=0.0,
                 min_child_weight=1.0, early_stopping="auto", validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-7, random_state=None, monotonic_cst=None, categorical_features=None):
        super().__init__(loss=loss, learning_rate=learning_rate, n_estimators=n_estimators, subsample=subsample,
                         max_depth=max_depth, min_samples_leaf=min_samples_leaf, max_bins=max_bins,
                         second_order=second_order, reg_lambda=reg_lambda, gamma=gamma,
                         min_child_weight=min_child_weight, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change, tol=tol,
                         random_state=random_state, monotonic_cst=monotonic_cst,
                         categorical_features=categorical_features)

    def _fit_model(self, X, y, sample_weight):
        if self.loss != "log_loss":
            raise ValueError(f"loss must be 'log_loss', got {self.loss!r}")
        k = len(self.classes_)
        return self._boost(X, y, sample_weight, "logistic" if k == 2 else "softmax", k)

    def decision_function(self, X) -> np.ndarray:
        """Raw scores :math:`F(x)`: log-odds of ``classes_[1]`` ``(n_samples,)`` for two classes,
        else the softmax logits ``(n_samples, n_classes)``."""
        scores = self._raw_scores(X)
        return scores[:, 0] if scores.shape[1] == 1 else scores


class GradientBoostingRegressor(_GradientBoosting, _Regressor):
    r"""Gradient boosting with the squared error (:func:`mlwork.trees.fit_gradient_boosting`).

    :math:`F(x) = \bar y + \eta \sum_t f_t(x)`, each tree fit to the residuals
    :math:`y - F_{t-1}(x)` (Friedman 2001, LS_Boost, Algorithm 2), or XGBoost's Newton trees
    with ``second_order`` (Chen & Guestrin 2016, eqs. (5) and (7))."""

    __doc__ += _GB_PARAMS_DOC.format(loss='``"squared_error"`` (the only one).', extra="", example="""
    Example:
      >>> import numpy as np
      >>> from mlwork.trees.sklearn import GradientBoostingRegressor
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
      >>> gb = GradientBoostingRegressor(n_estimators=3, max_depth=1).fit(X, y)
      >>> gb.predict([[1.0], [4.0]]).round(4).tolist()  # 0.5 -+ 0.5 (1 - 0.9^3)
      [0.3645, 0.6355]
""")

    def __init__(self, loss="squared_error", learning_rate=0.1, n_estimators=100, subsample=1.0, max_depth=3,
                 min_samples_leaf=1, max_bins=255, second_order=False, reg_lambda=1.0, gamma=0.0,
                 min_child_weight=1.0, early_stopping="auto", validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-7, random_state=None, monotonic_cst=None, categorical_features=None):
        super().__init__(loss=loss, learning_rate=learning_rate, n_estimators=n_estimators, subsample=subsample,
                         max_depth=max_depth, min_samples_leaf=min_samples_leaf, max_bins=max_bins,
                         second_order=second_order, reg_lambda=reg_lambda, gamma=gamma,
                         min_child_weight=min_child_weight, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change, tol=tol,
                         random_state=random_state, monotonic_cst=monotonic_cst,
                         categorical_features=categorical_features)

    def _fit_model(self, X, y, sample_weight):
        if self.loss != "squared_error":
            raise ValueError(f"loss must be 'squared_error', got {self.loss!r}")
        return self._boost(X, y, sample_weight, "squared", None)


class AdaBoostClassifier(_Classifier):
    """SAMME AdaBoost on shallow trees (:func:`mlwork.trees.fit_adaboost`).

    Predicts :math:`\\arg\\max_k \\sum_t \\alpha_t [h_t(x) = k]` with
    :math:`\\alpha_t = \\eta(\\ln\\frac{1-\\varepsilon_t}{\\varepsilon_t} + \\ln(K-1))`
    (Zhu, Zou, Rosset & Hastie 2009, Algorithm 2; Freund & Schapire 1997 for two classes).

    scikit-learn's ``AdaBoostClassifier`` takes a base ``estimator``; this one boosts its own
    trees, configured by ``max_depth`` (stumps by default, scikit-learn's default base) and
    ``criterion``. Fitting is deterministic, so there is no ``random_state``.

    Args:
      n_estimators: boosting rounds (fewer trees vote if a round is perfect or no better than
        chance; their :math:`\\alpha` is then 0).
      learning_rate: :math:`\\eta`, scaling each :math:`\\alpha_t`.
      max_depth: depth of each tree.
      criterion: ``"gini"`` or ``"entropy"``.
      max_bins: quantile bins per feature, or ``None`` for every midpoint.

    Attributes:
      model_: the fitted :class:`mlwork.trees.AdaBoost`; ``estimator_weights_`` ``(n_estimators,)``
        the votes :math:`\\alpha_t`; ``classes_``, ``n_classes_``, ``n_features_in_``, ``feature_importances_``.

    Raises:
      ValueError: from ``fit``: bad input (shapes, ±inf in ``X``, a single class, negative
        weights) or a bad setting (an unknown ``criterion``, ``max_depth < 1``, ...).

    Example:
      >>> import numpy as np
      >>> from mlwork.trees.sklearn import AdaBoostClassifier
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0, 0, 1, 0, 1, 1])
      >>> ada = AdaBoostClassifier(n_estimators=3).fit(X, y)
      >>> round(float(ada.estimator_weights_[0]), 4), ada.predict(X).tolist()  # alpha_1 = ln 5
      (1.6094, [0, 0, 1, 0, 1, 1])
    """

    def __init__(self, n_estimators=50, learning_rate=1.0, max_depth=1, criterion="gini", max_bins=255):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.criterion = criterion
        self.max_bins = max_bins

    def _fit_model(self, X, y, sample_weight):
        criterion = "entropy" if self.criterion == "log_loss" else self.criterion
        model = _boosting.fit_adaboost(X, y, self.n_estimators, max_depth=resolve_depth(self.max_depth, X.shape[0]),
                                       learning_rate=self.learning_rate, criterion=criterion,
                                       max_bins=self.max_bins, sample_weight=sample_weight,
                                       n_classes=len(self.classes_))
        self.estimator_weights_ = np.asarray(model.alpha, np.float64)
        return model

    def decision_function(self, X) -> np.ndarray:
        r"""SAMME's coded vote, as scikit-learn's: with :math:`v_k = \sum_t \alpha_t [h_t(x) = k] /
        \sum_t \alpha_t`, :math:`f_k = v_k - (1 - v_k)/(K - 1)` ``(n_samples, K)``; for two classes
        :math:`f_1 - f_0` ``(n_samples,)``."""
        X = self._check_predict_input(X)
        vote = _on_padded_rows(lambda Z: _boosting.adaboost_decision(self.model_, Z), X).astype(np.float64)
        coded = vote - (1.0 - vote) / (self.n_classes_ - 1)
        return coded[:, 1] - coded[:, 0] if self.n_classes_ == 2 else coded


# ============================================================================= the check suite
_BOOTSTRAP = ("a forest draws each tree's bootstrap sample from the n distinct rows with their weights, a fit "
              "on repeated rows draws it from sum(w) rows, so the trees differ (scikit-learn declares the same "
              "for its RandomForest*)")
_BOOSTING_TIES = ("float32 arithmetic: a weighted fit sums w·g where a fit on repeated rows adds g w times, so "
                  "gains agree to round-off (1e-7 relative) and two splits of equal gain (the same partition of "
                  "the weighted rows, on different features) can be told apart differently; the two features then "
                  "route the check's zero-weight rows differently at prediction (the thresholds themselves match: "
                  "bins come from positive-weight rows only)")
_HELD_OUT = ("with early_stopping=True the validation split differs too: a row of weight 2 is held out or kept "
             "as one row, its two copies in the repeated data independently")

#: scikit-learn estimator checks each estimator is expected to fail, with the reason; pass
#: :func:`expected_failed_checks` to ``check_estimator`` / ``parametrize_with_checks``.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "RandomForestClassifier": {"check_sample_weight_equivalence_on_dense_data": _BOOTSTRAP},
    "RandomForestRegressor": {"check_sample_weight_equivalence_on_dense_data": _BOOTSTRAP},
    "GradientBoostingClassifier": {"check_sample_weight_equivalence_on_dense_data": _BOOSTING_TIES},
    "GradientBoostingRegressor": {"check_sample_weight_equivalence_on_dense_data": _BOOSTING_TIES},
    "AdaBoostClassifier": {
        "check_sample_weight_equivalence_on_dense_data": (
            "float32 arithmetic: weighted and repeated fits agree to float32 round-off (about 1e-7 "
            "relative, tested at rtol 1e-5), the check compares at rtol 1e-7"),
    },
}


def expected_failed_checks(estimator) -> dict[str, str]:
    """``{check name: reason}`` for ``estimator``: the ``expected_failed_checks`` callable of
    :func:`sklearn.utils.estimator_checks.check_estimator` and ``parametrize_with_checks``
    (scikit-learn ≥ 1.6 declares expected failures there, no longer in the estimator's tags).

    Args:
      estimator: an estimator of this module (any other gets ``{}``).

    Returns:
      A new dict ``{check name: reason}`` from :data:`EXPECTED_FAILED_CHECKS` (for a boosting
      estimator with ``early_stopping=True`` the sample-weight reason also names the split).

    Example:
      >>> from mlwork.trees.sklearn import RandomForestClassifier, expected_failed_checks
      >>> list(expected_failed_checks(RandomForestClassifier()))
      ['check_sample_weight_equivalence_on_dense_data']
    """
    failed = dict(EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))
    if isinstance(estimator, _GradientBoosting) and estimator.early_stopping is True:
        failed["check_sample_weight_equivalence_on_dense_data"] += "; " + _HELD_OUT
    return failed
