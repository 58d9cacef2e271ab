"""Classify images with a trained run: label and probability per input.

    python -m experiments.predict --workdir runs/a digit.png photo.jpg
    python -m experiments.predict --workdir runs/a --json t10k-images-idx3-ubyte.gz
    python -m experiments.predict --workdir runs/a --which latest --invert scan.png

INPUTS are PNG/JPEG files (decoded with Pillow; converted to greyscale and resized to the run's
input shape, with a warning, when they are not already) or IDX image files (``.gz`` or raw, e.g.
MNIST's ``t10k-images-idx3-ubyte.gz``; every image in them is classified). MNIST digits are
light on a dark background: pass ``--invert`` for dark-on-light drawings.

A population run predicts with its ensemble (the members' mean softmax).

Exit codes: 0 success; 2 bad input (flags, a workdir holding no run, an unreadable image or IDX
file); 4 the checkpoint is missing or damaged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlwork.train.errors import EXIT_BAD_INPUT, EXIT_CHECKPOINT

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _which(text: str) -> str | int:
    if text in ("best", "latest"):
        return text
    if text.isdigit():
        return int(text)
    # argparse puts "argument --which: " in front
    raise argparse.ArgumentTypeError(f"must be best, latest or a checkpoint step; got {text!r}")


HELP = """\
Classify images with a trained run: label and probability per input.

INPUTs are PNG/JPEG files (decoded with Pillow; converted to greyscale and resized to the run's
input shape, with a warning, when they are not already) or IDX image files (.gz or raw, e.g.
MNIST's t10k-images-idx3-ubyte.gz; every image in them is classified). MNIST digits are light on a
dark background: pass --invert for dark-on-light drawings. A population run predicts with its
ensemble (the members' mean softmax).

examples:
  python -m experiments.predict --workdir runs/a digit.png photo.jpg
  python -m experiments.predict --workdir runs/a --json t10k-images-idx3-ubyte.gz
  python -m experiments.predict --workdir runs/a --which latest --invert scan.png"""

EXIT_CODES = {
    0: "success",
    EXIT_BAD_INPUT: "bad input: a flag, a workdir holding no run, an unreadable image or IDX file (one line on stderr)",
    EXIT_CHECKPOINT: "the checkpoint is missing or damaged (one line on stderr)",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags -> namespace; exits 2 with one line on a bad flag. Imports no JAX."""
    from experiments._common import experiment_parser

    p = experiment_parser("predict", HELP, EXIT_CODES)
    p.add_argument("--workdir", required=True, metavar="DIR",
                   help="the run's folder, written by experiments.mnist (required)")
    p.add_argument("--which", type=_which, default="best",
                   help="best, latest, or a checkpoint step (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout, for machines")
    p.add_argument("--invert", action="store_true",
                   help="invert PNG/JPEG images: for dark strokes on light paper (such an image without it "
                        "gets a warning)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="PNG/JPEG files or IDX image files")
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


def read_inputs(paths: list[str], input_shape: tuple[int, ...], invert: bool):
    """``[(name, images (N, *input_shape) uint8)]`` for every input. Raises ``ValueError``."""
    from mlwork.data import DataError, read_images

    out = []
    for text in paths:
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"input {path} does not exist or is not a file")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            out.append((str(path), load_image(path, input_shape, invert)[None]))
            continue
        try:
            images = read_images(path)
        except DataError as e:
            raise ValueError(f"{e} (inputs must be PNG/JPEG files or IDX image files)") from None
        if tuple(images.shape[1:]) != tuple(input_shape):
            raise ValueError(f"{path} holds {images.shape[1]}x{images.shape[2]} images; the run expects "
                             f"{'x'.join(map(str, input_shape))}")
        out.append((str(path), images))
    return out


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
    names = run.class_names
    results = []
    for name, images in inputs:
        probs = predict_run(run, images)
        for i, p in enumerate(probs):
            label = int(p.argmax())
            results.append({"input": name, "index": i if len(probs) > 1 else None, "label": label,
                            "class_name": names[label], "probability": float(p[label]),
                            "probabilities": [float(v) for v in p]})
    if args.json:
        json.dump({"workdir": args.workdir, "step": run.step, "which": run.which, "members": run.members,
                   "class_names": list(names), "predictions": results}, sys.stdout, indent=1)
        print()
        return 0
    for r in results:
        where = r["input"] if r["index"] is None else f"{r['input']}[{r['index']}]"
        shown = r["class_name"] if r["class_name"] == str(r["label"]) else f"{r['label']} ({r['class_name']})"
        print(f"{where}: {shown}  p={r['probability']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
