"""The streamed input path's pieces: the .npy cache, the memory-mapped source, one epoch's Grain pipeline."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlwork.data.stream import NpySource, chunk_starts, epoch_chunks, write_npy_cache


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("stream")
    x = (np.arange(40 * 3 * 2) % 251).astype(np.uint8).reshape(40, 3, 2)
    y = np.arange(40, dtype=np.int32) * 7
    return NpySource(write_npy_cache(x, y, tmp_path / "split")), x, y


def test_the_cache_is_written_once_and_named_by_the_arrays(tmp_path, monkeypatch):
    monkeypatch.setenv("MLWORK_CACHE_DIR", str(tmp_path))
    x, y = np.ones((5, 2), np.float32), np.arange(5)
    first = write_npy_cache(x, y)
    mtime = (first / "x_train.npy").stat().st_mtime_ns
    assert write_npy_cache(x, y) == first and (first / "x_train.npy").stat().st_mtime_ns == mtime
    assert write_npy_cache(x, y + 1) != first  # other targets, another folder
    assert first.parent == tmp_path / "mlwork" / "stream"
    assert not [p for p in first.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="x and y must hold the same number of examples; got 3 and 2"):
        write_npy_cache(np.zeros((3, 2)), np.zeros(2), tmp_path)
    with pytest.raises(ValueError, match="folder must hold x_train.npy and y_train.npy"):
        NpySource(tmp_path / "missing")
    np.save(tmp_path / "x_train.npy", np.zeros((3, 2)))
    np.save(tmp_path / "y_train.npy", np.zeros(4))
    with pytest.raises(ValueError, match="x_train.npy and y_train.npy must hold the same number of examples"):
        NpySource(tmp_path)


def test_the_source_memory_maps_and_reads_rows_of_any_index_shape(source):
    src, x, y = source
    assert isinstance(src.x, np.memmap) and len(src) == 40
    index = np.array([[[5, 0], [39, 5]]])
    xs, ys = src.rows(index)
    np.testing.assert_array_equal(xs, x[index])
    np.testing.assert_array_equal(ys, y[index])


@settings(max_examples=25, deadline=None)
@given(steps=st.integers(1, 9), batch=st.integers(1, 4), chunk=st.integers(1, 10), members=st.sampled_from([0, 2]),
       seed=st.integers(0, 2**16))
def test_an_epochs_chunks_are_its_batches_in_order_and_resume_from_any_chunk(source, steps, batch, chunk, members,
                                                                             seed):
    src, x, y = source
    rng = np.random.default_rng(seed)
    shape = (members, steps * batch) if members else (steps * batch,)
    order = np.stack([rng.permutation(40)[:steps * batch] for _ in range(max(members, 1))]).reshape(
        *shape[:-1], steps, batch)
    it = epoch_chunks(src, order, chunk, threads=2)
    got = list(it)
    assert len(got) == len(chunk_starts(steps, chunk)) == -(-steps // chunk)
    ys = np.concatenate([c[1] for c in got], axis=-2)  # the chunks, put back together: every step in order
    np.testing.assert_array_equal(ys, y[order])
    np.testing.assert_array_equal(np.concatenate([c[0] for c in got], axis=-4), x[order])
    for c in range(len(got)):  # Grain's iterator state: continue from any chunk
        again = epoch_chunks(src, order, chunk, state={"next_index": c})
        np.testing.assert_array_equal(next(again)[1], got[c][1])


def test_the_iterator_state_follows_what_was_consumed(source):
    src, _, _ = source
    it = epoch_chunks(src, np.arange(12).reshape(6, 2), 2)
    next(it)
    next(it)
    assert it.get_state() == {"next_index": 2}
    with pytest.raises(ValueError, match="chunk_steps must be >= 1, got 0"):
        epoch_chunks(src, np.arange(12).reshape(6, 2), 0)
