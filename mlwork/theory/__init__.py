"""Information theory and statistical learning theory (deck sections 18-19).

``mlwork.theory.information``: entropy, cross-entropy, KL and JS divergences, mutual information,
their logit and Gaussian forms. ``mlwork.theory.bounds``: finite-class, VC and PAC-Bayes bounds,
sample complexities, VC dimension and shattering, and the bias-variance decomposition.

``mlwork.theory.information`` is the module (as ``mlwork.nn`` is); its function
``information(p)`` (self-information, −log p) is re-exported here as ``self_information``.
"""

from mlwork.theory import bounds, information
from mlwork.theory.bias_variance import BiasVariance, bias_variance_decomposition
from mlwork.theory.bounds import (
    HYPOTHESIS_CLASSES,
    finite_class_bound,
    finite_class_sample_complexity,
    is_vacuous,
    kl_inverse,
    pac_bayes_bound,
    realizes,
    shatters,
    vc_bound,
    vc_dimension,
    vc_sample_complexity,
)
from mlwork.theory.information import (
    bernoulli_kl,
    conditional_entropy,
    cross_entropy,
    entropy,
    entropy_from_logits,
    gaussian_entropy,
    gaussian_kl,
    joint_entropy,
    js_divergence,
    kl_divergence,
    kl_from_logits,
    mutual_information,
)
from mlwork.theory.information import information as self_information

__all__ = [
    "HYPOTHESIS_CLASSES", "BiasVariance",
    "bernoulli_kl", "bias_variance_decomposition", "bounds", "conditional_entropy",
    "cross_entropy", "entropy", "entropy_from_logits", "finite_class_bound",
    "finite_class_sample_complexity", "gaussian_entropy", "gaussian_kl", "information",
    "is_vacuous", "joint_entropy", "js_divergence", "kl_divergence", "kl_from_logits",
    "kl_inverse", "mutual_information", "pac_bayes_bound", "realizes", "self_information",
    "shatters", "vc_bound",
    "vc_dimension", "vc_sample_complexity",
]
