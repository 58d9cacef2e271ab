"""Early stopping of gradient boosting (issue 29): the stop rule against scikit-learn's own
``_should_stop`` and a float64 re-computation of the recorded curves, the kept rounds against a
fresh fit, the rounds never computed, the split, the estimators' attributes and the model file."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier

from mlwork import trees
from mlwork.trees import _early_stopping
from mlwork.trees import boosting as boosting_mod
from mlwork.trees import sklearn as sk
from mlwork.trees.models import _per_tree_values


def _problem(loss: str, n: int = 500, seed: int = 0):
    """Noisy data on which a high learning rate overfits within a few dozen rounds."""
    if loss == "squared":
        X, y = make_regression(n, 6, n_informative=3, noise=30.0, random_state=seed)
        y = (y / np.std(y)).astype(np.float32)
    else:
        X, y = make_classification(n, 6, n_informative=3, n_classes=2 if loss == "logistic" else 3,
                                   n_clusters_per_class=1, flip_y=0.3, random_state=seed)
    X = X.astype(np.float32)
    m = n // 4
    return X[m:], y[m:], X[:m], y[:m]


def _loss64(loss: str, y: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Per-row loss in float64, written from the formulas: F is (..., n, K)."""
    y = y.astype(np.float64)
    if loss == "squared":
        return 0.5 * (y - F[..., 0]) ** 2
    if loss == "logistic":
        return np.logaddexp(0.0, F[..., 0]) - y * F[..., 0]
    return logsumexp(F, axis=-1) - np.take_along_axis(F, y.astype(int)[None, :, None], axis=-1)[..., 0]


def _curve64(model, X, y) -> np.ndarray:
    """Mean loss of F_0, F_1, ..., F_T on (X, y) in float64, from the trees' leaf values."""
    values = np.asarray(_per_tree_values(model.trees, X), np.float64)[..., 0]  # (T, K, n)
    steps = np.cumsum(np.moveaxis(values, 1, -1), axis=0)  # (T, n, K)
    init = np.asarray(model.init, np.float64)
    F = np.concatenate([np.broadcast_to(init, (1, len(y), len(init))), init + model.learning_rate * steps])
    return _loss64(model.loss, y, F).mean(axis=1)


LOSSES = ["logistic", pytest.param("squared", marks=pytest.mark.slow), pytest.param("softmax", marks=pytest.mark.slow)]
SETTINGS = {"max_depth": 3, "learning_rate": 0.5}


@pytest.fixture(scope="module", params=LOSSES)
def fits(request):
    """Per loss: the data, a monitored fit of all 40 rounds and an early-stopped one."""
    loss = request.param
    X, y, X_val, y_val = _problem(loss)
    full = trees.fit_gradient_boosting(X, y, 40, loss=loss, eval_set=(X_val, y_val), **SETTINGS)
    stopped = trees.fit_gradient_boosting(X, y, 40, loss=loss, eval_set=(X_val, y_val), n_iter_no_change=3,
                                          **SETTINGS)
    return loss, (X, y, X_val, y_val), full, stopped


def test_recorded_curves_equal_a_float64_recomputation(fits):
    loss, (X, y, X_val, y_val), full, _ = fits
    assert full.n_iter == 40 and full.trees.feature.shape[0] == 40  # no n_iter_no_change: every round kept
    np.testing.assert_allclose(np.asarray(full.validation_loss), _curve64(full, X_val, y_val), rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(full.train_loss), _curve64(full, X, y), rtol=2e-6, atol=1e-7)
    assert full.best_iteration == int(np.argmin(_curve64(full, X_val, y_val)))


def test_the_fit_stops_where_sklearns_rule_says(fits):
    _, _, _, stopped = fits
    curve = -np.asarray(stopped.validation_loss, np.float64)  # scores: higher is better
    rule = HistGradientBoostingClassifier(n_iter_no_change=3, tol=1e-7)._should_stop
    assert 3 <= stopped.n_iter < 40, "the problem should overfit and stop"
    assert [rule(list(curve[: t + 1])) for t in range(1, stopped.n_iter + 1)] == [False] * (stopped.n_iter - 1) + [True]
    # the same rule by hand: no loss of the last 3 is below the one 3 rounds earlier minus tol
    L, t = np.asarray(stopped.validation_loss, np.float64), stopped.n_iter
    assert L[t - 2: t + 1].min() >= L[t - 3] - 1e-7


def test_stopped_fit_computes_the_same_rounds_and_keeps_the_best(fits):
    _, _, full, stopped = fits
    t, best = stopped.n_iter, stopped.best_iteration
    assert np.array_equal(np.asarray(stopped.validation_loss), np.asarray(full.validation_loss)[: t + 1])
    assert np.array_equal(np.asarray(stopped.train_loss), np.asarray(full.train_loss)[: t + 1])
    assert best == int(np.argmin(np.asarray(stopped.validation_loss))) and best < t
    assert stopped.trees.feature.shape[0] == best
    for a, b in zip(jax.tree.leaves(stopped.trees), jax.tree.leaves(full.trees), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b)[:best], equal_nan=True)


def test_best_iteration_predicts_bit_for_bit_like_a_fresh_fit_of_that_many_rounds(fits):
    loss, (X, y, X_val, _), _, stopped = fits
    best = stopped.best_iteration
    assert best >= 1
    fresh = trees.fit_gradient_boosting(X, y, best, loss=loss, **SETTINGS)  # the plain lax.scan path
    for a, b in zip(jax.tree.leaves(stopped.trees), jax.tree.leaves(fresh.trees), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.array_equal(np.asarray(trees.predict(stopped, X_val)), np.asarray(trees.predict(fresh, X_val)))
    raw = boosting_mod.boosting_scores
    assert np.array_equal(np.asarray(raw(stopped, X_val)), np.asarray(raw(fresh, X_val)))
    jitted = jax.jit(trees.predict)(stopped, X_val)  # the model is a pytree: predict works under jit
    assert np.array_equal(np.asarray(jitted), np.asarray(trees.predict(stopped, X_val)))


def test_rounds_after_the_stop_are_never_computed(monkeypatch):
    """The rounds run in chunks of ROUND_CHUNK (issue 29): the rounds after the stop within its chunk
    keep the NaN/-2 fill of a round never run, and no later chunk is called."""
    X, y, X_val, y_val = _problem("logistic")
    seen = []
    original = boosting_mod._fit_chunk

    def spy(*args):
        out = original(*args)
        seen.append(out)
        return out

    monkeypatch.setattr(boosting_mod, "_fit_chunk", spy)
    model = trees.fit_gradient_boosting(X, y, 40 + boosting_mod.ROUND_CHUNK, eval_set=(X_val, y_val),
                                        n_iter_no_change=3, **SETTINGS)
    t = model.n_iter
    assert t < 30 and len(seen) == 1  # stopped in the first chunk: the second is never called
    n_iter, stopped, _, _, buffer, train, val = seen[0]
    assert int(n_iter) == t and bool(stopped)
    gain = np.asarray(buffer.gain)  # (ROUND_CHUNK, K, nodes): the NaN fill unless the round ran
    assert not np.isnan(gain[:t]).any() and np.isnan(gain[t:]).all()
    assert (np.asarray(buffer.feature)[t:] == -2).all()
    assert np.isnan(np.asarray(val)[t:]).all() and np.isnan(np.asarray(train)[t:]).all()
    assert not np.isnan(np.asarray(val)[:t]).any()


# ----------------------------------------------------------------------------- the rule itself
_STOP_NOW = jax.jit(_early_stopping.stop_now)  # one compilation: the buffer is always (20,)


@given(st.lists(st.integers(0, 12), min_size=2, max_size=14), st.integers(1, 5), st.integers(0, 3))
def test_stop_now_is_sklearns_should_stop(levels, patience, tol_eighths):
    """On losses and tolerances exact in float32 and float64 (multiples of 1/8), ties included."""
    L = np.asarray(levels, np.float32) / 8
    tol = tol_eighths / 8
    rule = HistGradientBoostingClassifier(n_iter_no_change=patience, tol=tol)._should_stop
    buffer = np.concatenate([L, np.full(20 - len(L), np.nan, np.float32)])  # unfilled entries past t
    for t in range(1, len(L)):
        got = bool(_STOP_NOW(buffer, np.int32(t), np.int32(patience), np.float32(tol)))
        assert got == rule(list(-L[: t + 1].astype(np.float64))), (t, L[: t + 1], patience, tol)


# ----------------------------------------------------------------------------- the split
def test_validation_fraction_is_a_seeded_stratified_split_equal_to_eval_set():
    X, y = make_classification(400, 5, weights=[0.85], flip_y=0.0, random_state=1)
    key = jax.random.key(7)
    train, val = _early_stopping.split(key, len(y), 0.25, y)
    assert len(val) == math.ceil(0.25 * 400) and np.intersect1d(train, val).size == 0
    assert sorted(np.concatenate([train, val])) == list(range(400))
    for c in (0, 1):  # proportional within one row (Hamilton's apportionment)
        assert abs(np.sum(y[val] == c) - 100 * np.mean(y == c)) < 1
    assert len(_early_stopping.split(key, 40, 0.001, None)[1]) == 1  # ceil: a tiny fraction still holds a row
    weight = np.where(np.arange(400) % 3 == 0, 0.0, 1.0)  # zero-weight rows count nowhere: never validation
    tr_w, val_w = _early_stopping.split(key, 400, 0.25, y, weight)
    assert (weight[val_w] > 0).all() and len(val_w) == math.ceil(0.25 * np.sum(weight > 0))
    assert set(np.flatnonzero(weight == 0)) <= set(tr_w)
    with pytest.raises(ValueError, match="^validation_fraction must .*n_samples=1 "):
        _early_stopping.split(key, 1, 0.1, None)
    again, _ = _early_stopping.split(key, len(y), 0.25, y)
    other, _ = _early_stopping.split(jax.random.key(8), len(y), 0.25, y)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
    a = trees.fit_gradient_boosting(X, y, 30, key=key, validation_fraction=0.25, n_iter_no_change=3, **SETTINGS)
    b = trees.fit_gradient_boosting(X[train], y[train], 30, key=key, eval_set=(X[val], y[val]), n_iter_no_change=3,
                                    **SETTINGS)
    assert np.array_equal(np.asarray(a.validation_loss), np.asarray(b.validation_loss))
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.array_equal(np.asarray(u), np.asarray(v))


@pytest.mark.parametrize("kwargs, name", [
    ({"validation_fraction": 1.0}, "validation_fraction"),
    ({"validation_fraction": 0.0}, "validation_fraction"),
    ({"validation_fraction": True}, "validation_fraction"),
    ({"validation_fraction": 0.99}, "validation_fraction"),  # ceil(0.99 * 40) = 40 rows: no training row
    ({"n_iter_no_change": 0, "validation_fraction": 0.2}, "n_iter_no_change"),
    ({"n_iter_no_change": 3}, "n_iter_no_change"),  # no validation set
    ({"tol": -1e-3, "validation_fraction": 0.2}, "tol"),
    ({"tol": float("nan")}, "tol"),
    ({"validation_fraction": 0.2, "eval_set": "both"}, "eval_set"),
    ({"eval_set": (np.zeros((5, 3), np.float32), np.zeros(5))}, "eval_set"),  # 3 columns, X has 2
    ({"eval_set": (np.zeros((5, 2), np.float32), np.zeros(4))}, "eval_set"),
    ({"eval_set": (np.zeros((5, 2), np.float32), np.full(5, 2))}, "eval_set"),  # class 2 of 2
    ({"eval_set": (np.zeros((5, 2), np.float32),)}, "eval_set"),
])
def test_bad_early_stopping_arguments_raise_one_line_naming_the_argument(kwargs, name):
    X = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int32)
    with pytest.raises(ValueError, match=f"^{name} must") as info:
        trees.fit_gradient_boosting(X, y, 2, **kwargs)
    assert "\n" not in str(info.value)


def test_regression_eval_set_targets_are_checked():
    X = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    with pytest.raises(ValueError, match="^eval_set must"):
        trees.fit_gradient_boosting(X, X[:, 0], 2, eval_set=(X[:5], np.array([0.0, 1.0, np.inf, 0.0, 0.0])))


# ----------------------------------------------------------------------------- estimators and files
def test_estimator_attributes_and_auto():
    X, y, _, _ = _problem("logistic", n=800)
    est = sk.GradientBoostingClassifier(n_estimators=40, learning_rate=0.5, early_stopping=True,
                                        n_iter_no_change=3, validation_fraction=0.2, random_state=3).fit(X, y)
    model = est.model_
    assert est.do_early_stopping_ and est.n_iter_ == model.trees.feature.shape[0] == model.best_iteration
    assert est.n_iter_ == int(np.argmax(est.validation_score_)) and len(est.validation_score_) == model.n_iter + 1
    assert np.array_equal(est.validation_score_, -np.asarray(model.validation_loss, np.float64))
    assert np.array_equal(est.train_score_, -np.asarray(model.train_loss, np.float64))
    same = trees.fit_gradient_boosting(X, y, 40, key=sk.jax_key(3), learning_rate=0.5, validation_fraction=0.2,
                                       n_iter_no_change=3, n_classes=2)
    assert np.array_equal(np.asarray(same.trees.value), np.asarray(model.trees.value))
    off = sk.GradientBoostingRegressor(n_estimators=4).fit(X, y.astype(float))  # auto: 600 rows <= 10000
    assert not off.do_early_stopping_ and off.n_iter_ == 4 and off.train_score_.shape == (0,)
    assert off.validation_score_.shape == (0,) and off.model_.validation_loss is None
    with pytest.raises(ValueError, match="^early_stopping must"):
        sk.GradientBoostingRegressor(early_stopping="yes").fit(X, y.astype(float))


@pytest.mark.slow
def test_auto_early_stopping_turns_on_above_10000_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10_001, 2)).astype(np.float32)
    y = X[:, 0] + 0.1 * rng.normal(size=10_001)
    est = sk.GradientBoostingRegressor(n_estimators=3, max_depth=1, random_state=0).fit(X, y)
    assert est.do_early_stopping_ and len(est.validation_score_) == 4  # 3 rounds, all improving


def test_early_stopped_models_round_trip_through_the_model_file(tmp_path, fits):
    loss, (_, _, X_val, _), _, stopped = fits
    path = trees.save_model(tmp_path / "m.npz", stopped)
    loaded = trees.load_model(path)
    assert (loaded.n_iter, loaded.best_iteration) == (stopped.n_iter, stopped.best_iteration)
    assert np.array_equal(np.asarray(loaded.validation_loss), np.asarray(stopped.validation_loss))
    assert np.array_equal(np.asarray(trees.predict(loaded, X_val)), np.asarray(trees.predict(stopped, X_val)))


@pytest.mark.slow
def test_early_stopped_estimator_round_trips_through_the_model_file(tmp_path):
    X, y, X_val, _ = _problem("logistic", n=300)
    est = sk.GradientBoostingClassifier(n_estimators=30, early_stopping=True, n_iter_no_change=2,
                                        random_state=0).fit(X, y)
    back = trees.load_model(trees.save_model(tmp_path / "e.npz", est))
    assert back.n_iter_ == est.n_iter_ and np.array_equal(back.validation_score_, est.validation_score_)
    assert np.array_equal(back.predict_proba(X_val), est.predict_proba(X_val))


def test_a_model_file_with_one_curve_is_refused(tmp_path, fits):
    _, _, _, stopped = fits
    broken = stopped.replace(train_loss=None)
    path = trees.save_model(tmp_path / "broken.npz", broken)
    with pytest.raises(ValueError, match="must be the arrays of a GradientBoosting"):
        trees.load_model(path)


@pytest.mark.slow
def test_docs_early_stopping_example_runs(capsys):
    guide = Path(__file__).resolve().parents[2] / "docs" / "guides" / "trees.md"
    section = guide.read_text().split("## Early stopping", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/guides/trees.md", "exec"), namespace)  # noqa: S102 - the guide's own example
    gb, clf = namespace["gb"], namespace["clf"]
    assert gb.n_iter < 1000 and gb.trees.feature.shape[0] == gb.best_iteration <= gb.n_iter
    assert 1 <= clf.n_iter_ < len(clf.validation_score_) - 1 < 1000
    assert "computed" in capsys.readouterr().out


@pytest.mark.slow
def test_two_devices_stop_where_one_does(tmp_path):
    """Boosting splits each tree's feature search over the devices (a shard_map around the
    while_loop): the same rounds, curve and kept trees as on one device."""
    script = textwrap.dedent("""
        import sys, jax, numpy as np
        sys.path.insert(0, sys.argv[2])
        from test_early_stopping import SETTINGS, _problem
        from mlwork import trees
        assert len(jax.devices()) == 2
        X, y, X_val, y_val = _problem("logistic")
        m = trees.fit_gradient_boosting(X, y, 40, eval_set=(X_val, y_val), n_iter_no_change=3, **SETTINGS)
        np.savez(sys.argv[1], curve=np.asarray(m.validation_loss), value=np.asarray(m.trees.value))
    """)
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    path = tmp_path / "two.npz"
    subprocess.run([sys.executable, "-c", script, str(path), os.path.dirname(__file__)], check=True, env=env,
                   timeout=300)
    X, y, X_val, y_val = _problem("logistic")
    one = trees.fit_gradient_boosting(X, y, 40, eval_set=(X_val, y_val), n_iter_no_change=3, **SETTINGS)
    two = np.load(path)
    assert two["curve"].shape == np.asarray(one.validation_loss).shape
    np.testing.assert_allclose(two["curve"], np.asarray(one.validation_loss), rtol=1e-5)
    np.testing.assert_allclose(two["value"], np.asarray(one.trees.value), rtol=1e-5, atol=1e-6)
