import math
import re

import numpy as np

from experiments import optimizers


def test_writes_three_plots_and_a_table(tmp_path, capsys):
    assert optimizers.main(["--steps", "300", "--out", str(tmp_path)]) == 0
    for name in ("trajectories.png", "loss.png", "schedules.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    out = capsys.readouterr().out
    rows = re.findall(r"^(quadratic|rosenbrock)\s+(\w+)\s+(\S+)\s+(\S+)\s+(\S+)$", out, re.M)
    assert len(rows) == 8
    # Closed form for SGD on ½(x² + 25y²): each coordinate shrinks by (1 − η s_i) per step, so the
    # loss falls below 1e-6 at the first t with ½(16·0.93^{2t} + 25·2.25·0.75^{2t}) < 1e-6.
    eta = 0.07
    t = next(t for t in range(1000)
             if 0.5 * (16 * (1 - eta) ** (2 * t) + 25 * 2.25 * (1 - 25 * eta) ** (2 * t)) < 1e-6)
    sgd = next(r for r in rows if r[:2] == ("quadratic", "sgd"))
    assert int(sgd[4]) == t


def test_steps_to_tolerance_and_schedules():
    assert optimizers.steps_to_tolerance(np.array([5.0, 0.5, 2.0, 0.1, 0.01]), 1.0) == 3
    assert optimizers.steps_to_tolerance(np.array([5.0, 0.5]), 0.1) is None
    sched = optimizers.schedules_over(100)
    assert set(sched) >= {"constant", "cosine", "onecycle"} and len(sched) == 6
    assert math.isclose(sched["cosine"][100], 0.001, rel_tol=1e-4)
