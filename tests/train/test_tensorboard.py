"""TensorBoard event files: every scalar of metrics.jsonl and the test figures, read back."""

import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboardX.crc32c import crc32c
from tensorboardX.proto import event_pb2

from mlwork.train.tensorboard import TensorBoardWriter, member_run, scalars, write_run
from tests.train import trained_runs as runs


def _masked(data: bytes) -> int:  # TFRecord's masked CRC-32C
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_scalars(folder: Path) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` from the event files directly in ``folder``, checking every
    record's framing and checksums (the TFRecord format)."""
    out: dict[str, dict[int, float]] = {}
    files = sorted(folder.glob("events.out.tfevents.*"))
    assert files, f"no event file in {folder}"
    for path in files:
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            header = data[pos:pos + 8]
            (length,) = struct.unpack("<Q", header)
            assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == _masked(header)
            payload = data[pos + 12:pos + 12 + length]
            assert struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] == _masked(payload)
            pos += 16 + length
            event = event_pb2.Event.FromString(payload)
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


def _rows(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_scalars_flattens_per_layer_fields_and_skips_what_is_not_a_number():
    row = {"epoch": 3, "member": 1, "train_loss": 0.5, "learning_rate": None, "flag": True, "name": "x",
           "grad_norm_layers": {"layer_1": 2.0, "layer_2": None}, "monitored_steps": 4, "bad": float("nan")}
    assert scalars(row) == {"train_loss": 0.5, "grad_norm_layers/layer_1": 2.0, "monitored_steps": 4.0}


def test_every_scalar_of_every_row_and_the_test_figures_are_in_the_event_files(tmp_path):
    source = runs.single()
    history, summary = _rows(source), json.loads((source / "summary.json").read_text())
    assert any(k.startswith("grad_norm_layers/") for k in scalars(history[0]))  # the monitor's fields are there
    with TensorBoardWriter(tmp_path) as tb:
        for row in history:
            tb.write_row(row)
        tb.write_summary(summary)
    events = read_scalars(tmp_path / "tensorboard")
    expected = {(tag, row["epoch"]): value for row in history for tag, value in scalars(row).items()}
    assert len(expected) > 20
    for (tag, step), value in expected.items():
        assert events[tag][step] == pytest.approx(value, rel=1e-6, abs=1e-30), tag
    assert events["test/accuracy"] == {2: pytest.approx(summary["test_accuracy"], rel=1e-6)}
    assert events["test/loss"] == {2: pytest.approx(summary["test_loss"], rel=1e-6)}
    assert set(events) == {tag for tag, _ in expected} | {"test/accuracy", "test/loss", "best/val_accuracy",
                                                          "best/epoch"}


def test_a_population_writes_one_tensorboard_run_per_member_and_the_ensemble_on_top(tmp_path):
    source = runs.copy_run(runs.population(), tmp_path / "pop")
    folder = write_run(source)
    history, summary = _rows(source), json.loads((source / "summary.json").read_text())
    top = read_scalars(folder)
    assert top["test/ensemble_accuracy"] == {2: pytest.approx(summary["ensemble_test_accuracy"], rel=1e-6)}
    for k in range(2):
        events = read_scalars(folder / member_run(k))
        for row in (r for r in history if r["member"] == k):
            for tag, value in scalars(row).items():
                assert events[tag][row["epoch"]] == pytest.approx(value, rel=1e-6), (k, tag)
        assert events["test/accuracy"][2] == pytest.approx(summary["members"][k]["test_accuracy"], rel=1e-6)


def test_bad_rows_are_refused():
    with pytest.raises(ValueError, match="row must have an 'epoch' field"):
        TensorBoardWriter("unused").write_row({"train_loss": 1.0})


def test_writing_events_does_not_import_tensorflow(tmp_path):
    code = ("import sys; from mlwork.train.tensorboard import TensorBoardWriter\n"
            f"tb = TensorBoardWriter({str(tmp_path)!r}); tb.write_row({{'epoch': 1, 'val_loss': 0.5}}); tb.close()\n"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip() == "False"
    assert math.isclose(read_scalars(tmp_path / "tensorboard")["val_loss"][1], 0.5)
