"""The run's PNGs read well: integer epochs, the best epoch marked, the data source named, a
learning-rate axis that shows the schedule (not float noise), every legend entry visible."""

import json

import matplotlib
import matplotlib.figure
import numpy as np
import pytest

from mlwork.train import report
from tests.train import trained_runs as runs

matplotlib.use("Agg")


@pytest.fixture
def figures(monkeypatch):
    """Every figure saved while the test runs (inspected after the PNG is written)."""
    saved = []
    original = matplotlib.figure.Figure.savefig

    def savefig(self, *args, **kwargs):
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    return saved


def _history():
    return [json.loads(line) for line in (runs.single() / "metrics.jsonl").read_text().splitlines()]


def _visible(handle) -> bool:
    if isinstance(handle, matplotlib.lines.Line2D):
        line = handle.get_linestyle() not in ("None", " ", "", "none") and handle.get_linewidth() > 0
        marker = handle.get_marker() not in ("None", " ", "", "none", None)
        return handle.get_visible() and (line or marker)
    return handle.get_visible()


def _plot(tmp_path, lr_values, steps_per_epoch=9):
    history = _history()
    steps = np.arange(0, 2 * steps_per_epoch + 1)
    confusion = np.eye(10, dtype=int) * 5
    return report.plot_run(tmp_path, history, steps, lr_values(steps), confusion, list("0123456789"),
                           np.zeros((3, 28, 28), np.uint8), np.zeros(3, int), np.ones(3, int), "mnist mlp",
                           data_source="test-sample", steps_per_epoch=steps_per_epoch)


def test_every_plot_names_the_source_has_integer_epochs_and_visible_legend_entries(tmp_path, figures):
    written = _plot(tmp_path, lambda s: np.full(s.shape, 1e-3))
    assert sorted(p.name for p in written) == ["confusion_matrix.png", "curves.png", "gradient_norms.png",
                                               "learning_rate.png", "misclassified.png"]
    assert all(p.stat().st_size > 1000 for p in written)
    for fig in figures:
        fig.canvas.draw()
        titles = " ".join([fig._suptitle.get_text() if fig._suptitle else ""] +
                          [ax.get_title() for ax in fig.axes])
        assert "test-sample" in titles, titles
        for ax in fig.axes:
            if ax.get_xlabel() == "epoch":
                ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
                assert ticks and all(float(t).is_integer() for t in ticks), ticks
            legend = ax.get_legend()
            if legend is not None:
                for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
                    assert _visible(handle), text.get_text()


def test_the_best_epoch_is_marked_on_the_curves(tmp_path, figures):
    _plot(tmp_path, lambda s: np.full(s.shape, 1e-3))
    best = report.best_row(_history())
    curves = next(f for f in figures if any(ax.get_title() == "loss" for ax in f.axes))
    for ax in curves.axes:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert f"best epoch {best['epoch']} (val acc {best['val_accuracy']:.4f})" in labels
        assert any(line.get_xdata()[0] == best["epoch"] and line.get_marker() == "*" for line in ax.lines)


def test_best_row_is_the_highest_validation_accuracy_earliest_among_ties():
    rows = [{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.7}, {"epoch": 3, "val_accuracy": 0.7}]
    assert report.best_row(rows)["epoch"] == 2
    assert report.best_row([]) is None


@pytest.mark.parametrize("name, schedule", [
    ("constant", lambda s: np.full(s.shape, 1e-3)),
    ("cosine", lambda s: 1e-3 * 0.5 * (1 + np.cos(np.pi * s / s[-1]))),
    ("warmup", lambda s: 3e-2 * np.minimum(1.0, (s + 1) / 9)),
])
def test_the_learning_rate_axis_starts_at_zero_and_shows_the_peak(tmp_path, figures, name, schedule):
    _plot(tmp_path, schedule)
    fig = next(f for f in figures if any(ax.get_ylabel() == "learning rate" for ax in f.axes))
    ax = fig.axes[0]
    fig.canvas.draw()
    values = schedule(np.arange(19))
    bottom, top = ax.get_ylim()
    assert bottom == 0.0 and values.max() < top <= 1.2 * values.max()
    ticks = [t for t in ax.get_yticks() if bottom <= t <= top]
    assert len(ticks) >= 3  # a readable scale, not one value zoomed into float noise
    if name == "constant":
        assert "constant 0.001" in ax.get_title()


def test_the_population_plot_marks_each_members_best_epoch(tmp_path, figures):
    history = [json.loads(line) for line in (runs.population() / "metrics.jsonl").read_text().splitlines()]
    report.plot_population(tmp_path, history, 2, data_source="test-sample")
    (fig,) = figures
    ax = fig.axes[0]
    fig.canvas.draw()
    assert "test-sample" in ax.get_title()
    assert all(float(t).is_integer() for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1])
    stars = [line for line in ax.lines if line.get_marker() == "*" and len(line.get_xdata())]
    assert sorted(int(line.get_xdata()[0]) for line in stars) == sorted(
        report.best_row([r for r in history if r["member"] == k])["epoch"] for k in range(2))
    for handle in ax.get_legend().legend_handles:
        assert _visible(handle)
