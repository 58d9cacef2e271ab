"""`python -m experiments.landscape` with small settings: the plots, and the numbers behind them."""

import json
import math

import pytest

from experiments import landscape


def test_landscape_writes_plots_and_consistent_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("MLWORK_OFFLINE", "1")
    monkeypatch.delenv("MLWORK_DATA_DIR", raising=False)
    code = landscape.main(["--epochs", "1", "--examples", "600", "--eval-examples", "128", "--points", "5",
                           "--grid", "5", "--chunk", "8", "--out", str(tmp_path)])
    assert code == 0
    for png in ("landscape_1d.png", "landscape_2d.png", "first_layer_weights.png"):
        assert (tmp_path / png).stat().st_size > 5000
    s = json.loads((tmp_path / "landscape.json").read_text())
    assert 0.0 in s["alphas"] and 1.0 in s["alphas"]
    # Untrained: about ln 10 (within the checklist's factor 2); trained: clearly lower.
    assert math.log(10) / 2 < s["loss_initial"] < 2 * math.log(10)
    assert s["loss_trained"] < 0.6 * s["loss_initial"]
    # The plane's centre and the line's end are the same parameters, evaluated by two programs.
    assert s["surface_centre"] == pytest.approx(s["loss_trained"], rel=1e-5)
    assert len(s["surface_train_loss"]) == 5 and all(len(row) == 5 for row in s["surface_train_loss"])
    assert s["surface_max"] >= s["surface_centre"]


def test_bad_flags_are_usage_errors():
    for args in (["--grid", "1"], ["--span", "0"], ["--epochs", "0"]):
        with pytest.raises(SystemExit) as e:
            landscape.main(args)
        assert e.value.code == 2
