"""TensorBoard event files for a run, written with tensorboardX (no TensorFlow needed).

Every number of every ``metrics.jsonl`` row becomes a scalar at ``step = epoch``: the field's
name is the tag (``train_loss``, ``val_accuracy``, ``learning_rate``, ``grad_norm``...), and a
per-layer field becomes one tag per layer (``grad_norm_layers/0``,
``update_ratio_layers/Dense_0``...). The final test figures go under ``test/`` at the last
epoch. A population writes one TensorBoard *run* per member (``tensorboard/member_00/``...), so
TensorBoard draws the members of a tag in one chart; the ensemble's figures go to the top
folder. View with ``tensorboard --logdir <workdir>/tensorboard``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: Row fields that index the row rather than measure anything.
INDEX_FIELDS = ("epoch", "member")


def scalars(row: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The scalars of a metrics row as ``{tag: value}``: numbers as they are, nested mappings
    (per-layer fields) flattened to ``field/key``; ``None``, strings, booleans, the index
    fields (``epoch``, ``member``) and non-finite numbers are left out."""
    out: dict[str, float] = {}
    for key, value in row.items():
        if not prefix and key in INDEX_FIELDS:
            continue
        tag = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(scalars(value, prefix=f"{tag}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[tag] = float(value)
    return out


def member_run(member: int) -> str:
    """The TensorBoard run (sub-folder) of population member ``member``."""
    return f"member_{int(member):02d}"


class TensorBoardWriter:
    """TensorBoard event files under ``<workdir>/tensorboard`` (tensorboardX; no TensorFlow needed).

    A single model's scalars go to the top run; population member ``k``'s to the sub-folder
    ``member_<k>`` (two digits), so TensorBoard draws one curve per member. Writers open lazily, at
    the first write.

    Args:
      workdir: the run's folder.
      flush_secs: how often, in seconds, tensorboardX flushes pending events to disk.

    Attributes:
      logdir: ``<workdir>/tensorboard``.

    Use as a context manager (or call :meth:`close`)::

      with TensorBoardWriter(workdir) as tb:
          for row in history:
              tb.write_row(row)
          tb.write_summary(summary)

    Example:
      >>> import tempfile
      >>> from mlwork.train import TensorBoardWriter
      >>> tmp = tempfile.TemporaryDirectory()
      >>> with TensorBoardWriter(tmp.name) as tb:
      ...     tb.write_row({"epoch": 1, "train_loss": 0.4, "val_accuracy": 0.9})
      ...     tb.write_row({"epoch": 1, "member": 1, "train_loss": 0.5})
      >>> sorted(p.name for p in tb.logdir.iterdir() if p.is_dir()), any(tb.logdir.glob("events.out.*"))
      (['member_01'], True)
      >>> tmp.cleanup()
    """

    def __init__(self, workdir: str | Path, flush_secs: int = 10):
        self.logdir = Path(workdir) / "tensorboard"
        self.flush_secs = flush_secs
        self._writers: dict[str, Any] = {}

    @staticmethod
    def available() -> bool:
        """Whether tensorboardX is installed.

        It is a declared dependency, but a bare machine may lack it; then a run writes no events, and
        :func:`~mlwork.train.train_and_evaluate` says so once.

        Returns:
          ``True`` if ``import tensorboardX`` would find the package.
        """
        import importlib.util

        return importlib.util.find_spec("tensorboardX") is not None

    def _writer(self, run: str = ""):
        if run not in self._writers:
            from tensorboardX import SummaryWriter

            self._writers[run] = SummaryWriter(str(self.logdir / run) if run else str(self.logdir),
                                               flush_secs=self.flush_secs)
        return self._writers[run]

    def write_scalars(self, values: Mapping[str, float], step: int, member: int | None = None) -> None:
        """Write ``{tag: value}`` at ``step`` (to member ``member``'s run when given).

        Args:
          values: tags (e.g. ``"train_loss"``, ``"grad_norm/layer_0"``) and numbers.
          step: the x coordinate (the epoch, for a run's rows).
          member: a population member's index, or ``None`` for the top run.

        Raises:
          CheckpointError: the events cannot be written (a full, read-only or vanished disk: the
            run's exit code 4).
        """
        try:
            writer = self._writer("" if member is None else member_run(member))
            for tag, value in values.items():
                writer.add_scalar(tag, float(value), int(step))
        except OSError as e:  # a full, read-only or vanished disk: the run's documented exit 4
            from mlwork.train.errors import CheckpointError

            raise CheckpointError(f"could not write TensorBoard events in {self.logdir}: {e.strerror or e}") from None

    def write_row(self, row: Mapping[str, Any]) -> None:
        """Every scalar of one ``metrics.jsonl`` row at ``step = row["epoch"]``.

        A population row, with ``member``, goes to that member's run; nested mappings become
        ``outer/inner`` tags; non-numbers and non-finite numbers are left out.

        Args:
          row: one metrics row, with an ``epoch`` field.

        Raises:
          ValueError: the row has no ``epoch``.
          CheckpointError: as :meth:`write_scalars`.
        """
        if "epoch" not in row:
            raise ValueError(f"row must have an 'epoch' field, got fields {sorted(row)}")
        self.write_scalars(scalars(row), int(row["epoch"]), row.get("member"))

    def write_summary(self, summary: Mapping[str, Any], step: int | None = None) -> None:
        """The final figures of ``summary.json`` under ``test/`` and ``best/``.

        ``test/<metric>`` (``test/accuracy``, ``test/loss``, ``test/r2``, ...), ``best/val_<metric>``
        (the monitored one) and ``best/epoch`` per model; for a population also
        ``test/ensemble_<metric>`` and ``test/best_member_<metric>`` in the top run and each member's
        figures in its run. Fields that are not numbers are skipped.

        Args:
          summary: the run's summary (as ``summary.json`` holds it).
          step: the step to write at; default ``summary["epochs_run"]`` (0 if absent).

        Raises:
          CheckpointError: as :meth:`write_scalars`.
        """
        step = int(summary.get("epochs_run", 0) if step is None else step)
        def tag(key: str) -> str | None:
            for prefix, folder in (("ensemble_test_", "test/ensemble_"), ("best_member_test_", "test/best_member_"),
                                   ("test_", "test/"), ("best_val_", "best/val_")):
                if key.startswith(prefix):
                    return folder + key[len(prefix):]
            return "best/epoch" if key == "best_epoch" else None

        def pick(d):
            return {tag(k): v for k, v in d.items()
                    if tag(k) and isinstance(v, (int, float)) and not isinstance(v, bool)}

        self.write_scalars(pick(summary), step)
        for k, member in enumerate(summary.get("members") or []):
            if isinstance(member, Mapping):
                self.write_scalars(pick(member), step, member=k)

    def write_text(self, tag: str, text: str, step: int = 0) -> None:
        """A text entry (e.g. the run's config as JSON) in the top run.

        Args:
          tag: the entry's name.
          text: its text (Markdown, as TensorBoard renders it).
          step: the step to write at.
        """
        self._writer().add_text(tag, text, step)

    def flush(self) -> None:
        """Write every open writer's pending events to disk now."""
        for w in self._writers.values():
            w.flush()

    def close(self) -> None:
        """Flush and close every open writer (a later write opens new ones)."""
        for w in self._writers.values():
            w.close()
        self._writers.clear()

    def __enter__(self) -> TensorBoardWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_run(workdir: str | Path, history: Iterable[Mapping[str, Any]] | None = None,
              summary: Mapping[str, Any] | None = None) -> Path:
    """Event files for a whole run at once: ``history`` (default: ``workdir/metrics.jsonl``),
    ``summary`` (default: ``workdir/summary.json`` if present) and the config as text. Also
    turns the metrics of a run trained before TensorBoard support into event files.

    Returns:
      The ``tensorboard`` folder.
    """
    workdir = Path(workdir)
    if history is None:
        metrics = workdir / "metrics.jsonl"
        if not metrics.exists():
            raise ValueError(f"workdir {workdir} has no metrics.jsonl")
        history = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    if summary is None and (workdir / "summary.json").exists():
        summary = json.loads((workdir / "summary.json").read_text())
    with TensorBoardWriter(workdir) as tb:
        if (workdir / "config.json").exists():
            tb.write_text("config", "```\n" + (workdir / "config.json").read_text() + "\n```")
        for row in history:
            tb.write_row(row)
        if summary is not None:
            tb.write_summary(summary)
        return tb.logdir
