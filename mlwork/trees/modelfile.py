r"""A model file for fitted tree models: arrays and a JSON header in one ``.npz``, never pickle.

:func:`save_model` writes a :class:`~mlwork.trees.Tree`, :class:`~mlwork.trees.Forest`,
:class:`~mlwork.trees.AdaBoost`, :class:`~mlwork.trees.GradientBoosting` or a fitted estimator of
:mod:`mlwork.trees.sklearn`; :func:`load_model` reads it back with nothing but NumPy's ``.npz``
reader (``allow_pickle=False``) and JSON, so a file is as safe to open as a CSV and does not
depend on the training code's state.

**Format** ``mlwork.trees.model``, version 1.1. The file is a standard NumPy ``.npz`` archive
(a zip of ``.npy`` arrays; :func:`numpy.load` opens it) holding

* ``__header__``: the UTF-8 bytes (a ``uint8`` array) of a JSON object with the keys
  ``format`` (``"mlwork.trees.model"``), ``version`` (1), ``minor_version`` (1; absent in
  files of version 1.0), ``mlwork_version`` (the writer's),
  ``model`` (the model's kind and its non-array settings, below), ``arrays`` (for each array
  name its ``dtype`` in NumPy's ``dtype.str`` spelling and its ``shape``) and ``sha256``;
* the arrays. A tree's are ``model.trees.<field>`` for the eight fields of
  :class:`~mlwork.trees.Tree` (``feature`` int32, ``missing_left`` bool, the others float32),
  plus, since 1.1 and only for trees with categorical splits, ``model.trees.categories``
  (uint32, the category bitsets, one more trailing axis of 8 words), with leading axes: none
  (a ``Tree``), ``(T,)`` (``Forest``, ``AdaBoost``) or ``(T, K)`` (``GradientBoosting``).
  Besides them ``model.oob_score`` ``()`` (``Forest``),
  ``model.alpha`` ``(T,)`` (``AdaBoost``), ``model.init`` ``(K,)`` (``GradientBoosting``, and
  for a fit with a validation set ``model.train_loss`` and ``model.validation_loss``
  ``(n_iter + 1,)``, :math:`n_{iter} \ge T`);
  an estimator's array attributes are ``estimator.<name>`` (e.g. ``estimator.classes_``).

``model`` holds ``kind`` (``"Tree"``, ``"Forest"``, ``"AdaBoost"``, ``"GradientBoosting"`` or
``"estimator"``), ``tree`` (the trees' ``kind``, ``criterion`` and ``n_features``), and per kind
``n_classes`` (AdaBoost), ``learning_rate`` and ``loss`` (GradientBoosting; a loss *name*), or for
an estimator its ``class``, its ``params`` (``get_params()``), its scalar fitted ``attributes``
and its ``model``.

``sha256`` is the SHA-256 of the arrays in the order of their sorted names, each contributing
``name``, ``dtype.str`` and the shape (UTF-8, NUL-separated) and then its C-order bytes.

:func:`load_model` refuses, with a one-line ``ValueError`` that names the path and what is
wrong, a file that is not an ``.npz``, is truncated or damaged (zip CRC, checksum), lacks the
header or comes from another program (format), has another major format version or a newer minor
one (files of 1.0 load unchanged), or whose arrays do not
form a valid model (names, dtypes, shapes, split features out of range). :func:`save_model`
writes to a temporary file beside ``path`` and renames it into place, so a crash never leaves a
half-written model at ``path``.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from mlwork.trees import _checks
from mlwork.trees._grow import CATEGORY_WORDS
from mlwork.trees.boosting import BOOSTING_LOSSES, AdaBoost, GradientBoosting
from mlwork.trees.ensemble import Forest
from mlwork.trees.tree import Tree

#: The format's name, the header's ``format``.
FORMAT = "mlwork.trees.model"
#: The version this mlwork writes and reads.
FORMAT_VERSION = 1
#: Its minor version: 1 added the optional category bitsets; this mlwork reads minor 0 and 1.
FORMAT_MINOR_VERSION = 1
HEADER = "__header__"

TREE_FIELDS = {"feature": "<i4", "threshold": "<f4", "missing_left": "|b1", "gain": "<f4",
               "impurity": "<f4", "weight": "<f4", "value": "<f4", "leaf_weight": "<f4"}
#: Tree arrays a file holds only when the model has them (name: dtype); since minor version 1.
OPTIONAL_TREE_FIELDS = {"categories": "<u4"}
TREE_KINDS = {"classification": ("gini", "entropy"), "regression": ("variance",),
              "boosting": ("variance", "newton")}
#: A ``GradientBoosting`` fit with a validation set also holds these ``(n_iter + 1,)`` float32 curves
#: (both or neither; written only when present, so other files are as before).
CURVES = ("train_loss", "validation_loss")
#: Leading (batch) axes of the trees of each model kind.
BATCH_AXES = {"Tree": 0, "Forest": 1, "AdaBoost": 1, "GradientBoosting": 2}


# ----------------------------------------------------------------------------- saving
def save_model(path, model) -> Path:
    r"""Save a fitted tree model to ``path`` in the versioned ``mlwork.trees.model`` format.

    One NumPy ``.npz`` archive of the model's arrays plus a JSON header (format name and
    version, model kind and settings, mlwork version, array names, dtypes and shapes, and a
    SHA-256 of the arrays); no pickle. The layout is documented in
    :mod:`mlwork.trees.modelfile`. The file is written under a temporary name in the same folder
    and renamed to ``path``, so ``path`` holds either the old file or the whole new one.

    Args:
      path: the file to write (a ``str`` or :class:`os.PathLike`; ``.npz`` is the customary
        suffix, none is added). Its folder must exist.
      model: a :class:`~mlwork.trees.Tree`, :class:`~mlwork.trees.Forest`,
        :class:`~mlwork.trees.AdaBoost` or :class:`~mlwork.trees.GradientBoosting` with a built-in
        loss, or a fitted estimator of :mod:`mlwork.trees.sklearn` whose parameters are plain
        values (``random_state`` an int or ``None``).

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    Raises:
      ValueError: another type of ``model``; a :class:`GradientBoosting` fit with a callable
        loss (a function is code, not data: refit with a loss name, or save ``trees`` and
        ``init`` yourself); an unfitted estimator, or one whose parameters or attributes are not
        plain values or arrays.

    Example:
      >>> import os, tempfile, numpy as np
      >>> from mlwork import trees
      >>> X, y = np.arange(6.0).reshape(6, 1), np.array([0, 0, 0, 1, 1, 1])
      >>> path = os.path.join(tempfile.mkdtemp(), "tree.npz")
      >>> tree = trees.fit_tree(X, y, max_depth=1)
      >>> trees.save_model(path, tree).name
      'tree.npz'
      >>> loaded = trees.load_model(path)
      >>> trees.predict(loaded, X).tolist(), float(loaded.threshold[0])
      ([0, 0, 0, 1, 1, 1], 2.5)
    """
    description, arrays = _describe(model)
    from mlwork import __version__

    header = {"format": FORMAT, "version": FORMAT_VERSION, "minor_version": FORMAT_MINOR_VERSION,
              "mlwork_version": __version__,
              "model": description,
              "arrays": {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in sorted(arrays.items())},
              "sha256": _digest(arrays)}
    blob = np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), np.uint8)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{HEADER: blob}, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _tree_static(tree: Tree) -> dict:
    return {"kind": tree.kind, "criterion": tree.criterion, "n_features": int(tree.n_features)}


def _describe(model) -> tuple[dict, dict[str, np.ndarray]]:
    """The header's ``model`` entry and the arrays of ``model``."""
    if type(model).__module__ == "mlwork.trees.sklearn":
        return _describe_estimator(model)
    if not isinstance(model, Tree | Forest | AdaBoost | GradientBoosting):
        raise ValueError(f"model must be a Tree, Forest, AdaBoost, GradientBoosting or a fitted estimator of "
                         f"mlwork.trees.sklearn; got {type(model).__name__}")
    trees = model if isinstance(model, Tree) else model.trees
    desc = {"kind": type(model).__name__, "tree": _tree_static(trees)}
    arrays = {f"model.trees.{f}": np.asarray(getattr(trees, f)) for f in TREE_FIELDS}
    for f in OPTIONAL_TREE_FIELDS:
        if getattr(trees, f) is not None:
            arrays[f"model.trees.{f}"] = np.asarray(getattr(trees, f))
    if isinstance(model, Forest):
        arrays["model.oob_score"] = np.asarray(model.oob_score)
    elif isinstance(model, AdaBoost):
        desc["n_classes"] = int(model.n_classes)
        arrays["model.alpha"] = np.asarray(model.alpha)
    elif isinstance(model, GradientBoosting):
        if not isinstance(model.loss, str):
            raise ValueError(f"model.loss must be a loss name ({', '.join(map(repr, sorted(BOOSTING_LOSSES)))}) "
                             f"to be saved; got the callable {getattr(model.loss, '__name__', repr(model.loss))}: a "
                             "callable boosting loss is code, not data, and cannot be saved")
        desc["learning_rate"] = float(model.learning_rate)
        desc["loss"] = model.loss
        arrays["model.init"] = np.asarray(model.init)
        for name in CURVES:
            if getattr(model, name) is not None:
                arrays[f"model.{name}"] = np.asarray(getattr(model, name))
    return desc, arrays


def _plain(value) -> bool:
    """None, a bool, a string or a real number (JSON writes NaN and ±inf as NaN and Infinity)."""
    return value is None or isinstance(value, bool | str | numbers.Real)


def _describe_estimator(est) -> tuple[dict, dict[str, np.ndarray]]:
    if not hasattr(est, "model_"):
        raise ValueError(f"model must be a fitted estimator; got an unfitted {type(est).__name__} (call fit first)")
    params = {}
    for name, value in est.get_params(deep=False).items():
        if not _plain(value):
            raise ValueError(f"{type(est).__name__}.{name} must be None, a bool, a number or a string to be "
                             f"saved; got {type(value).__name__}")
        params[name] = value.item() if isinstance(value, np.generic) else value
    model_desc, model_arrays = _describe(est.model_)
    attributes, arrays = {}, dict(model_arrays)
    for name, value in vars(est).items():
        if not name.endswith("_") or name.startswith("_") or name == "model_":
            continue
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                if not all(isinstance(v, str) for v in value.ravel()):
                    raise ValueError(f"{type(est).__name__}.{name} must hold numbers or strings to be saved; "
                                     "got Python objects")
                attributes[name] = {"array": True, "object": True}
                value = value.astype(str)
            else:
                attributes[name] = {"array": True, "object": False}
            arrays[f"estimator.{name}"] = value
        elif _plain(value):
            attributes[name] = {"value": value.item() if isinstance(value, np.generic) else value}
        else:
            raise ValueError(f"{type(est).__name__}.{name} must be an array or a plain value to be saved; "
                             f"got {type(value).__name__}")
    desc = {"kind": "estimator", "class": type(est).__name__, "params": params, "attributes": attributes,
            "model": model_desc}
    return desc, arrays


# ----------------------------------------------------------------------------- loading
class _Refused(Exception):
    """(expected, got) of a refused file; turned into the one-line ValueError naming the path."""


def _need(condition: bool, expected: str, got: Any) -> None:
    if not condition:
        raise _Refused(expected, got)


def load_model(path):
    r"""Load a model that :func:`save_model` wrote, checking everything before trusting it.

    Reads the ``.npz`` with ``allow_pickle=False``, then checks in order: the header (present,
    JSON, ``format == "mlwork.trees.model"``, ``version == 1``), the arrays against the header
    (names, dtypes, shapes, SHA-256) and against the model kind (the eight tree arrays with
    consistent heap shapes :math:`2^D - 1` internal and :math:`2^D` leaf slots, the kind's
    extra arrays, split features in :math:`[-1, d)`). The arrays come back as JAX arrays, so
    predictions equal those of the saved model bit for bit.

    Args:
      path: a file written by :func:`save_model` (``str`` or :class:`os.PathLike`).

    Returns:
      The model: a :class:`~mlwork.trees.Tree`, :class:`~mlwork.trees.Forest`,
      :class:`~mlwork.trees.AdaBoost`, :class:`~mlwork.trees.GradientBoosting`, or the fitted
      estimator of :mod:`mlwork.trees.sklearn` (its class, parameters and fitted attributes).

    Raises:
      FileNotFoundError: no file at ``path``.
      ValueError: one line, ``"model file <path> must be <what was expected>; got <what is
        there>"``: not an ``.npz`` archive, truncated or damaged, a foreign ``.npz`` (no
        header, another format), another format version, or arrays that do not match the header
        or do not form a valid model.

    Example:
      >>> import os, tempfile, numpy as np
      >>> from mlwork import trees
      >>> path = os.path.join(tempfile.mkdtemp(), "not-a-model.npz")
      >>> np.savez(path, weights=np.zeros(3))
      >>> trees.load_model(path)  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      ValueError: model file .../not-a-model.npz must be an mlwork tree model (...); got an .npz without one (...)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        return _load(path)
    except _Refused as e:
        expected, got = e.args
        raise ValueError(f"model file {path} must be {expected}; got {got}") from None


def _load(path: Path):
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any reader failure is a damaged or foreign file
        raise _Refused("an .npz archive written by mlwork.trees.save_model",
                       f"a file NumPy cannot open as one ({type(e).__name__}: {e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise _Refused("an .npz archive written by mlwork.trees.save_model", "a single .npy array")
    with npz:
        names = set(npz.files)
        _need(HEADER in names, f"an mlwork tree model (an .npz with a {HEADER!r} entry)",
              f"an .npz without one (entries: {', '.join(sorted(names)) or 'none'})")
        try:
            arrays = {name: npz[name] for name in names}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
            raise _Refused("an intact .npz archive", f"a damaged or truncated one ({type(e).__name__}: {e})") from None
    raw = arrays.pop(HEADER)
    try:
        _need(raw.dtype == np.uint8 and raw.ndim == 1, "a header of UTF-8 bytes", f"a {raw.dtype} array")
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _Refused("a JSON header", f"unreadable bytes ({e})") from None
    _need(isinstance(header, dict), "a JSON object as header", type(header).__name__)
    _need(header.get("format") == FORMAT, f"of format {FORMAT!r}", f"format {header.get('format')!r}")
    version = header.get("version")
    _need(version == FORMAT_VERSION, f"format version {FORMAT_VERSION} (what this mlwork reads)",
          f"version {version!r}" + (" (written by a newer mlwork: upgrade to read it)"
                                    if isinstance(version, int) and version > FORMAT_VERSION else ""))
    minor = header.get("minor_version", 0)
    _need(isinstance(minor, int) and not isinstance(minor, bool) and 0 <= minor <= FORMAT_MINOR_VERSION,
          f"format minor version 0 to {FORMAT_MINOR_VERSION} (what this mlwork reads)",
          f"minor version {minor!r}" + (" (written by a newer mlwork: upgrade to read it)"
                                        if isinstance(minor, int) and minor > FORMAT_MINOR_VERSION else ""))
    if minor == 0:
        _need(not any(f"model.trees.{f}" in arrays for f in OPTIONAL_TREE_FIELDS),
              "no arrays newer than its version 1.0", "model.trees.categories")
    listed = header.get("arrays")
    _need(isinstance(listed, dict) and set(listed) == set(arrays), "the arrays its header lists",
          f"arrays {sorted(arrays)}")
    for name, a in arrays.items():
        meta = listed[name]
        _need(isinstance(meta, dict) and meta.get("dtype") == a.dtype.str and meta.get("shape") == list(a.shape),
              f"array {name} as its header describes it ({meta})", f"dtype {a.dtype.str}, shape {list(a.shape)}")
    _need(header.get("sha256") == _digest(arrays), "arrays matching the header's SHA-256",
          "a different checksum (the arrays were changed or damaged)")
    return _build(header.get("model"), arrays)


def _build(desc, arrays: dict[str, np.ndarray]):
    _need(isinstance(desc, dict), "a model description in its header", repr(desc))
    kind = desc.get("kind")
    if kind == "estimator":
        return _build_estimator(desc, arrays)
    _need(kind in BATCH_AXES, f"a model of kind {', '.join(BATCH_AXES)} or estimator", f"kind {kind!r}")
    extra = {"Tree": {}, "Forest": {"model.oob_score": "<f4"}, "AdaBoost": {"model.alpha": "<f4"},
             "GradientBoosting": {"model.init": "<f4"}}[kind]
    optional = {f"model.trees.{f}" for f in OPTIONAL_TREE_FIELDS} & set(arrays)
    expected = {f"model.trees.{f}" for f in TREE_FIELDS} | set(extra) | optional
    if kind == "GradientBoosting" and f"model.{CURVES[0]}" in arrays:  # a fit with a validation set
        expected |= {f"model.{name}" for name in CURVES}
    _need(set(arrays) == expected, f"the arrays of a {kind} ({', '.join(sorted(expected))})",
          f"{', '.join(sorted(arrays))}")
    tree = _build_trees(desc.get("tree"), arrays, BATCH_AXES[kind], kind)
    for name, dtype in extra.items():
        _need(arrays[name].dtype.str == dtype, f"{name} of dtype {dtype}", arrays[name].dtype.str)
    batch = tree.feature.shape[:-1]
    if kind == "Tree":
        return tree
    if kind == "Forest":
        _need(arrays["model.oob_score"].shape == (), "model.oob_score a scalar", arrays["model.oob_score"].shape)
        return Forest(trees=tree, oob_score=jnp.asarray(arrays["model.oob_score"]))
    if kind == "AdaBoost":
        n_classes = desc.get("n_classes")
        _need(isinstance(n_classes, int) and n_classes >= 2 and n_classes == tree.value.shape[-1],
              "an AdaBoost's n_classes >= 2, the trees' class count", repr(n_classes))
        _need(arrays["model.alpha"].shape == batch, f"model.alpha of shape {batch}", arrays["model.alpha"].shape)
        return AdaBoost(trees=tree, alpha=jnp.asarray(arrays["model.alpha"]), n_classes=n_classes)
    loss, lr = desc.get("loss"), desc.get("learning_rate")
    _need(loss in BOOSTING_LOSSES, f"a boosting loss name of {sorted(BOOSTING_LOSSES)}", repr(loss))
    _need(isinstance(lr, float) and math.isfinite(lr) and lr > 0, "a positive learning_rate", repr(lr))
    _need(arrays["model.init"].shape == batch[1:], f"model.init of shape {batch[1:]}", arrays["model.init"].shape)
    curves = {name: arrays.get(f"model.{name}") for name in CURVES}
    if curves[CURVES[0]] is not None:
        shape = curves[CURVES[0]].shape
        for name, curve in curves.items():
            _need(curve.dtype.str == "<f4" and curve.ndim == 1 and curve.shape == shape and shape[0] > batch[0],
                  f"model.{name} float32 of shape (n_iter + 1,), n_iter >= {batch[0]} (the rounds kept)",
                  f"dtype {curve.dtype.str}, shape {curve.shape}")
        curves = {name: jnp.asarray(curve) for name, curve in curves.items()}
    return GradientBoosting(trees=tree, init=jnp.asarray(arrays["model.init"]), learning_rate=lr, loss=loss,
                            **curves)


def _build_trees(static, arrays: dict[str, np.ndarray], batch_axes: int, kind: str) -> Tree:
    _need(isinstance(static, dict), "tree settings in its header", repr(static))
    tkind, criterion, d = static.get("kind"), static.get("criterion"), static.get("n_features")
    _need(tkind in TREE_KINDS and criterion in TREE_KINDS[tkind],
          "a tree kind and criterion of " + "; ".join(f"{k}: {v}" for k, v in TREE_KINDS.items()),
          f"kind {tkind!r}, criterion {criterion!r}")
    _need(isinstance(d, int) and not isinstance(d, bool) and d >= 1, "n_features a positive integer", repr(d))
    a = {f: arrays[f"model.trees.{f}"] for f in TREE_FIELDS}
    for f, dtype in TREE_FIELDS.items():
        _need(a[f].dtype.str == dtype, f"model.trees.{f} of dtype {dtype}", a[f].dtype.str)
    shape = a["feature"].shape
    _need(len(shape) == batch_axes + 1, f"trees with {batch_axes} leading axes for a {kind}",
          f"model.trees.feature of shape {shape}")
    internal = shape[-1]
    depth = int(round(math.log2(internal + 1))) if internal > 0 else 0
    _need(1 <= depth <= _checks.MAX_DEPTH and internal == 2**depth - 1,
          f"2^D - 1 internal nodes, 1 <= D <= {_checks.MAX_DEPTH}", f"{internal}")
    batch = shape[:-1]
    for f in ("threshold", "missing_left", "gain", "impurity", "weight"):
        _need(a[f].shape == shape, f"model.trees.{f} of shape {shape}", a[f].shape)
    _need(a["leaf_weight"].shape == batch + (2**depth,), f"model.trees.leaf_weight of shape {batch + (2**depth,)}",
          a["leaf_weight"].shape)
    v = a["value"].shape
    _need(len(v) == len(shape) + 1 and v[:-1] == batch + (2**depth,) and v[-1] >= 1,
          f"model.trees.value of shape {batch + (2**depth, 'K')}", v)
    if a["feature"].size:
        lo, hi = int(a["feature"].min()), int(a["feature"].max())
        _need(lo >= -1 and hi < d, f"split features in [-1, {d - 1}] (n_features={d})", f"values in [{lo}, {hi}]")
    cats = arrays.get("model.trees.categories")
    if cats is not None:
        _need(cats.dtype.str == OPTIONAL_TREE_FIELDS["categories"], "model.trees.categories of dtype <u4",
              cats.dtype.str)
        want = shape + (CATEGORY_WORDS,)
        _need(cats.shape == want, f"model.trees.categories of shape {want}", cats.shape)
        a["categories"] = cats
    return Tree(**{f: jnp.asarray(x) for f, x in a.items()}, kind=tkind, criterion=criterion, n_features=d)


def _build_estimator(desc: dict, arrays: dict[str, np.ndarray]):
    from mlwork.trees import sklearn as _sk

    name = desc.get("class")
    _need(name in _sk.__all__ and isinstance(getattr(_sk, name, None), type),
          "an estimator of mlwork.trees.sklearn", f"class {name!r}")
    params, attributes = desc.get("params"), desc.get("attributes")
    _need(isinstance(params, dict) and isinstance(attributes, dict), "estimator params and attributes", "neither")
    try:
        est = getattr(_sk, name)(**params)
    except TypeError as e:
        raise _Refused(f"parameters of {name}", f"{e}") from None
    model_arrays = {k: v for k, v in arrays.items() if k.startswith("model.")}
    est.model_ = _build(desc.get("model"), model_arrays)
    listed = {f"estimator.{k}" for k, meta in attributes.items() if isinstance(meta, dict) and meta.get("array")}
    _need(listed == set(arrays) - set(model_arrays), f"the estimator arrays {sorted(listed)}",
          f"{sorted(set(arrays) - set(model_arrays))}")
    for attr, meta in attributes.items():
        _need(isinstance(attr, str) and attr.endswith("_") and not attr.startswith("_") and attr != "model_",
              "fitted attribute names ending with '_'", repr(attr))
        if meta.get("array"):
            value = arrays[f"estimator.{attr}"]
            setattr(est, attr, value.astype(object) if meta.get("object") else value)
        else:
            _need("value" in meta and _plain(meta["value"]), f"a plain value for {attr}", repr(meta))
            setattr(est, attr, meta["value"])
    return est
