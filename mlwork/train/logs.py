"""Per-epoch logs a person reads: a progress bar in a terminal, one line per epoch elsewhere.

Outside a terminal (a log file, a notebook's captured output, a cluster job) a progress bar
disables itself, so the trainer prints :func:`epoch_line` instead — one line per epoch in the
spirit of Keras' ``verbose=2``::

    epoch 3/10 - 1.24s - loss: 0.2345 - accuracy: 0.9312 - val_loss: 0.2100 - val_accuracy: 0.9400 - lr: 1e-03

:func:`use_progress_bar` decides which of the two a stream gets.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

#: (row field, label) in the order an epoch line shows them (Keras' names).
FIELDS = (("train_loss", "loss"), ("train_accuracy", "accuracy"), ("val_loss", "val_loss"),
          ("val_accuracy", "val_accuracy"))


def use_progress_bar(stream: TextIO | None = None) -> bool:
    """Whether to show a tqdm progress bar on ``stream``: only when it is a terminal.

    Otherwise the loop prints one :func:`epoch_line` per epoch. A closed stream, or an object
    without ``isatty``, counts as not a terminal.

    Args:
      stream: the output stream; default ``sys.stdout``.

    Returns:
      ``stream.isatty()``, or ``False`` when that cannot be asked.

    Example:
      >>> import io
      >>> from mlwork.train import use_progress_bar
      >>> use_progress_bar(io.StringIO())
      False
    """
    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def _number(x: Any) -> float | None:
    return None if x is None or isinstance(x, bool) else float(x)


def _other_metrics(row: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """A task's metrics beyond loss and accuracy (``val_r2``, ...), validation figures only."""
    known = {field for field, _ in FIELDS}
    return tuple((k, k) for k in row if k.startswith("val_") and k not in known)


def _lr(x: float) -> str:
    return f"{x:.3g}" if 1e-2 <= abs(x) < 1e3 else f"{x:.2e}"


def _head(epoch: Any, total: int | None, seconds: float | None) -> str:
    text = f"epoch {epoch}/{total}" if total else f"epoch {epoch}"
    return text + (f" - {seconds:.2f}s" if seconds is not None else "")


def epoch_line(row: Mapping[str, Any] | Sequence[Mapping[str, Any]], total_epochs: int | None = None) -> str:
    """One line summarising an epoch, from its ``metrics.jsonl`` row(s).

    Args:
      row: a single model's row (``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``,
        ``val_accuracy``, ``learning_rate``, ``epoch_time_s``; missing or ``None`` fields are
        left out), or a population's rows for one epoch (one per member, each with ``member``):
        then each metric is shown as ``mean [min, max]`` over the members, and the learning
        rate as a range when the members differ.
      total_epochs: the run's planned epochs, shown as ``epoch 3/10``.

    Returns:
      The line, without a trailing newline.

    Raises:
      ValueError: an empty sequence of rows, or rows from different epochs.

    Example::

      >>> epoch_line({"epoch": 2, "train_loss": 0.31, "val_accuracy": 0.9, "learning_rate": 1e-3,
      ...             "epoch_time_s": 1.5}, total_epochs=5)
      'epoch 2/5 - 1.50s - loss: 0.3100 - val_accuracy: 0.9000 - lr: 1.00e-03'
    """
    if isinstance(row, Mapping):
        parts = [_head(row.get("epoch", "?"), total_epochs, _number(row.get("epoch_time_s")))]
        for field, label in FIELDS + _other_metrics(row):
            value = _number(row.get(field))
            if value is not None:
                parts.append(f"{label}: {value:.4f}")
        lr = _number(row.get("learning_rate"))
        if lr is not None:
            parts.append(f"lr: {_lr(lr)}")
        return " - ".join(parts)
    rows = list(row)
    if not rows:
        raise ValueError("row must be a metrics row or a non-empty sequence of member rows, got an empty sequence")
    epochs = {r.get("epoch") for r in rows}
    if len(epochs) != 1:
        raise ValueError(f"row: member rows must come from one epoch, got epochs {sorted(map(str, epochs))}")
    times = [t for t in (_number(r.get("epoch_time_s")) for r in rows) if t is not None]
    parts = [_head(rows[0].get("epoch", "?"), total_epochs, max(times) if times else None), f"{len(rows)} members"]
    for field, label in FIELDS:
        values = [v for v in (_number(r.get(field)) for r in rows) if v is not None]
        if values:
            mean = sum(values) / len(values)
            parts.append(f"{label}: {mean:.4f} [{min(values):.4f}, {max(values):.4f}]" if len(values) > 1
                         else f"{label}: {mean:.4f}")
    lrs = [v for v in (_number(r.get("learning_rate")) for r in rows) if v is not None]
    if lrs:
        lo, hi = min(lrs), max(lrs)
        parts.append(f"lr: {_lr(lo)}" if lo == hi else f"lr: {_lr(lo)}..{_lr(hi)}")
    return " - ".join(parts)
