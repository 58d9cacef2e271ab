"""TrainConfig: every knob in one validated record, its JSON round trip, and the CLI made from it."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlwork.train.config import OPTIMIZERS, RUN_RECORD_KEYS, TrainConfig, add_config_arguments
from mlwork.train.errors import EXIT_CODES, RunError, exit_code

ROOT = Path(__file__).resolve().parents[2]


def test_names_agree_with_the_modules_that_define_them():
    from mlwork import nn, optim
    from mlwork.data.sources import SOURCES as DATA_SOURCES
    from mlwork.train.config import COMPUTE_DTYPES, SOURCES

    assert OPTIMIZERS == tuple(optim.OPTIMIZERS) and SOURCES == DATA_SOURCES
    assert COMPUTE_DTYPES == tuple(nn.COMPUTE_DTYPES)


def test_json_round_trip_including_population_sweep_and_steps_per_call(tmp_path):
    config = TrainConfig(model="cnn", epochs=3, population=2, sweep="lr=1e-3,3e-3", steps_per_call=5,
                         data_dir="/data", test_dir="/test", clip_norm=1.0)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**config.to_dict(), "data_source": "idx:/data", "n_params": 7}))
    assert TrainConfig.from_json(path) == config
    assert TrainConfig(**config.to_dict()) == config
    path.write_text(json.dumps({**config.to_dict(), "learning_rate": 0.1}))
    with pytest.raises(RunError, match="unknown fields \\['learning_rate'\\]"):
        TrainConfig.from_json(path)
    assert "members" in RUN_RECORD_KEYS


@pytest.mark.parametrize("changes, message", [
    ({"lr": float("nan")}, "lr must be a finite number"),
    ({"lr": 0.0}, "lr must be > 0"),
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"epochs": 2.5}, "epochs must be integer"),
    ({"augment": 1}, "augment must be boolean"),
    ({"batch_size": True}, "batch_size must be integer"),
    ({"dropout": 1.0}, "dropout must be in \\[0, 1\\)"),
    ({"model": "resnet"}, "model must be one of mlp, cnn or package.module:factory; got 'resnet'"),
    ({"hidden": "64,0"}, "hidden must be comma-separated positive integers"),
    ({"model_kwargs": "[1]"}, "model_kwargs must be a JSON object"),
    ({"loss": "hinge"}, "loss must be one of"),
    ({"monitor_mode": "up"}, "unknown monitor_mode 'up'"),
    ({"schedule": "linear"}, "unknown schedule"),
    ({"val_fraction": 1.0}, "val_fraction must be in \\(0, 1\\)"),
    ({"clip_norm": -1.0}, "clip_norm must be > 0"),
    ({"sweep": "momentum=0.9"}, "sweep takes NAME=V1,V2"),
    ({"population": 2, "devices": 4}, "a population runs on one device"),
])
def test_bad_values_name_the_field(changes, message):
    with pytest.raises(RunError, match=message):
        TrainConfig(**changes)


def test_ints_for_floats_are_accepted_as_floats():
    assert TrainConfig(lr=1, weight_decay=0).lr == 1.0
    assert isinstance(TrainConfig(weight_decay=0).weight_decay, float)


def test_every_field_has_a_flag_with_help_and_the_default():
    import argparse

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    actions = {a.dest: a for a in parser._actions}
    for field in dataclasses.fields(TrainConfig):
        action = actions[field.name]
        assert action.help and action.default == field.default, field.name
    args = parser.parse_args(["--lr", "0.01", "--batch-size", "32", "--no-monitor", "--augment",
                              "--sweep", "lr=1e-3,3e-3"])
    assert (args.lr, args.batch_size, args.monitor, args.augment, args.sweep) == (0.01, 32, False, True,
                                                                                  "lr=1e-3,3e-3")


def test_help_shows_defaults_and_exit_codes_without_importing_jax():
    code = ("import sys\nfrom experiments import mnist\ntry:\n    mnist.parse_args(['--help'])\n"
            "except SystemExit:\n    pass\nprint('JAX-LOADED' if 'jax' in sys.modules else 'NO-JAX')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""}).stdout
    assert out.rstrip().endswith("NO-JAX")
    out = " ".join(out.split())  # argparse wraps lines
    assert "(default: 64)" in out and "(default: adam)" in out
    for code_number, meaning in EXIT_CODES.items():
        assert f"{code_number} {meaning[:20]}" in out


def test_a_bad_value_on_the_command_line_is_one_line(capsys):
    from experiments import mnist

    with pytest.raises(SystemExit) as e:
        mnist.parse_args(["--lr", "nan"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: lr must be a finite number")


def test_exit_codes_of_the_documented_errors():
    from mlwork.train.errors import CheckpointError, NonFiniteLossError, Preempted, WorkdirInUse

    assert exit_code(RunError("x")) == 2 and exit_code(WorkdirInUse("x")) == 2
    assert exit_code(NonFiniteLossError(1, 2)) == 3 and exit_code(CheckpointError("x")) == 4
    assert exit_code(Preempted(3, 1, None)) == 75 and exit_code(Preempted(3, 1, None, "SIGINT")) == 130
    with pytest.raises(TypeError):
        exit_code(KeyError("x"))
