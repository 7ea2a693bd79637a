"""The report's figures, checked as matplotlib objects: digit images have square pixels, and the
reliability diagram's legend covers none of its points."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlx.report import figures_ensemble, figures_run
from dlx.report.figures import Report


@pytest.fixture
def captured(monkeypatch):
    """Figures the report would save, kept open for inspection instead."""
    kept = []
    for module in (figures_run, figures_ensemble):
        monkeypatch.setattr(module, "save", lambda fig, *args, **kwargs: kept.append(fig))
    yield kept
    import matplotlib.pyplot as plt
    for fig in kept:
        plt.close(fig)


def test_digit_images_have_square_pixels(captured, tmp_path):
    """8×8 images shown in a 2.6 × 2.9 inch cell: each image's drawn box is square (as many screen pixels per
    image pixel across as down), even where matplotlib is set to stretch images (image.aspect: auto)."""
    import matplotlib
    rng = np.random.default_rng(0)
    unit = rng.random((12, 1, 8, 8), dtype=np.float32)
    y = np.arange(12) % 10
    log_probs = np.log(np.full((12, 10), 0.1))
    with matplotlib.rc_context({"image.aspect": "auto"}):
        figures_run.worst_grid(unit, y, log_probs, [str(i) for i in range(10)], Report("run", "t", tmp_path),
                               tmp_path)
    fig, = captured
    fig.canvas.draw()
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 12
    for ax in shown:
        box = ax.get_window_extent()
        rows, columns = ax.images[0].get_array().shape[:2]
        assert box.width / columns == pytest.approx(box.height / rows, rel=0.01), (box.width, box.height)


def test_reliability_legend_covers_no_point(captured, tmp_path, monkeypatch):
    """Under-confident predictions put a point in the top-left corner, where the legend used to sit."""
    rng = np.random.default_rng(0)
    classes, n = 10, 2000
    y = rng.integers(0, classes, n)
    confidence = rng.uniform(0.12, 0.95, n)
    probs = np.full((n, classes), 0.0)
    probs[np.arange(n), y] = confidence
    rest = (1 - confidence) / (classes - 1)
    probs += (probs == 0) * rest[:, None]
    ensemble = probs ** 2 / (probs ** 2).sum(1, keepdims=True)
    monkeypatch.setattr(figures_ensemble, "test_probabilities", lambda folder, best: (y, probs, ensemble, "runs/a"))
    figures_ensemble.reliability(Path(tmp_path), {"best_member": {"run": "runs/a"}}, Report("ensemble", "t", tmp_path),
                                 tmp_path)
    fig, = captured
    fig.canvas.draw()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    boxes = [legend.get_window_extent() for legend in legends]
    points = [ax.transData.transform(line.get_xydata()) for ax in fig.axes for line in ax.get_lines()
              if line.get_marker() not in (None, "None", "")]
    points = np.concatenate(points)
    assert len(points) >= 10 and points[:, 0].min() < fig.axes[0].transData.transform((0.2, 0))[0]
    for box in boxes:
        covered = [p for p in points if box.x0 <= p[0] <= box.x1 and box.y0 <= p[1] <= box.y1]
        assert not covered, f"the legend at {box} covers {covered}"
