"""`python -m experiments.predict`: label and probability per PNG/JPEG/IDX input; bad input exits 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments import predict as cli
from mlwork.train import load_run, predict_run
from tests.data.test_idx import write_idx
from tests.train import trained_runs as runs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run():
    return load_run(runs.single())


@pytest.fixture
def images(tmp_path):
    test = runs.dataset().test_images
    png = tmp_path / "digit.png"
    Image.fromarray(test[0]).save(png)
    jpg = tmp_path / "photo.jpg"  # RGB, twice the size: converted and resized with a warning
    Image.fromarray(np.stack([test[1]] * 3, -1)).resize((56, 56), Image.Resampling.NEAREST).save(jpg, quality=95)
    idx = write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test[:5])
    return png, jpg, idx


def test_each_input_gets_a_label_and_probability(run, images, capsys):
    png, jpg, idx = images
    assert cli.main(["--workdir", str(runs.single()), str(png), str(jpg), str(idx)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 + 1 + 5
    test = runs.dataset().test_images
    expected = [predict_run(run, test[0])] + [None] + list(predict_run(run, test[:5]))
    for line, probs in zip(lines, expected, strict=True):
        if probs is not None:
            assert line.endswith(f": {probs.argmax()}  p={probs.max():.4f}"), line
    assert lines[0].startswith(f"{png}: ") and lines[2].startswith(f"{idx}[0]: ")
    assert f"warning: {jpg}: converted RGB to greyscale and resized 56x56 to 28x28" in captured.err
    assert str(png) not in captured.err  # already 28x28 greyscale: no warning


def test_json_output_for_machines(run, images, capsys):
    png, _, idx = images
    assert cli.main(["--workdir", str(runs.single()), "--json", "--which", "9", str(png), str(idx)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["step"] == 9 and doc["which"] == 9 and doc["class_names"] == list("0123456789")
    preds = doc["predictions"]
    assert [p["index"] for p in preds] == [None, 0, 1, 2, 3, 4]
    reference = predict_run(load_run(runs.single(), 9), runs.dataset().test_images[:5])
    for p, probs in zip(preds[1:], reference, strict=True):
        assert p["label"] == int(probs.argmax()) and p["class_name"] == str(p["label"])
        np.testing.assert_allclose(p["probabilities"], probs, atol=1e-6)
        assert p["probability"] == pytest.approx(float(probs.max()), abs=1e-6)


def test_invert_turns_dark_on_light_drawings_into_mnist_polarity(run, tmp_path, capsys):
    digit = runs.dataset().test_images[2]
    path = tmp_path / "paper.png"
    Image.fromarray(255 - digit).save(path)
    assert cli.main(["--workdir", str(runs.single()), "--json", "--invert", str(path)]) == 0
    (p,) = json.loads(capsys.readouterr().out)["predictions"]
    np.testing.assert_allclose(p["probabilities"], predict_run(run, digit), atol=1e-6)


def test_dark_on_light_drawing_without_invert_gets_a_warning(tmp_path):
    digit = runs.dataset().test_images[2]
    warnings = []
    paper, screen = tmp_path / "paper.png", tmp_path / "screen.png"
    Image.fromarray(255 - digit).save(paper)
    Image.fromarray(digit).save(screen)
    cli.load_image(screen, (28, 28), warn=warnings.append)
    assert warnings == []  # MNIST's own polarity: nothing to say
    x = cli.load_image(paper, (28, 28), warn=warnings.append)
    assert len(warnings) == 1 and "light background" in warnings[0] and "--invert" in warnings[0]
    np.testing.assert_array_equal(x, 255 - digit)  # warned, not silently changed
    warnings.clear()
    cli.load_image(paper, (28, 28), invert=True, warn=warnings.append)
    assert warnings == []


def test_a_population_predicts_with_its_ensemble(images, capsys):
    png, _, _ = images
    assert cli.main(["--workdir", str(runs.population()), "--json", str(png)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["members"] == 2
    np.testing.assert_allclose(doc["predictions"][0]["probabilities"],
                               predict_run(load_run(runs.population()), runs.dataset().test_images[0]), atol=1e-6)


def test_bad_inputs_exit_2_with_one_line(images, tmp_path, capsys):
    png, _, _ = images
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    fake_png = tmp_path / "fake.png"
    fake_png.write_text("not a png")
    small = write_idx(tmp_path / "small-idx3-ubyte", np.zeros((2, 20, 20), np.uint8), gz=False)
    cases = [
        ([str(tmp_path / "missing.png")], "does not exist"),
        ([str(text)], "magic number"),
        ([str(fake_png)], "not a readable PNG/JPEG image"),
        ([str(small)], "holds 20x20 images; the run expects 28x28"),
    ]
    for inputs, message in cases:
        assert cli.main(["--workdir", str(runs.single()), *inputs]) == cli.EXIT_BAD_INPUT == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert cli.main(["--workdir", str(tmp_path / "nowhere"), str(png)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["--workdir", str(runs.single()), "--which", "first", str(png)])
    assert e.value.code == 2


def test_a_damaged_checkpoint_exits_4(images, tmp_path, capsys):
    png, _, _ = images
    workdir = runs.copy_run(runs.single(), tmp_path / "run")
    runs.tamper(runs.biggest_file(workdir / "checkpoints" / "18" / "state"))
    assert cli.main(["--workdir", str(workdir), str(png)]) == cli.EXIT_CHECKPOINT == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint 18" in err[0]


def test_help_does_not_import_jax():
    code = ("import runpy, sys\nsys.argv = ['predict', '--help']\n"
            "try:\n    runpy.run_module('experiments.predict', run_name='__main__')\n"
            "except SystemExit:\n    pass\nprint('JAX' if 'jax' in sys.modules else 'no JAX')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-1500:]
    assert "--workdir" in out.stdout and out.stdout.strip().endswith("no JAX")


# -- runs on arrays that are not images: .npy / .npz inputs, values and multi-hot labels ------------------
@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    pytest.importorskip("sklearn")
    from mlwork.train import TrainConfig, train_and_evaluate
    from tests.train.problems import diabetes

    data = diabetes()
    workdir = tmp_path_factory.mktemp("predict") / "diabetes"
    train_and_evaluate(TrainConfig(epochs=2, batch_size=32, hidden="16", monitor=False), workdir, data,
                       progress=False, log=lambda m: None, plots=False)
    return workdir, data


def test_a_regression_predicts_values_for_npy_and_npz_inputs(regression_run, tmp_path, capsys):
    workdir, data = regression_run
    np.save(tmp_path / "batch.npy", data.x_test[:3])
    np.save(tmp_path / "one.npy", data.x_test[0])
    np.savez(tmp_path / "some.npz", x=data.x_test[3:5])
    assert cli.main(["--workdir", str(workdir), "--json", str(tmp_path / "batch.npy"), str(tmp_path / "one.npy"),
                     str(tmp_path / "some.npz")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["target"] == "values" and doc["class_names"] is None
    values = [p["value"] for p in doc["predictions"]]
    expected = predict_run(load_run(workdir), data.x_test[:5])
    np.testing.assert_allclose(values, np.concatenate([expected[:3], expected[:1], expected[3:5]]), rtol=1e-6)
    assert [p["index"] for p in doc["predictions"]] == [0, 1, 2, None, 0, 1]
    assert cli.main(["--workdir", str(workdir), str(tmp_path / "one.npy")]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'one.npy'}: {float(expected[0]):.6g}"


def test_multi_hot_labels_print_each_labels_probability(tmp_path, capsys):
    from mlwork.data import from_arrays
    from mlwork.train import TrainConfig, train_and_evaluate

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 3)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0], axis=1)
    data = from_arrays(x, y, class_names=["first", "second"])
    train_and_evaluate(TrainConfig(epochs=1, batch_size=32, hidden="8", monitor=False), tmp_path / "w", data,
                       progress=False, log=lambda m: None, plots=False)
    np.save(tmp_path / "x.npy", x[:2])
    assert cli.main(["--workdir", str(tmp_path / "w"), "--json", str(tmp_path / "x.npy")]) == 0
    preds = json.loads(capsys.readouterr().out)["predictions"]
    probs = predict_run(load_run(tmp_path / "w"), x[:2])
    for p, expected in zip(preds, probs, strict=True):
        np.testing.assert_allclose(p["probabilities"], expected, atol=1e-6)
        assert p["labels"] == [i for i in range(2) if expected[i] > 0.5]
        assert p["class_names"] == [["first", "second"][i] for i in p["labels"]]


def test_array_inputs_that_do_not_fit_the_run_exit_2_with_one_line(regression_run, images, tmp_path, capsys):
    workdir, data = regression_run
    png, _, _ = images
    np.save(tmp_path / "wide.npy", np.zeros((2, 11), np.float32))
    np.save(tmp_path / "pickled.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    np.save(tmp_path / "nan.npy", np.full((1, 10), np.nan, np.float32))
    np.savez(tmp_path / "nokey.npz", inputs=data.x_test[:2])
    cases = [
        ("wide.npy", "holds inputs of shape (2, 11); the run expects (N, 10) or one input of shape (10,)"),
        ("pickled.npy", "not a readable NumPy array file (it holds pickled (object) arrays)"),
        ("nan.npy", "NaN"),
        ("nokey.npz", "must hold the inputs as x (or x_test); it holds ['inputs']"),
    ]
    for name, message in cases:
        assert cli.main(["--workdir", str(workdir), str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert cli.main(["--workdir", str(workdir), str(png)]) == 2
    assert "the run takes inputs of shape (10,), not images" in capsys.readouterr().err
