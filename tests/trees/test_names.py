"""The names of mlwork.trees (issue 27): impurities and boosting losses that do not collide with
mlwork.theory / mlwork.nn, the names of 0.1 as deprecated aliases until 0.3, and the small contracts
that came with the renames (a pure node's entropy is +0.0; an unknown loss is a one-line error)."""

import importlib
import math
import re

import jax
import jax.numpy as jnp
import pytest

from mlwork import nn, theory, trees

RENAMED = [("entropy", "entropy_impurity"), ("gini", "gini_impurity"), ("variance", "variance_impurity"),
           ("LOSSES", "BOOSTING_LOSSES")]


@pytest.mark.parametrize("old, new", RENAMED)
def test_old_names_are_deprecated_aliases_of_the_new_ones(old, new):
    with pytest.warns(DeprecationWarning, match=re.escape(f"mlwork.trees.{old} is deprecated and will be removed "
                                                          f"in 0.3; use mlwork.trees.{new}")):
        alias = getattr(trees, old)
    assert alias is getattr(trees, new)
    assert old not in trees.__all__ and new in trees.__all__


@pytest.mark.parametrize("module, old, new", [("impurity", "entropy", "entropy_impurity"),
                                              ("impurity", "gini", "gini_impurity"),
                                              ("impurity", "variance", "variance_impurity"),
                                              ("boosting", "LOSSES", "BOOSTING_LOSSES")])
def test_old_names_of_the_submodules_are_deprecated_aliases_too(module, old, new):
    mod = importlib.import_module(f"mlwork.trees.{module}")
    with pytest.warns(DeprecationWarning, match=re.escape(f"use mlwork.trees.{module}.{new}")):
        alias = getattr(mod, old)
    assert alias is getattr(mod, new) is getattr(trees, new)


def test_from_import_of_an_old_name_warns_and_unknown_names_raise():
    with pytest.warns(DeprecationWarning, match="removed in 0.3"):
        from mlwork.trees import entropy  # noqa: F401
    with pytest.raises(AttributeError, match="has no attribute 'entropie'"):
        trees.entropie  # noqa: B018
    with pytest.raises(ImportError):
        from mlwork.trees import entropie  # noqa: F401


def test_the_new_names_do_not_collide_with_theory_and_nn():
    public = {name: getattr(trees, name) for name in trees.__all__}
    for other in (theory, nn):
        assert not set(public) & set(other.__all__), other.__name__
    assert trees.BOOSTING_LOSSES is not nn.LOSSES


@pytest.mark.parametrize("counts", [[1.0, 0.0], [0.0, 7.0, 0.0], [3.0], [[4.0, 0.0], [0.0, 2.0]]])
def test_a_pure_node_has_entropy_plus_zero_not_minus_zero(counts):
    for h in (trees.entropy_impurity(jnp.array(counts)), jax.jit(trees.entropy_impurity)(jnp.array(counts))):
        for value in jnp.ravel(h).tolist():
            assert value == 0.0 and math.copysign(1.0, value) == 1.0, h
    assert math.copysign(1.0, float(trees.gini_impurity(jnp.array([1.0, 0.0])))) == 1.0
    assert math.copysign(1.0, float(trees.variance_impurity(jnp.array([2.0, 2.0])))) == 1.0


@pytest.mark.parametrize("loss, got", [("hinge", "'hinge'"), (3, "3"), (None, "None")])
def test_grad_hess_with_an_unknown_loss_is_a_one_line_value_error(loss, got):
    y, F = jnp.zeros(2), jnp.zeros((2, 1))
    with pytest.raises(ValueError) as info:
        trees.grad_hess(loss, y, F)
    message = str(info.value)
    assert message == f"loss must be one of 'logistic', 'softmax', 'squared' or a callable; got {got}"
    assert "\n" not in message
