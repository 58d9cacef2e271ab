"""Any arrays as a data set: dtypes decide the input kind, targets' kind inferred, one-line refusals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlwork.data import DataError, Dataset, as_arrays, from_arrays, load_npz


def _xy(n=12, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -2.0], np.arange(n) % 3


def test_features_are_standardised_with_training_statistics():
    x, y = _xy()
    ds = from_arrays(x, y, x[:4] + 100.0, y[:4])
    assert ds.input_kind == "features" and ds.x_train.dtype == np.float32
    np.testing.assert_allclose(ds.mean, x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(ds.std, x.std(0), rtol=1e-6)  # the training split's, not the shifted val's
    assert ds.mean.shape == ds.input_shape == (3,)


def test_a_constant_feature_gets_unit_scale():
    x = np.zeros((5, 2))
    x[:, 0] = np.arange(5)
    ds = from_arrays(x, np.arange(5) % 2)
    assert ds.std[1] == 1.0 and ds.std[0] > 0


def test_uint8_images_keep_their_dtype_and_get_scalar_statistics():
    x = np.random.default_rng(0).integers(0, 256, size=(10, 8, 8)).astype(np.uint8)
    ds = from_arrays(x, np.arange(10) % 4, class_names=list("abcd"))
    assert ds.input_kind == "images" and ds.x_train.dtype == np.uint8
    assert ds.mean == pytest.approx(x.mean() / 255) and ds.std == pytest.approx(x.std() / 255)
    assert ds.class_names == ("a", "b", "c", "d") and ds.output_size == 4


def test_integer_tokens_pass_as_int32_without_statistics():
    ds = from_arrays(np.arange(20, dtype=np.int64).reshape(10, 2), np.arange(10) % 2)
    assert ds.input_kind == "tokens" and ds.x_train.dtype == np.int32 and ds.mean is None


def test_targets_kind_is_inferred():
    x, _ = _xy()
    values = from_arrays(x, np.linspace(0, 1, 24).reshape(12, 2))
    assert (values.target, values.target_shape, values.output_size, values.num_classes) == ("values", (2,), 2, None)
    np.testing.assert_allclose(values.target_mean, np.linspace(0, 1, 24).reshape(12, 2).mean(0))
    multi = from_arrays(x, np.eye(4, dtype=bool)[np.arange(12) % 4])
    assert (multi.target, multi.output_size, multi.class_names[-1]) == ("multilabel", 4, "3")
    assert from_arrays(x, np.arange(12) % 5).num_classes == 5


@pytest.mark.parametrize("kwargs, message", [
    ({"y_train": np.ones(12, int)}, "y_train must hold at least 2 classes; got 1"),
    ({"y_train": np.arange(11) % 2}, "y_train must have one target per example of x_train (12)"),
    ({"x_val": np.zeros((2, 3))}, "x_val and y_val must be given together"),
    ({"x_test": np.zeros((2, 4)), "y_test": np.zeros(2, int)}, "x_test must have per-example shape (3,)"),
    ({"x_test": np.zeros((2, 3)), "y_test": np.array([0, 7])}, "y_test must hold class labels below 3"),
    ({"class_names": ["a", "b"]}, "y_train must hold class labels below 2"),
    ({"target": "ordinal"}, "target must be one of classes, values, multilabel; got 'ordinal'"),
    ({"y_train": np.arange(24).reshape(12, 2)}, "ambiguous"),
    ({"y_train": None}, "y_train must be an array; got None"),
    ({"x_train": np.zeros((12, 3), complex)}, "x_train must be uint8 images, float features or integer tokens; "
                                              "got dtype complex128"),
    ({"x_train": np.full((12, 3), "a")}, "x_train must be uint8 images, float features or integer tokens; got "
                                         "dtype <U1"),
])
def test_bad_input_is_one_line_naming_the_argument(kwargs, message):
    x, y = _xy()
    args = {"x_train": x, "y_train": y, **kwargs}
    with pytest.raises(DataError) as err:
        from_arrays(**args)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_nan_features_are_refused_naming_the_row():
    x, y = _xy()
    x[5, 1] = np.nan
    with pytest.raises(DataError, match=r"^x_train must hold finite values; got NaN or infinity in row 5$"):
        from_arrays(x, y)


@settings(max_examples=40, deadline=None)
@given(row=st.integers(0, 11), col=st.integers(0, 2),
       value=st.one_of(st.floats(min_value=3.5e38, max_value=1e308), st.floats(min_value=-1e308, max_value=-3.5e38)))
def test_features_beyond_float32_are_refused_not_cast_to_infinity(row, col, value):
    """float64 features that float32 cannot hold would become +-inf on the cast (and NaN once
    standardised): refused naming the row, while the largest float32 passes unchanged."""
    x, y = _xy()
    x = x.astype(np.float64)
    x[row, col] = value
    with pytest.raises(DataError, match=rf"^x_train must hold finite values; got a value beyond float32's range "
                                        rf"\(\|v\| > 3.4e\+38\) in row {row}$"):
        from_arrays(x, y)
    x[row, col] = float(np.finfo(np.float32).max)
    assert from_arrays(x, y).x_train[row, col] == np.finfo(np.float32).max


def test_npz_round_trip_and_refusals(tmp_path):
    x, y = _xy()
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:3], y_test=y[:3], class_names=np.array(["r", "g", "b"]))
    ds = load_npz(path)
    assert ds.source == f"npz:{path}" and ds.class_names == ("r", "g", "b") and len(ds.x_test) == 3
    np.savez(tmp_path / "pickled.npz", x_train=np.array([{"a": 1}] * 12, dtype=object), y_train=y)
    with pytest.raises(DataError, match="pickled"):
        load_npz(tmp_path / "pickled.npz")
    np.savez(tmp_path / "typo.npz", X_train=x, y_train=y)
    with pytest.raises(DataError, match=r"unknown keys \['X_train'\]"):
        load_npz(tmp_path / "typo.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="is not an .npz archive") as refused:
        load_npz(tmp_path / "junk.npz")
    assert "pickle" not in str(refused.value)  # NumPy's own message would invite unpickling the file
    (tmp_path / "torn.npz").write_bytes((tmp_path / "typo.npz").read_bytes()[:40])  # a zip cut short
    with pytest.raises(DataError, match="torn.npz"):
        load_npz(tmp_path / "torn.npz")
    with pytest.raises(DataError, match="does not exist"):
        load_npz(tmp_path / "missing.npz")


def test_the_mnist_family_is_one_source_of_array_data():
    images, labels = np.full((4, 28, 28), 7, np.uint8), np.array([0, 1, 2, 3], np.uint8)
    ds = as_arrays(Dataset("fashion_mnist", images, labels, images[:2], labels[:2], source="memory"))
    assert ds.num_classes == 10 and ds.class_names[0] == "T-shirt/top" and ds.x_val is None
    assert ds.mean_std == Dataset("fashion_mnist", images, labels, images, labels, "m").mean_std
    assert as_arrays(ds) is ds
