"""The model file (issue 29): save/load round trips bit for bit; damaged, truncated, foreign and
other-version files are refused with one line naming the path; saving never leaves a half file."""

import json
import os
import zipfile

import jax
import numpy as np
import pytest

from mlwork import trees
from mlwork.trees import modelfile
from mlwork.trees import sklearn as sk

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 4)).astype(np.float32)
X[::7, 1] = np.nan
Y = (X[:, 0] + 0.5 * X[:, 2] > 0).astype(np.int64)
Y3 = np.digitize(X[:, 0], [-0.5, 0.5])
YR = (X[:, 0] * 2 + X[:, 3]).astype(np.float32)

MODELS = {
    "tree": lambda: trees.fit_tree(X, Y, max_depth=3),
    "regression tree": lambda: trees.fit_tree(X, YR, max_depth=3),
    "forest": lambda: trees.fit_random_forest(X, Y3, 4, max_depth=3),
    "adaboost": lambda: trees.fit_adaboost(X, Y3, 4, max_depth=2),
    "softmax boosting": lambda: trees.fit_gradient_boosting(X, Y3, 3, max_depth=2),
    "newton boosting": lambda: trees.fit_gradient_boosting(X, YR, 3, max_depth=2, second_order=True),
}


def assert_same_model(a, b):
    assert type(a) is type(b)
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb  # same static fields (kind, criterion, n_features, loss, learning_rate, ...)
    for u, v in zip(la, lb, strict=True):
        assert u.dtype == v.dtype and u.shape == v.shape
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for name, fit in MODELS.items():
        model = fit()
        path = folder / f"{name.replace(' ', '_')}.npz"
        trees.save_model(path, model)
        out[name] = (model, path)
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_is_bit_for_bit(saved, name):
    model, path = saved[name]
    loaded = trees.load_model(path)
    assert_same_model(model, loaded)
    np.testing.assert_array_equal(np.asarray(trees.predict(loaded, X)), np.asarray(trees.predict(model, X)))
    if name in ("tree", "forest", "adaboost", "softmax boosting"):
        np.testing.assert_array_equal(np.asarray(trees.predict_proba(loaded, X)),
                                      np.asarray(trees.predict_proba(model, X)))


def test_the_file_is_a_plain_npz_with_a_documented_json_header(saved):
    model, path = saved["forest"]
    with np.load(path, allow_pickle=False) as npz:  # no pickle anywhere
        header = json.loads(npz["__header__"].tobytes())
        names = set(npz.files)
    assert header["format"] == "mlwork.trees.model" and header["version"] == 1
    assert header["mlwork_version"] and header["model"]["kind"] == "Forest"
    assert header["model"]["tree"] == {"kind": "classification", "criterion": "gini", "n_features": 4}
    assert set(header["arrays"]) == names - {"__header__"}
    assert header["arrays"]["model.trees.feature"] == {"dtype": "<i4", "shape": [4, 7]}
    assert len(header["sha256"]) == 64


@pytest.mark.parametrize("estimator, y", [
    (sk.RandomForestClassifier(n_estimators=3, max_depth=2, oob_score=True, random_state=0),
     np.array(["a", "b", "c"])[Y3]),
    (sk.GradientBoostingRegressor(n_estimators=3, max_depth=2), YR),
    (sk.AdaBoostClassifier(n_estimators=3), Y),
    (sk.DecisionTreeClassifier(max_depth=3, max_features=1 / 3, random_state=1), Y3),
], ids=lambda v: type(v).__name__ if hasattr(v, "get_params") else "")
def test_sklearn_estimators_round_trip(tmp_path, estimator, y):
    est = estimator.fit(X, y)
    path = trees.save_model(tmp_path / "est.npz", est)
    loaded = trees.load_model(path)
    assert type(loaded) is type(est) and loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    np.testing.assert_array_equal(loaded.feature_importances_, est.feature_importances_)
    for name in ("classes_", "n_features_in_", "oob_score_", "estimator_weights_"):
        if hasattr(est, name):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(est, name))


def test_a_callable_loss_cannot_be_saved(tmp_path):
    model = trees.fit_gradient_boosting(X, YR, 2, max_depth=1, loss=lambda y, f: 0.5 * (y - f) ** 2)
    with pytest.raises(ValueError, match=r"^model.loss must be a loss name .*; got the callable <lambda>: a callable "
                                         r"boosting loss is code, not data, and cannot be saved$"):
        trees.save_model(tmp_path / "m.npz", model)
    assert not os.listdir(tmp_path)  # nothing written, not even a temporary file


def test_unsupported_objects_are_refused(tmp_path):
    with pytest.raises(ValueError, match="^model must be a Tree, Forest, AdaBoost, GradientBoosting"):
        trees.save_model(tmp_path / "m.npz", {"feature": np.zeros(3)})
    with pytest.raises(ValueError, match="unfitted RandomForestClassifier"):
        trees.save_model(tmp_path / "m.npz", sk.RandomForestClassifier())
    est = sk.DecisionTreeClassifier(max_depth=2, random_state=np.random.RandomState(0)).fit(X, Y)
    with pytest.raises(ValueError, match="DecisionTreeClassifier.random_state must be None, a bool, a number or"):
        trees.save_model(tmp_path / "m.npz", est)


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, saved):
    model, old = saved["tree"]
    path = tmp_path / "m.npz"
    path.write_bytes(old.read_bytes())

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        trees.save_model(path, saved["forest"][0])
    assert os.listdir(tmp_path) == ["m.npz"] and path.read_bytes() == old.read_bytes()


def refused(path, match):
    with pytest.raises(ValueError, match=match) as info:
        trees.load_model(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"model file {path} must be ")
    return message


def rewrite(path, out, header_edit=None, array_edit=None):
    """A copy of a model file with its header and/or arrays edited (the header's checksum kept)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop("__header__").tobytes())
    if header_edit:
        header_edit(header)
    if array_edit:
        array_edit(arrays)
    np.savez(out, __header__=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    return out


def test_truncated_and_damaged_files_are_refused(tmp_path, saved):
    _, path = saved["forest"]
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    refused(truncated, "an .npz archive .*; got a file NumPy cannot open as one")
    # One byte of an array's data flipped inside the zip: the zip CRC (or the SHA-256) catches it.
    damaged = tmp_path / "damaged.npz"
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("model.trees.threshold.npy")
    raw = bytearray(data)
    name_len = int.from_bytes(data[info.header_offset + 26: info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28: info.header_offset + 30], "little")
    last = info.header_offset + 30 + name_len + extra_len + info.compress_size - 1  # the last threshold byte
    raw[last] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    refused(damaged, "intact .npz archive|SHA-256")


def test_changed_arrays_fail_the_checksum(tmp_path, saved):
    _, path = saved["tree"]

    def move_threshold(arrays):
        arrays["model.trees.threshold"] = arrays["model.trees.threshold"] + np.float32(1)

    refused(rewrite(path, tmp_path / "m.npz", array_edit=move_threshold),
            "arrays matching the header's SHA-256; got a different checksum")


def test_foreign_files_are_refused(tmp_path, saved):
    text = tmp_path / "model.npz"
    text.write_text("not a model")
    refused(text, "an .npz archive")
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    refused(tmp_path / "other.npz", r"an mlwork tree model .*; got an .npz without one \(entries: weights\)")
    np.save(tmp_path / "single.npy", np.ones(3))
    refused(tmp_path / "single.npy", "got a single .npy array")
    _, path = saved["tree"]
    refused(rewrite(path, tmp_path / "fmt.npz", lambda h: h.update(format="xgboost.json")),
            "of format 'mlwork.trees.model'; got format 'xgboost.json'")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        trees.load_model(tmp_path / "missing.npz")


def test_other_format_versions_are_refused(tmp_path, saved):
    _, path = saved["tree"]
    refused(rewrite(path, tmp_path / "v2.npz", lambda h: h.update(version=2)),
            r"format version 1 .*; got version 2 \(written by a newer mlwork: upgrade to read it\)")
    refused(rewrite(path, tmp_path / "v0.npz", lambda h: h.update(version=0)), "got version 0$")


def test_arrays_that_do_not_form_a_model_are_refused(tmp_path, saved):
    _, path = saved["tree"]

    def set_header(name, dtype, shape):
        return lambda h: h["arrays"].__setitem__(name, {"dtype": dtype, "shape": shape})

    def bad_feature(arrays):
        arrays["model.trees.feature"] = np.full_like(arrays["model.trees.feature"], 9)

    out = tmp_path / "bad.npz"
    rewrite(path, out, array_edit=bad_feature)
    with np.load(out) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "__header__"}
    rewrite(out, out, lambda h: h.update(sha256=modelfile._digest(arrays)))
    refused(out, r"split features in \[-1, 3\] \(n_features=4\); got values in \[9, 9\]")
    refused(rewrite(path, tmp_path / "kind.npz", lambda h: h["model"].update(kind="Pickle")), "got kind 'Pickle'")
    refused(rewrite(path, tmp_path / "hdr.npz", set_header("model.trees.feature", "<i8", [7])),
            "array model.trees.feature as its header describes it")
