"""mlwork.train.cli: a command of one's own is parse_args + run + exit_with, with the exit-code
table and the refusals before the data that experiments.train has."""

import numpy as np
import pytest

from mlwork.data import from_arrays
from mlwork.train import cli

FAST = ["--epochs", "1", "--batch-size", "16", "--no-compile-cache", "--no-monitor"]


def _data(config):
    _data.calls += 1
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 3)).astype(np.float32)
    return from_arrays(x, (x[:, 0] > 0).astype(np.int64))


def test_refusals_that_need_no_data_come_before_load_data(tmp_path, capsys):
    # (A run that trains through cli.run: every experiments.train test.)
    _data.calls = 0
    (tmp_path / "empty").mkdir()
    for folder in ("none", "empty"):  # --resume of a folder that does not exist, or holds no run
        args, config = cli.parse_args(["--workdir", str(tmp_path / folder), "--resume", *FAST], prog="mine")
        code, summary, workdir = cli.run(args, config, _data)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and summary is None and workdir == tmp_path / folder
        assert len(err) == 1 and err[0].startswith("error: ") and str(tmp_path / folder) in err[0], err
    assert _data.calls == 0 and not (tmp_path / "none").exists() and not any((tmp_path / "empty").iterdir())


def test_bad_flags_exit_2_with_the_commands_name(capsys):
    with pytest.raises(SystemExit) as e:
        cli.parse_args(["--epochs", "0"], prog="mine")
    assert e.value.code == 2 and capsys.readouterr().err.strip() == "error: epochs must be >= 1, got 0"
    with pytest.raises(SystemExit) as e:
        cli.parse_args(["--resume"], prog="mine")
    assert e.value.code == 2 and "mine: error: --resume needs --workdir" in capsys.readouterr().err


def test_exit_with_raises_systemexit_for_success():
    with pytest.raises(SystemExit) as e:
        cli.exit_with(0)
    assert e.value.code == 0
