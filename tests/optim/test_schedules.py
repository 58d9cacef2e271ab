import math

import numpy as np
import pytest

from mlwork import optim


def values(sched, ts):
    return np.array([float(sched(t)) for t in ts])


def test_constant():
    np.testing.assert_allclose(values(optim.schedule("constant", value=0.3), [0, 10, 1000]), 0.3)


def test_step_decay_staircase():
    # η_t = η0 γ^⌊t/s⌋ (PyTorch StepLR): the deck's pipeline uses step_size 5, gamma 0.5.
    sched = optim.schedule("step", init_value=1e-3, step_size=5, gamma=0.5)
    ts = np.arange(0, 21)
    np.testing.assert_allclose(values(sched, ts), 1e-3 * 0.5 ** (ts // 5), rtol=1e-6)
    assert float(sched(4)) == pytest.approx(1e-3) and float(sched(5)) == pytest.approx(5e-4)


def test_exponential_decay():
    sched = optim.schedule("exponential", init_value=0.1, rate=0.05)
    ts = np.array([0, 1, 7, 20, 100])
    np.testing.assert_allclose(values(sched, ts), 0.1 * np.exp(-0.05 * ts), rtol=1e-5)
    np.testing.assert_allclose(values(optim.exponential_decay(0.1, 0.05), ts), 0.1 * np.exp(-0.05 * ts), rtol=1e-5)


def test_exponential_is_a_deprecated_alias_of_exponential_decay():
    with pytest.warns(DeprecationWarning, match="use mlwork.optim.exponential_decay"):
        old = optim.exponential
    assert old is optim.exponential_decay
    assert "exponential" not in optim.__all__


def test_optim_reexports_nothing_from_nn():
    import mlwork.nn

    nn_objects = {id(getattr(mlwork.nn, n)) for n in mlwork.nn.__all__}
    assert not [n for n in optim.__all__ if id(getattr(optim, n)) in nn_objects]
    with pytest.raises(AttributeError, match="it is a layer, mlwork.nn.dropout"):
        optim.dropout  # noqa: B018


def test_warmup_schedules_start_at_exactly_zero():
    assert float(optim.warmup_cosine(1.0, 10, 100)(0)) == 0.0
    assert float(optim.schedule("warmup_cosine", peak_value=3e-4, warmup_steps=5, total_steps=50)(0)) == 0.0


def test_cosine_annealing_including_t_equals_T():
    eta0, eta_min, T = 0.1, 0.001, 50
    sched = optim.schedule("cosine", init_value=eta0, total_steps=T, min_value=eta_min)
    ts = np.array([0, 1, 12, 25, 49, 50, 80])
    expected = eta_min + 0.5 * (eta0 - eta_min) * (1 + np.cos(np.minimum(ts, T) * np.pi / T))
    np.testing.assert_allclose(values(sched, ts), expected, rtol=1e-5)
    assert float(sched(T)) == pytest.approx(eta_min, rel=1e-5)
    assert float(sched(T // 2)) == pytest.approx((eta0 + eta_min) / 2, rel=1e-5)
    np.testing.assert_allclose(values(optim.cosine(0.0, 10), [0, 5, 10]), 0.0)


def test_warmup_cosine():
    sched = optim.schedule("warmup_cosine", peak_value=1.0, warmup_steps=10, total_steps=110,
                           init_value=0.0, min_value=0.1)
    np.testing.assert_allclose(values(sched, [0, 5, 10]), [0.0, 0.5, 1.0], rtol=1e-6, atol=1e-7)
    for t in [10, 35, 60, 110, 200]:
        frac = min(t - 10, 100) / 100
        assert float(sched(t)) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * frac)), rel=1e-5)


def test_onecycle():
    sched = optim.schedule("onecycle", peak_value=0.4, total_steps=100)
    assert float(sched(0)) == pytest.approx(0.4 / 25, rel=1e-5)
    assert float(sched(30)) == pytest.approx(0.4, rel=1e-5)
    assert float(sched(100)) == pytest.approx(0.4 / 25 / 1e4, rel=1e-3)
    ts = np.arange(0, 101)
    v = values(sched, ts)
    assert np.all(np.diff(v[:31]) > 0) and np.all(np.diff(v[30:]) < 0)


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("linear", {}, "name must be one of 'constant', 'step', 'exponential', 'cosine', .*; got 'linear'"),
        ("constant", {"value": -1.0}, "value must be a finite real number >= 0; got -1.0"),
        ("step", {"init_value": 0.1, "step_size": 0, "gamma": 0.5}, "step_size must be a positive integer; got 0"),
        ("step", {"init_value": 0.1, "step_size": 5, "gamma": 1.5}, r"gamma must be .* in \(0, 1\]; got 1.5"),
        ("exponential", {"init_value": 0.1, "rate": -0.1}, "rate must be a finite real number >= 0; got -0.1"),
        ("cosine", {"init_value": 0.1, "total_steps": 10, "min_value": 0.2}, r"min_value must be .* in \[0, 0.1\]"),
        ("warmup_cosine", {"peak_value": 1.0, "warmup_steps": 20, "total_steps": 10},
         r"warmup_steps must be an integer in \[0, 9\]; got 20"),
        ("cosine", {"init_value": 0.1, "steps": 10}, r"among \(init_value, total_steps, min_value\).*; got steps"),
        ("cosine", {"init_value": 0.1}, "needs total_steps"),
    ],
)
def test_bad_schedule_arguments(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.schedule(name, **kwargs)
