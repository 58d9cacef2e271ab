"""Any data set as arrays: train (and optional validation and test) splits of any per-example shape.

:func:`from_arrays` checks NumPy arrays and returns an :class:`ArrayDataset`; :func:`load_npz`
reads one from an ``.npz`` file (``x_train``, ``y_train`` and optionally ``x_val``, ``y_val``,
``x_test``, ``y_test``, ``class_names``). The MNIST family is one source of such data
(:func:`as_arrays` of a :class:`~mlwork.data.Dataset`).

What the inputs' dtype means (the trainer keeps them in that dtype on the device and prepares
each batch there, :func:`mlwork.data.preprocess`):

* ``uint8``: images, normalised as :math:`(x / 255 - \\mu) / \\sigma` with the training pixels'
  mean and standard deviation (two scalars);
* floating: features, standardised as :math:`(x - \\mu) / \\sigma` with the training set's
  per-feature mean and standard deviation (arrays of the per-example shape; a constant feature
  gets :math:`\\sigma = 1`), recorded so prediction applies the same;
* other integers: tokens, passed to the model as they are (int32).

What the targets' kind means (``target=``, inferred when omitted):

* ``"classes"``: integer class labels ``(N,)`` (inferred from a 1-D integer array), any number of
  classes (at least 2), optional class names;
* ``"values"``: float values of any trailing shape, ``(N,)`` or ``(N, *target_shape)`` — a
  regression (inferred from a floating array);
* ``"multilabel"``: multi-hot labels ``(N, C)`` of 0 and 1 (inferred from a boolean array).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from mlwork.data.idx import DataError

#: The kinds of targets (see the module docstring).
TARGETS = ("classes", "values", "multilabel")
#: The kinds of inputs, named after the dtype that selects them.
INPUT_KINDS = ("images", "features", "tokens")
#: The keys an ``.npz`` file may hold (:func:`load_npz`).
NPZ_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "class_names")


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
    """A checked data set of arrays (build it with :func:`from_arrays` or :func:`load_npz`).

    Attributes:
      x_train: ``(N, *input_shape)``: uint8 images, float32 features or int32 tokens.
      y_train: ``(N,)`` int32 class labels, ``(N, *target_shape)`` float32 values, or ``(N, C)``
        float32 multi-hot labels.
      x_val: the validation inputs, or ``None`` (the trainer then carves a seeded validation split
        off the training split).
      y_val: the validation targets, or ``None``.
      x_test: the test inputs, or ``None`` (the trainer then reports the validation split's
        figures, and says so).
      y_test: the test targets, or ``None``.
      target: one of :data:`TARGETS`.
      class_names: one name per class (``"classes"`` and ``"multilabel"``), else ``None``.
      mean: the input normalisation's mean: a scalar for images, a float32 array of
        ``input_shape`` for features, ``None`` for tokens.
      std: its standard deviation, likewise.
      name: a short name for titles and ``config.json``.
      source: where the arrays came from (``"memory"``, ``"npz:<path>"``, ``"idx:..."``).
      notice: a message to show the user, or ``""``.

    Example:
      >>> import numpy as np
      >>> from mlwork.data import from_arrays
      >>> x, y = np.arange(12.0).reshape(6, 2), np.array([0, 1, 2, 0, 1, 2])
      >>> ds = from_arrays(x, y)
      >>> ds.target, ds.input_kind, ds.num_classes, ds.output_size, ds.class_names
      ('classes', 'features', 3, 3, ('0', '1', '2'))
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    target: str
    class_names: tuple[str, ...] | None
    mean: Any
    std: Any
    name: str = "arrays"
    source: str = "memory"
    notice: str = ""

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's shape, e.g. ``(8, 8)`` or ``(10,)``."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def input_kind(self) -> str:
        """``"images"`` (uint8), ``"features"`` (floating) or ``"tokens"`` (other integers)."""
        return input_kind(self.x_train.dtype)

    @property
    def target_shape(self) -> tuple[int, ...]:
        """The shape of one target (``()`` for class labels, the trailing shape of values, ``(C,)`` for multi-hot)."""
        return tuple(int(d) for d in self.y_train.shape[1:])

    @property
    def num_classes(self) -> int | None:
        """The number of classes (``"classes"``, ``"multilabel"``), else ``None``."""
        return None if self.class_names is None else len(self.class_names)

    @property
    def output_size(self) -> int:
        """How many outputs the model has per example (the classes, or the values per target; at least 1)."""
        return self.num_classes if self.num_classes is not None else max(1, math.prod(self.target_shape))

    @property
    def mean_std(self) -> tuple[Any, Any]:
        """``(mean, std)``, the input normalisation (see the class docstring)."""
        return self.mean, self.std

    @property
    def target_mean(self) -> np.ndarray:
        """The training targets' mean per output, float64 ``(output_size,)`` (values only; zeros otherwise):
        the shift that keeps the R² sums well conditioned."""
        if self.target != "values":
            return np.zeros(self.output_size)
        return self.y_train.reshape(len(self.y_train), -1).astype(np.float64).mean(axis=0)

    @property
    def target_std(self) -> np.ndarray:
        """The training targets' standard deviation per output, float64 ``(output_size,)`` (values
        only, 1 where a target is constant; ones otherwise): the trainer learns standardised targets."""
        if self.target != "values":
            return np.ones(self.output_size)
        std = self.y_train.reshape(len(self.y_train), -1).astype(np.float64).std(axis=0)
        return np.where(std > 0, std, 1.0)


def input_kind(dtype: Any) -> str:
    """What an input dtype means: ``"images"`` for uint8, ``"features"`` for floating, ``"tokens"`` for other integers.

    Args:
      dtype: a NumPy dtype (or anything ``np.dtype`` takes).

    Returns:
      One of :data:`INPUT_KINDS`.

    Raises:
      DataError: a boolean, complex, string or object dtype.

    Example:
      >>> import numpy as np
      >>> from mlwork.data import input_kind
      >>> input_kind(np.uint8), input_kind(np.float64), input_kind(np.int64)
      ('images', 'features', 'tokens')
    """
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return "images"
    if np.issubdtype(dtype, np.floating):
        return "features"
    if np.issubdtype(dtype, np.integer):
        return "tokens"
    raise DataError(f"inputs must be uint8 images, float features or integer tokens; got dtype {dtype}")


def _array(value: Any, name: str) -> np.ndarray:
    if value is None:
        raise DataError(f"{name} must be an array; got None")
    try:
        arr = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - ragged lists and the like
        raise DataError(f"{name} must be an array; got {type(value).__name__} ({e})") from None
    if arr.dtype == object:
        raise DataError(f"{name} must be a numeric array; got dtype object (ragged or mixed values?)")
    return arr


def _check_x(x: np.ndarray, name: str, shape: tuple[int, ...] | None, dtype: np.dtype | None) -> np.ndarray:
    if x.ndim < 2:
        raise DataError(f"{name} must have shape (N, *input_shape), at least 2 axes; got shape {x.shape}")
    if 0 in x.shape[1:]:
        raise DataError(f"{name} must hold at least one value per example; got per-example shape {x.shape[1:]}")
    if x.dtype == np.bool_ or not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)
                                   or np.issubdtype(x.dtype, np.integer)):
        raise DataError(f"{name} must be uint8 images, float features or integer tokens; got dtype {x.dtype}")
    kind = input_kind(x.dtype)
    if shape is not None and tuple(x.shape[1:]) != shape:
        raise DataError(f"{name} must have per-example shape {shape} like x_train; got {tuple(x.shape[1:])}")
    if dtype is not None and input_kind(x.dtype) != input_kind(dtype):
        raise DataError(f"{name} must be {input_kind(dtype)} like x_train (dtype {dtype}); got dtype {x.dtype}")
    if kind == "features":
        return _finite_float32(x, name)
    if kind == "tokens":
        if x.size and (x.min() < 0 or x.max() > np.iinfo(np.int32).max):
            raise DataError(f"{name} must hold tokens in [0, 2**31); got [{x.min()}, {x.max()}]")
        return x.astype(np.int32)
    return x


def _infer_target(y: np.ndarray) -> str:
    if y.dtype == np.bool_:
        return "multilabel"
    if np.issubdtype(y.dtype, np.floating):
        return "values"
    if np.issubdtype(y.dtype, np.integer):
        if y.ndim == 1:
            return "classes"
        raise DataError(f"y_train of integers with shape {y.shape} is ambiguous; pass target='multilabel' "
                        "(multi-hot labels; --task classification on the command line) or target='values' "
                        "(--task regression)")
    raise DataError(f"y_train must be integer class labels, float values or boolean multi-hot labels; got dtype "
                    f"{y.dtype}")


def _check_y(y: np.ndarray, name: str, target: str, n: int, x_name: str, shape: tuple[int, ...] | None
             ) -> np.ndarray:
    if y.ndim < 1 or len(y) != n:
        raise DataError(f"{name} must have one target per example of {x_name} ({n}); got shape {y.shape}")
    if shape is not None and tuple(y.shape[1:]) != shape:
        raise DataError(f"{name} must have per-example shape {shape} like y_train; got {tuple(y.shape[1:])}")
    if 0 in y.shape[1:]:
        raise DataError(f"{name} must hold at least one target value per example; got per-example shape "
                        f"{y.shape[1:]}")
    if target == "classes":
        if y.ndim != 1:
            raise DataError(f"{name} must hold one integer class label per example, shape (N,); got {y.shape}")
        if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
            raise DataError(f"{name} must hold integer class labels; got dtype {y.dtype}")
        if y.size and y.min() < 0:
            raise DataError(f"{name} must hold class labels >= 0; got {y.min()}")
        return y.astype(np.int32)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise DataError(f"{name} must be numeric; got dtype {y.dtype}")
    y = _finite_float32(y, name)
    if target == "multilabel":
        if y.ndim != 2:
            raise DataError(f"{name} must hold multi-hot labels of shape (N, classes); got {y.shape}")
        if not np.isin(y, (0.0, 1.0)).all():
            raise DataError(f"{name} must hold multi-hot labels (0 or 1); got other values")
    return y


def _finite_float32(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` as float32, refusing NaN, infinity and values beyond float32's range (which the
    cast would turn into infinity), naming the first row that holds one."""
    with np.errstate(over="ignore", invalid="ignore"):
        cast = a.astype(np.float32)
    bad = ~np.isfinite(cast)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        what = "NaN or infinity" if not np.isfinite(np.asarray(a[row], np.float64)).all() else \
            f"a value beyond float32's range (|v| > {float(np.finfo(np.float32).max):.3g})"
        raise DataError(f"{name} must hold finite values; got {what} in row {row}")
    return cast


def _statistics(x: np.ndarray) -> tuple[Any, Any]:
    kind = input_kind(x.dtype)
    if kind == "images":
        pixels = x.astype(np.float64) / 255.0
        std = float(pixels.std())
        return float(pixels.mean()), std if std > 0 else 1.0
    if kind == "features":
        mean = x.astype(np.float64).mean(axis=0)
        std = x.astype(np.float64).std(axis=0)
        return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)
    return None, None


def from_arrays(x_train: Any, y_train: Any, x_val: Any = None, y_val: Any = None, x_test: Any = None,
                y_test: Any = None, *, target: str | None = None, class_names: Any = None, name: str = "arrays",
                source: str = "memory", mean_std: tuple[Any, Any] | None = None, notice: str = "") -> ArrayDataset:
    """A checked :class:`ArrayDataset` from NumPy arrays (see the module docstring for what dtypes mean).

    Args:
      x_train: ``(N, *input_shape)`` inputs: uint8 images, floating features or integer tokens.
      y_train: ``(N,)`` integer class labels, ``(N, ...)`` float values, or ``(N, C)`` multi-hot labels.
      x_val, y_val: an optional validation split (both or neither).
      x_test, y_test: an optional test split (both or neither).
      target: one of :data:`TARGETS`; ``None``: inferred from ``y_train``'s dtype and shape.
      class_names: one name per class; default ``"0"``, ``"1"``, ... (classes and multi-hot only).
      name: a short name for titles and ``config.json``.
      source: where the arrays came from.
      mean_std: the input normalisation to use instead of the training statistics (e.g. MNIST's
        published pixel mean and standard deviation).
      notice: a message for the user (e.g. that a sample stands in for the full set).

    Returns:
      The :class:`ArrayDataset`, inputs and targets cast to the trainer's dtypes (float32 features,
      int32 tokens and labels, float32 values).

    Raises:
      DataError: (a ``ValueError``) a one-line message naming the argument: mismatched lengths or
        shapes, NaN or infinite features or values, fewer than 2 classes in ``y_train``, a label
        beyond the classes, labels that are not class indices (more classes than training
        examples, without ``class_names``), a split given without its pair, an unknown ``target``.

    Example:
      >>> import numpy as np
      >>> from mlwork.data import DataError, from_arrays
      >>> ds = from_arrays(np.zeros((4, 3), np.float32), np.array([[1.0], [2.0], [3.0], [4.0]]))
      >>> ds.target, ds.target_shape, ds.output_size
      ('values', (1,), 1)
      >>> try:
      ...     from_arrays(np.zeros((3, 2)), np.array([1, 1, 1]))
      ... except DataError as e:
      ...     print(e)
      y_train must hold at least 2 classes; got 1 (class 1)
    """
    if target is not None and target not in TARGETS:
        raise DataError(f"target must be one of {', '.join(TARGETS)}; got {target!r}")
    for a, b in (("x_val", "y_val"), ("x_test", "y_test")):
        if (locals()[a] is None) != (locals()[b] is None):
            raise DataError(f"{a} and {b} must be given together; got only {a if locals()[a] is not None else b}")
    x_train = _check_x(_array(x_train, "x_train"), "x_train", None, None)
    y_raw = _array(y_train, "y_train")
    target = target or _infer_target(y_raw)
    y_train = _check_y(y_raw, "y_train", target, len(x_train), "x_train", None)
    if len(x_train) < 2:
        raise DataError(f"x_train must hold at least 2 examples; got {len(x_train)}")
    splits = {}
    for split, xs, ys in (("val", x_val, y_val), ("test", x_test, y_test)):
        if xs is None:
            splits[split] = (None, None)
            continue
        x = _check_x(_array(xs, f"x_{split}"), f"x_{split}", tuple(x_train.shape[1:]), x_train.dtype)
        y = _check_y(_array(ys, f"y_{split}"), f"y_{split}", target, len(x), f"x_{split}", tuple(y_train.shape[1:]))
        if len(x) == 0:
            raise DataError(f"x_{split} must hold at least 1 example; got 0")
        splits[split] = (x, y)
    names = None
    if target == "classes":
        present = np.unique(y_train)
        if len(present) < 2:
            raise DataError(f"y_train must hold at least 2 classes; got {len(present)} (class {present[0]})")
        n_classes = (len(_class_names(class_names, 0, check=False)) if class_names is not None
                     else int(y_train.max()) + 1)
        if class_names is None and n_classes > len(y_train):  # labels that are not indices 0..K-1
            raise DataError(f"y_train must hold class indices 0..K-1; its largest label {n_classes - 1} makes "
                            f"{n_classes} classes for {len(y_train)} examples (map the labels to indices, e.g. "
                            "np.unique(y, return_inverse=True), or pass class_names)")
        for label, y in [("y_train", y_train)] + [(f"y_{k}", s[1]) for k, s in splits.items() if s[1] is not None]:
            if int(y.max()) >= n_classes:
                raise DataError(f"{label} must hold class labels below {n_classes} (the classes of "
                                f"{'class_names' if class_names is not None else 'y_train'}); got {int(y.max())}")
        names = _class_names(class_names, n_classes)
    elif target == "multilabel":
        names = _class_names(class_names, y_train.shape[1])
    elif class_names is not None:
        raise DataError("class_names must be None for target 'values' (a regression); got names")
    if mean_std is None:
        mean_std = _statistics(x_train)
    return ArrayDataset(x_train, y_train, *splits["val"], *splits["test"], target=target, class_names=names,
                        mean=mean_std[0], std=mean_std[1], name=str(name), source=str(source), notice=notice)


def _class_names(names: Any, n: int, check: bool = True) -> tuple[str, ...]:
    if names is None:
        return tuple(str(i) for i in range(n))
    names = tuple(str(s) for s in np.asarray(names).reshape(-1).tolist())
    if check and len(names) != n:
        raise DataError(f"class_names must name all {n} classes; got {len(names)} names")
    return names


def load_npz(path: str | Path, *, target: str | None = None, name: str | None = None) -> ArrayDataset:
    """An :class:`ArrayDataset` from an ``.npz`` file (``np.savez``), checked by :func:`from_arrays`.

    The file holds ``x_train`` and ``y_train``, and optionally ``x_val``/``y_val``,
    ``x_test``/``y_test`` and ``class_names`` (a string array). Pickled (object) arrays are
    refused: loading one could run code.

    Args:
      path: the file.
      target: one of :data:`TARGETS`; ``None``: inferred from ``y_train``.
      name: the data set's name; default the file's stem.

    Returns:
      The :class:`ArrayDataset`, its ``source`` ``"npz:<path>"``.

    Raises:
      DataError: the file is missing or not an ``.npz`` archive, holds pickled arrays, lacks
        ``x_train`` or ``y_train``, holds an unknown key, or fails :func:`from_arrays`'s checks.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> import numpy as np
      >>> from mlwork.data import load_npz
      >>> tmp = tempfile.TemporaryDirectory()
      >>> path = Path(tmp.name) / "toy.npz"
      >>> np.savez(path, x_train=np.random.default_rng(0).normal(size=(20, 3)), y_train=np.arange(20) % 2,
      ...          class_names=np.array(["no", "yes"]))
      >>> ds = load_npz(path)
      >>> ds.name, ds.target, ds.class_names, ds.x_val is None
      ('toy', 'classes', ('no', 'yes'), True)
      >>> tmp.cleanup()
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    import zipfile

    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY" and not zipfile.is_zipfile(path):  # NumPy would try it as a pickle
        raise DataError(f"{path} is not an .npz archive (np.savez writes a zip file; this is neither a zip nor an "
                        ".npy file)")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - a corrupt or foreign file
        raise DataError(f"cannot read {path} as an .npz archive: {str(e).splitlines()[0] if str(e) else e}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path} must be an .npz archive (np.savez); got a single .npy array")
    with archive:
        keys = set(archive.files)
        unknown = sorted(keys - set(NPZ_KEYS))
        if unknown:
            raise DataError(f"{path} holds unknown keys {unknown}; expected {', '.join(NPZ_KEYS)}")
        missing = [k for k in ("x_train", "y_train") if k not in keys]
        if missing:
            raise DataError(f"{path} must hold x_train and y_train; missing {', '.join(missing)}")
        arrays = {}
        for key in sorted(keys):
            try:
                arrays[key] = archive[key]
            except ValueError as e:
                if "allow_pickle" in str(e):
                    raise DataError(f"{path}: {key} is a pickled (object) array, refused (it could run code); "
                                    "save plain numeric arrays") from None
                raise DataError(f"{path}: {key} cannot be read: {e}") from None
            except Exception as e:  # noqa: BLE001 - a truncated member
                raise DataError(f"{path}: {key} cannot be read: {str(e).splitlines()[0] if str(e) else e}") from None
    names = arrays.pop("class_names", None)
    if names is not None and (target or _infer_target(arrays["y_train"])) == "values":
        raise DataError(f"{path} holds class_names, but its targets are read as values (a regression); remove "
                        "class_names from the file or train a classification")
    return from_arrays(**arrays, target=target, class_names=names, name=name or path.stem,
                       source=f"npz:{path}")


def as_arrays(dataset: Any) -> ArrayDataset:
    """Any data set the trainer takes, as an :class:`ArrayDataset`: itself, or a MNIST-family
    :class:`~mlwork.data.Dataset` (its ten classes and its normalisation, no validation split:
    the trainer carves the seeded one).

    Args:
      dataset: an :class:`ArrayDataset` or a :class:`~mlwork.data.Dataset`.

    Returns:
      The :class:`ArrayDataset`.

    Raises:
      DataError: ``dataset`` is neither.

    Example:
      >>> import numpy as np
      >>> from mlwork.data import Dataset, as_arrays
      >>> images, labels = np.zeros((4, 28, 28), np.uint8), np.array([0, 1, 2, 3], np.uint8)
      >>> ds = as_arrays(Dataset("mnist", images, labels, images[:2], labels[:2], source="memory"))
      >>> ds.name, ds.num_classes, ds.mean_std, ds.y_train.dtype.name
      ('mnist', 10, (0.1307, 0.3081), 'int32')
    """
    if isinstance(dataset, ArrayDataset):
        return dataset
    from mlwork.data.sources import Dataset

    if not isinstance(dataset, Dataset):
        raise DataError(f"dataset must be an ArrayDataset or a Dataset; got {type(dataset).__name__}")
    # No from_arrays: an MNIST-family data set is already checked (and may hold a single class in a toy test).
    return ArrayDataset(np.asarray(dataset.train_images), np.asarray(dataset.train_labels).astype(np.int32), None,
                        None, np.asarray(dataset.test_images), np.asarray(dataset.test_labels).astype(np.int32),
                        target="classes", class_names=tuple(dataset.class_names), mean=dataset.mean_std[0],
                        std=dataset.mean_std[1], name=dataset.name, source=dataset.source, notice=dataset.notice)
