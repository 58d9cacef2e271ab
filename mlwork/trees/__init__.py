"""Decision trees, forests and boosting compiled with JAX (deck sections 16-17).

Every fitted model is a pytree of fixed-size arrays: ``fit_*`` bin the features on the host and
run one compiled program; ``predict``/``predict_proba`` are ``jit``-compiled and work for every
model.
"""

from mlwork.trees import _deprecated
from mlwork.trees.binning import Bins, apply_bins, fit_bins
from mlwork.trees.boosting import (
    BOOSTING_LOSSES,
    AdaBoost,
    GradientBoosting,
    fit_adaboost,
    fit_gradient_boosting,
    grad_hess,
    logistic_loss,
    samme_alpha,
    softmax_loss,
    squared_loss,
)
from mlwork.trees.ensemble import Forest, bootstrap_counts, fit_bagging, fit_random_forest
from mlwork.trees.impurity import entropy_impurity, gini_impurity, information_gain, variance_impurity
from mlwork.trees.inspection import PermutationImportance, permutation_importance
from mlwork.trees.modelfile import load_model, save_model
from mlwork.trees.models import feature_importances, predict, predict_proba, staged_predict
from mlwork.trees.tree import Tree, export_text, fit_tree, tree_leaf

__all__ = [
    "BOOSTING_LOSSES", "AdaBoost", "Bins", "Forest", "GradientBoosting", "PermutationImportance",
    "Tree", "apply_bins", "bootstrap_counts", "entropy_impurity", "export_text",
    "feature_importances", "fit_adaboost", "fit_bagging", "fit_bins", "fit_gradient_boosting",
    "fit_random_forest", "fit_tree", "gini_impurity", "grad_hess", "information_gain", "load_model",
    "logistic_loss", "permutation_importance", "predict", "predict_proba", "samme_alpha",
    "save_model", "softmax_loss", "squared_loss", "staged_predict", "tree_leaf", "variance_impurity"
]

# The names of 0.1 that collided with mlwork.theory.entropy and mlwork.nn.LOSSES work until 0.3,
# with a DeprecationWarning; they are not in __all__.
__getattr__ = _deprecated.module_getattr("mlwork.trees", globals(), _deprecated.RENAMED)
