import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

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


def test_command_line_is_parsed_before_jax_and_reads_as_plain_text():
    code = ("import sys; from experiments import optimizers; optimizers.parse_args(['--steps', '5']); "
            "print('jax' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    help_text = subprocess.run([sys.executable, "-m", "experiments.optimizers", "--help"], capture_output=True,
                               text=True, check=True, env={**os.environ, "COLUMNS": "200"}).stdout
    assert "(default: 3000)" in help_text and "(default: runs/optimizers)" in help_text and "exit codes:" in help_text
    assert not re.search(r"``|:(func|mod|class|math):`", help_text)


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--steps", "x"], ["--nope"]])
def test_bad_flags_exit_2_with_one_line(argv, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "experiments.optimizers", *argv, "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("python -m experiments.optimizers: error:")
    assert not (tmp_path / "o").exists()
