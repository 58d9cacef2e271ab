"""The two foundation experiments print the deck's numbers."""

import math
import re

import pytest

from experiments import backprop, forward_pass


def test_forward_pass_prints_the_deck_numbers(capsys):
    assert forward_pass.main([]) == 0
    out = capsys.readouterr().out
    assert "z[1]     = W[1] x + b[1]      = (0.67, -0.33)" in out
    assert "a[1]     = ReLU(z[1])         = (0.67, 0)" in out
    assert "(0.702)" in out
    assert "y_hat = 0.6686" in out
    assert re.search(r"max \|vmap - batched apply\| = 0\.00e\+00", out)


def test_backprop_experiment_prints_chain_rule_factors(capsys):
    assert backprop.main(["--batch", "8"]) == 0
    out = capsys.readouterr().out
    a = 1 / (1 + math.exp(-0.67))
    assert f"dL/da = 2(a - y)        = {2 * (a - 1):.5f}" in out
    assert f"da/dz = a(1 - a)        = {a * (1 - a):.5f}" in out
    worst = float(re.search(r"largest difference over all parameters: (\S+)", out).group(1))
    assert worst < 1e-5


def test_bad_flags_exit_with_usage_error():
    with pytest.raises(SystemExit) as e:
        backprop.main(["--sizes", "8,0,4"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        forward_pass.main(["--batch", "0"])
    assert e.value.code == 2
