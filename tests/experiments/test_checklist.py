"""`python -m experiments.checklist`: the healthy MLP passes all eight checks, and each planted
fault fails exactly the check that should catch it, naming the deck's likely cause."""

import json
import math

import pytest

from experiments import checklist
from mlwork.train.diagnostics import checklist as cl

SMALL = ["--examples", "1000", "--overfit-steps", "40"]


def _run(tmp_path, monkeypatch, *args):
    monkeypatch.setenv("MLWORK_OFFLINE", "1")
    monkeypatch.delenv("MLWORK_DATA_DIR", raising=False)
    code = checklist.main([*SMALL, "--out", str(tmp_path), *args])
    record = json.loads((tmp_path / "checklist.json").read_text())
    return code, {r["number"]: r for r in record["results"]}, (tmp_path / "checklist.md").read_text()


def test_healthy_mlp_passes_every_check(tmp_path, monkeypatch, capsys):
    code, results, table = _run(tmp_path, monkeypatch)
    assert code == 0, table
    assert sorted(results) == list(range(1, 9)) and all(r["passed"] for r in results.values())
    assert "8/8 checks passed" in capsys.readouterr().out
    assert results[1]["values"]["accuracy"] >= 0.99                     # memorised the batch of 64
    assert results[2]["values"]["accuracy_given"] > 0.6                  # nearest class mean on real MNIST
    assert results[8]["values"]["allowed"] == pytest.approx([math.log(10) / 2, 2 * math.log(10)])


@pytest.mark.parametrize(("fault", "check", "cause"), [
    ("detached", 4, cl.DETACHED),
    ("unnormalised", 3, cl.NOT_NORMALISED),
    ("shuffled-labels", 2, cl.BAD_LABELS),
    ("mse-softmax", 5, "gradient vanishes when the model is confidently wrong"),
    ("high-lr", 1, cl.LR_TOO_HIGH),
])
def test_each_fault_fails_exactly_its_check(tmp_path, monkeypatch, fault, check, cause):
    code, results, table = _run(tmp_path, monkeypatch, "--fault", fault)
    assert code == 1
    assert [n for n, r in results.items() if not r["passed"]] == [check], table
    assert cause in results[check]["cause"]
    assert f"**likely cause:** {results[check]['cause']}" in table


def test_fault_evidence_is_measured(tmp_path, monkeypatch):
    _, results, _ = _run(tmp_path, monkeypatch, "--fault", "detached")
    assert results[4]["values"]["zero"] == ["[0]['W']", "[0]['b']"]          # exactly the detached layer
    assert results[4]["values"]["layer_norms"]["layer_1"] == 0.0


def test_bad_flags_are_usage_errors(capsys):
    for args in (["--examples", "10"], ["--model", "resnet"], ["--fault", "typo"], ["--lr", "0"]):
        with pytest.raises(SystemExit) as e:
            checklist.main(args)
        assert e.value.code == 2
