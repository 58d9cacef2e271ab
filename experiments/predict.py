"""Predict with a trained run: label and probability per input (values for a regression).

    python -m experiments.predict --workdir runs/a digit.png photo.jpg
    python -m experiments.predict --workdir runs/a --json t10k-images-idx3-ubyte.gz
    python -m experiments.predict --workdir runs/a --which latest --invert scan.png
    python -m experiments.predict --workdir runs/diabetes patients.npy   # any run: an array of inputs

INPUTS are PNG/JPEG files (decoded with Pillow; converted to greyscale and resized to the run's
input shape, with a warning, when they are not already), IDX image files (``.gz`` or raw, e.g.
MNIST's ``t10k-images-idx3-ubyte.gz``; every image in them is classified), or NumPy arrays of
inputs like the run's training inputs: a ``.npy`` file (one input, or ``(N, *input_shape)``) or
an ``.npz`` file (its ``x``, else its ``x_test``). MNIST digits are light on a dark background:
pass ``--invert`` for dark-on-light drawings.

A classification prints each input's label and probability; multi-hot labels, each label's
probability and the labels above 0.5; a regression, the predicted values. A population run
predicts with its ensemble (the members' mean softmax, or mean output).

Exit codes: 0 success; 2 bad input (flags, a workdir holding no run, an unreadable image or IDX
or array file, inputs that do not fit the run); 4 the checkpoint is missing or damaged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlwork.train.errors import EXIT_BAD_INPUT, EXIT_CHECKPOINT

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".npy", ".npz")


def _which(text: str) -> str | int:
    if text in ("best", "latest"):
        return text
    if text.isdigit():
        return int(text)
    # argparse puts "argument --which: " in front
    raise argparse.ArgumentTypeError(f"must be best, latest or a checkpoint step; got {text!r}")


HELP = """\
Predict with a trained run: label and probability per input (values for a regression).

INPUTs are PNG/JPEG files (decoded with Pillow; converted to greyscale and resized to the run's
input shape, with a warning, when they are not already), IDX image files (.gz or raw, e.g.
MNIST's t10k-images-idx3-ubyte.gz; every image in them is classified), or arrays of inputs like
the run's training inputs: .npy (one input or N of them) or .npz (its x, else its x_test). MNIST
digits are light on a dark background: pass --invert for dark-on-light drawings. Multi-hot labels
print each label's probability; a regression prints its values. A population run predicts with
its ensemble (the members' mean softmax, or mean output).

examples:
  python -m experiments.predict --workdir runs/a digit.png photo.jpg
  python -m experiments.predict --workdir runs/a --json t10k-images-idx3-ubyte.gz
  python -m experiments.predict --workdir runs/a --which latest --invert scan.png
  python -m experiments.predict --workdir runs/diabetes patients.npy"""

EXIT_CODES = {
    0: "success",
    EXIT_BAD_INPUT: "bad input: a flag, a workdir holding no run, an unreadable image, IDX or array file, inputs "
                    "that do not fit the run (one line on stderr)",
    EXIT_CHECKPOINT: "the checkpoint is missing or damaged (one line on stderr)",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags -> namespace; exits 2 with one line on a bad flag. Imports no JAX."""
    from experiments._common import experiment_parser

    p = experiment_parser("predict", HELP, EXIT_CODES)
    p.add_argument("--workdir", required=True, metavar="DIR",
                   help="the run's folder, written by experiments.train or experiments.mnist (required)")
    p.add_argument("--which", type=_which, default="best",
                   help="best, latest, or a checkpoint step (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout, for machines")
    p.add_argument("--invert", action="store_true",
                   help="invert PNG/JPEG images: for dark strokes on light paper (such an image without it "
                        "gets a warning)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="PNG/JPEG files, IDX image files, .npy/.npz arrays")
    return p.parse_args(argv)


def load_image(path: Path, input_shape: tuple[int, ...], invert: bool = False,
               warn=lambda message: print(message, file=sys.stderr)):
    """A PNG/JPEG file as a uint8 ``input_shape`` array: greyscale, resized (with a warning)
    when it is not already. Raises ``ValueError`` when Pillow cannot decode it."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode, size = img.mode, img.size
            grey = img.convert("L")
    except (OSError, UnidentifiedImageError) as e:
        raise ValueError(f"{path}: not a readable PNG/JPEG image ({type(e).__name__})") from None
    height, width = input_shape
    changes = []
    if mode not in ("L", "1", "I;16", "I", "F"):
        changes.append(f"converted {mode} to greyscale")
    if size != (width, height):
        grey = grey.resize((width, height), Image.Resampling.LANCZOS)
        changes.append(f"resized {size[0]}x{size[1]} to {width}x{height}")
    if changes:
        warn(f"warning: {path}: {' and '.join(changes)} as the run expects")
    x = np.asarray(grey, dtype=np.uint8)
    if invert:
        return 255 - x
    # MNIST digits are light strokes on a dark background. A light border says the drawing is the
    # other way round (ink on paper), which the model would read as a blob: say so, do not guess.
    border = np.concatenate([x[0], x[-1], x[1:-1, 0], x[1:-1, -1]])
    if np.median(border) > 127:
        warn(f"warning: {path}: dark strokes on a light background (border median "
             f"{int(np.median(border))}); the model expects light on dark: pass --invert")
    return x


def read_array(path: Path, input_shape: tuple[int, ...]):
    """The inputs in a ``.npy`` file (one input of ``input_shape``, or ``(N, *input_shape)``) or
    an ``.npz`` file (its ``x``, else its ``x_test``), as ``(N, *input_shape)``. Pickled arrays are
    refused. Raises ``ValueError`` naming the file."""
    import numpy as np

    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - a corrupt, foreign or pickled file
        reason = "it holds pickled (object) arrays" if "allow_pickle" in str(e) else type(e).__name__
        raise ValueError(f"{path}: not a readable NumPy array file ({reason})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            key = next((k for k in ("x", "x_test") if k in loaded.files), None)
            if key is None:
                raise ValueError(f"{path} must hold the inputs as x (or x_test); it holds {sorted(loaded.files)}")
            try:
                x = loaded[key]
            except ValueError:
                raise ValueError(f"{path}: {key} is a pickled (object) array, refused") from None
    else:
        x = loaded
    if tuple(x.shape) == tuple(input_shape):
        return x[None]
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(f"{path} holds inputs of shape {tuple(x.shape)}; the run expects "
                         f"(N, {', '.join(map(str, input_shape))}) or one input of shape {tuple(input_shape)}")
    return x


def read_inputs(paths: list[str], input_shape: tuple[int, ...], invert: bool):
    """``[(name, inputs (N, *input_shape))]`` for every input. Raises ``ValueError``."""
    from mlwork.data import DataError, read_images

    out = []
    for text in paths:
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"input {path} does not exist or is not a file")
        if path.suffix.lower() in ARRAY_SUFFIXES:
            out.append((str(path), read_array(path, input_shape)))
            continue
        if len(input_shape) != 2:
            raise ValueError(f"{path}: the run takes inputs of shape {tuple(input_shape)}, not images; pass them as "
                             ".npy or .npz arrays")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            out.append((str(path), load_image(path, input_shape, invert)[None]))
            continue
        try:
            images = read_images(path)
        except DataError as e:
            raise ValueError(f"{e} (inputs must be PNG/JPEG files, IDX image files or .npy/.npz arrays)") from None
        if tuple(images.shape[1:]) != tuple(input_shape):
            raise ValueError(f"{path} holds {images.shape[1]}x{images.shape[2]} images; the run expects "
                             f"{'x'.join(map(str, input_shape))}")
        out.append((str(path), images))
    return out


def _result(run, p) -> dict:
    """One input's prediction as a JSON-ready dict, by the run's kind of targets."""
    names = run.class_names
    if run.target == "values":
        return {"value": p.tolist()}
    if run.target == "multilabel":
        return {"labels": [int(i) for i in (p > 0.5).nonzero()[0]],
                "class_names": [names[i] for i in (p > 0.5).nonzero()[0]], "probabilities": [float(v) for v in p]}
    label = int(p.argmax())
    return {"label": label, "class_name": names[label], "probability": float(p[label]),
            "probabilities": [float(v) for v in p]}


def _shown(r: dict) -> str:
    if "value" in r:
        v = r["value"]
        return f"{v:.6g}" if isinstance(v, float) else "[" + ", ".join(f"{x:.6g}" for x in _flat(v)) + "]"
    if "labels" in r:
        return "{" + ", ".join(r["class_names"]) + "}  p=[" + ", ".join(f"{v:.4f}" for v in r["probabilities"]) + "]"
    shown = r["class_name"] if r["class_name"] == str(r["label"]) else f"{r['label']} ({r['class_name']})"
    return f"{shown}  p={r['probability']:.4f}"


def _flat(v):
    for x in v:
        yield from (_flat(x) if isinstance(x, list) else (x,))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # before JAX is imported: --help and flag errors are instant
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from mlwork.train import CheckpointError, RunError, load_run, predict_run

    try:
        run = load_run(args.workdir, args.which)
        inputs = read_inputs(args.inputs, run.input_shape, args.invert)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_CHECKPOINT
    except (RunError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    results = []
    try:
        for name, batch in inputs:
            preds = predict_run(run, batch)
            for i, p in enumerate(preds):
                results.append({"input": name, "index": i if len(preds) > 1 else None, **_result(run, p)})
    except ValueError as e:  # inputs of the wrong dtype or values for the run
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        json.dump({"workdir": args.workdir, "step": run.step, "which": run.which, "members": run.members,
                   "target": run.target, "class_names": None if run.target == "values" else list(run.class_names),
                   "predictions": results}, sys.stdout, indent=1)
        print()
        return 0
    for r in results:
        where = r["input"] if r["index"] is None else f"{r['input']}[{r['index']}]"
        print(f"{where}: {_shown(r)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
