import jax
import jax.numpy as jnp
import pytest

from mlwork import optim


def run(es, values):
    state, log = es.init(), []
    for v in values:
        state, improved, stop = es.update(state, v)
        log.append((bool(improved), bool(stop)))
    return state, log


def test_patience_counts_epochs_without_improvement():
    es = optim.early_stopping(patience=2, mode="min")
    state, log = run(es, [1.0, 0.8, 0.85, 0.9, 0.7])
    assert [i for i, _ in log] == [True, True, False, False, True]
    assert [s for _, s in log] == [False, False, False, True, False]
    assert float(state.best) == pytest.approx(0.7) and int(state.best_epoch) == 4


def test_min_delta_and_max_mode():
    es = optim.early_stopping(patience=1, min_delta=0.01, mode="max")
    state, log = run(es, [0.90, 0.905, 0.92])
    assert log == [(True, False), (False, True), (True, False)]
    assert int(state.best_epoch) == 2


def test_nan_is_never_an_improvement():
    es = optim.early_stopping(patience=1)
    state, log = run(es, [1.0, float("nan")])
    assert log[1] == (False, True) and float(state.best) == 1.0


def test_update_runs_under_jit_and_state_is_a_pytree():
    es = optim.early_stopping(patience=3)
    state = es.init()
    state, improved, stop = jax.jit(es.update)(state, jnp.float32(0.5))
    assert bool(improved) and not bool(stop)
    assert len(jax.tree.leaves(state)) == 4


@pytest.mark.parametrize("kwargs, match", [
    ({"patience": -1}, "patience must be a non-negative integer; got -1"),
    ({"patience": 1.5}, "patience must be a non-negative integer; got 1.5"),
    ({"min_delta": -0.1}, "min_delta must be a finite real number >= 0; got -0.1"),
    ({"mode": "up"}, "mode must be one of 'min', 'max'; got 'up'")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.early_stopping(**kwargs)
