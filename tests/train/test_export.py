"""export_run / load_exported: the inference function as StableHLO, run with JAX alone."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mlwork.train import export_run, load_exported, load_run, predict_run
from tests.train import trained_runs as runs


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    base = tmp_path_factory.mktemp("exports")
    return {kind: export_run(getattr(runs, kind)(), base / kind) for kind in ("single", "population")}


@pytest.mark.parametrize("kind", ["single", "population"])
@pytest.mark.parametrize("n", [1, 7, 33])
def test_exported_outputs_equal_in_process_predictions(exports, kind, n):
    loaded = load_run(getattr(runs, kind)())
    model = load_exported(exports[kind])
    images = runs.dataset().test_images[:n]
    np.testing.assert_allclose(model(images), predict_run(loaded, images), rtol=0, atol=1e-6)
    np.testing.assert_allclose(model(images.astype(np.float32) / np.float32(255)), model(images), atol=1e-6)
    assert model(images[0]).shape == (10,)
    assert model(runs.dataset().test_images[:6].reshape(2, 3, 28, 28, 1)).shape == (2, 3, 10)


def test_the_batch_dimension_is_symbolic_and_meta_describes_the_input(exports):
    model = load_exported(exports["single"])
    x_aval = model.exported.in_avals[-1]
    assert not isinstance(x_aval.shape[0], int) and str(x_aval.shape[0]) == "b"
    assert tuple(x_aval.shape[1:]) == (28, 28)
    meta = json.loads((exports["single"] / "meta.json").read_text())
    assert meta["input_shape"] == [28, 28] and meta["class_names"] == list("0123456789")
    assert meta["members"] is None and json.loads((exports["population"] / "meta.json").read_text())["members"] == 2


def test_the_loader_runs_in_a_process_where_mlwork_cannot_be_imported(exports, tmp_path):
    images = runs.dataset().test_images[:7]
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "mlwork" or name.startswith("mlwork."):
                    raise ImportError("mlwork is blocked in this process")
        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(exports["single"])!r})
        import numpy as np
        from load_exported import load_exported
        model = load_exported({str(exports["single"])!r})
        np.save({str(tmp_path / "probs.npy")!r}, model(np.load({str(tmp_path / "images.npy")!r})))
        assert not any(m == "mlwork" or m.startswith("mlwork.") for m in sys.modules)
        try:
            import mlwork  # noqa: F401
        except ImportError:
            print("blocked")
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "blocked"
    np.testing.assert_allclose(np.load(tmp_path / "probs.npy"), predict_run(load_run(runs.single()), images), atol=1e-6)


def test_an_existing_folder_is_refused_and_left_alone(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists and is not an empty folder"):
        export_run(runs.single(), target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left behind


def test_damaged_exports_are_refused(exports, tmp_path):
    import shutil

    copy = shutil.copytree(exports["single"], tmp_path / "copy")
    runs.tamper(copy / "variables.npz")
    with pytest.raises(ValueError, match="variables.npz is missing or damaged"):
        load_exported(copy)
    with pytest.raises(ValueError, match="is not an exported run"):
        load_exported(tmp_path)
