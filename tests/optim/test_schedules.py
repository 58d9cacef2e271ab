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


def test_exponential():
    sched = optim.schedule("exponential", init_value=0.1, rate=0.05)
    ts = np.array([0, 1, 7, 20, 100])
    np.testing.assert_allclose(values(sched, ts), 0.1 * np.exp(-0.05 * ts), rtol=1e-5)


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
        ("linear", {}, "unknown schedule 'linear'; expected one of: constant, step, exponential, cosine"),
        ("constant", {"value": -1.0}, "value must be >= 0"),
        ("step", {"init_value": 0.1, "step_size": 0, "gamma": 0.5}, "step_size must be a positive integer"),
        ("step", {"init_value": 0.1, "step_size": 5, "gamma": 1.5}, r"gamma must be in \(0, 1\]"),
        ("exponential", {"init_value": 0.1, "rate": -0.1}, "rate must be >= 0"),
        ("cosine", {"init_value": 0.1, "total_steps": 10, "min_value": 0.2}, "must not exceed"),
        ("warmup_cosine", {"peak_value": 1.0, "warmup_steps": 20, "total_steps": 10}, "warmup_steps"),
        ("cosine", {"init_value": 0.1, "steps": 10}, r"takes keywords \(init_value, total_steps, min_value\)"),
    ],
)
def test_bad_schedule_arguments(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.schedule(name, **kwargs)
