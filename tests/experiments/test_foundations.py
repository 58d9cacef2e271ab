"""experiments.foundations prints the deck's worked examples (sections 1-7) and draws three figures."""

import re

import matplotlib.image as mpimg
import pytest

from experiments import foundations


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, pattern
    return float(match.group(1))


# Lines the deck works out by hand (the Riemann sums are (2/n) sum_{k<n} (2k/n)^2).
EXPECTED_TEXT = [
    "p/q with p^2 = 2 q^2 and q <= 10000: none",
    "(2 + 3i)(1 - i) = 5+1j",
    "(f o g)(2) = 9, (g o f)(2) = 5",
    "3x+1 :     6.7     6.97    6.997    7.003     7.03      7.3",
    "step function at 0: left 0, right 1 -> jump, no limit",
    "lim x->inf 1/x = 0\n",  # an estimate shown to the digits its error supports (issue 27)
    "d/dx (x^2 + 1)^3 at 1 = 24",
    "df/dx = 16 (2xy + 3y^2 = 16), df/dy = 13",
    "left Riemann sum n =  4: 1.750000",
    "left Riemann sum n =  8: 2.187500",
    "Simpson n = 2: 2.666667",
    "degrees [2, 2, 3, 1], connected: True, bipartite: False",
    "groups [1, 3] | [2, 4], distances from 1: [0, 1, 2, 1]",
    "48 edges, is DAG True, 59 parameters (nn.count_params: 59)",
]
# (regex capturing a printed number, its exact value, tolerance)
EXPECTED_VALUES = [
    (r"lim x->2 \(3x \+ 1\) = (\S+)", 7.0, 1e-5),
    (r"lim x->0 sin\(x\)/x = (\S+)", 1.0, 1e-5),
    (r"lim x->inf \(2x \+ 1\)/x = (\S+)", 2.0, 1e-5),
    (r"lim x->0 \(1 - cos x\)/x\^2 = (\S+)", 0.5, 1e-6),  # float32 cancellation gave 0
    (r"h=None: (\S+) ", 0.0, 1e-5),
    (r"int_0\^1 x e\^x dx = (\S+)", 1.0, 1e-5),
    (r"int p = (\S+),", 1.0, 1e-5),
    (r"E\[X\] = int x p = (\S+)", 1.5, 1e-4),
    (r"vs nn.mlp: max difference (\S+)", 0.0, 1e-5),
]


@pytest.mark.slow  # the whole experiment end to end (13 s); its functions are tested in tests/foundations
def test_foundations_experiment_prints_the_deck_examples_and_writes_figures(tmp_path, capsys):
    assert foundations.main(["--out", str(tmp_path), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    for line in EXPECTED_TEXT:
        assert line in out, line
    for pattern, value, tol in EXPECTED_VALUES:
        assert _number(pattern, out) == pytest.approx(value, abs=tol), pattern
    for name in ("secant_tangent.png", "riemann.png", "mlp_graph.png"):
        image = mpimg.imread(tmp_path / name)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300, name
        assert image[..., :3].std() > 0.05, name  # not a blank canvas


@pytest.mark.parametrize("flags", [["--sizes", "4,x"], ["--sizes", "4"], ["--sizes", "3,0,1"],
                                   ["--sizes", "100,10"]])
def test_bad_flags_exit_with_usage_error(flags, tmp_path):
    with pytest.raises(SystemExit) as e:
        foundations.main([*flags, "--out", str(tmp_path)])
    assert e.value.code == 2
