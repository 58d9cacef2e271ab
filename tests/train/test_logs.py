"""Per-epoch lines outside a terminal (Keras verbose=2 style), and the terminal test."""

import io
import os

import pytest

from mlwork.train import epoch_line, use_progress_bar

ROW = {"epoch": 3, "train_loss": 0.23456, "train_accuracy": 0.93125, "val_loss": 0.21, "val_accuracy": 0.94,
       "learning_rate": 0.001, "epoch_time_s": 1.2345, "grad_norm": 2.0}


def test_a_single_models_line_has_every_figure_in_keras_order():
    assert epoch_line(ROW, total_epochs=10) == ("epoch 3/10 - 1.23s - loss: 0.2346 - accuracy: 0.9313 - "
                                                "val_loss: 0.2100 - val_accuracy: 0.9400 - lr: 1.00e-03")


def test_missing_fields_are_left_out():
    assert epoch_line({"epoch": 1, "val_accuracy": 0.5, "learning_rate": None}) == "epoch 1 - val_accuracy: 0.5000"
    assert epoch_line({"epoch": 2, "learning_rate": 0.1}).endswith("lr: 0.1")


def test_a_population_line_gives_mean_min_and_max():
    rows = [dict(ROW, member=0, val_accuracy=0.90, learning_rate=1e-3),
            dict(ROW, member=1, val_accuracy=0.96, learning_rate=3e-3, epoch_time_s=1.5)]
    line = epoch_line(rows, total_epochs=5)
    assert line.startswith("epoch 3/5 - 1.50s - 2 members - loss: 0.2346 [0.2346, 0.2346]")
    assert "val_accuracy: 0.9300 [0.9000, 0.9600]" in line and line.endswith("lr: 1.00e-03..3.00e-03")
    with pytest.raises(ValueError, match="one epoch"):
        epoch_line([ROW, dict(ROW, epoch=4)])
    with pytest.raises(ValueError, match="empty sequence"):
        epoch_line([])


def test_only_a_terminal_gets_a_progress_bar():
    assert use_progress_bar(io.StringIO()) is False
    closed = io.StringIO()
    closed.close()
    assert use_progress_bar(closed) is False
    primary, secondary = os.openpty()
    try:
        with os.fdopen(secondary, "w", closefd=False) as tty:
            assert use_progress_bar(tty) is True
    finally:
        os.close(primary)
        os.close(secondary)
