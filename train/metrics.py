"""Scores of class predictions computed once for every layer that shows them: the confusion matrix (dlx evaluate,
ensembles, reports) and calibration by confidence bins (the ensemble's ECE, the report's reliability diagram)."""
from __future__ import annotations

import numpy as np

EPS = 1e-12  # floor on probabilities before the log, so one confident mistake costs ~27.6 nats, not inf


def confusion_counts(y: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts: rows are true classes, columns predicted ones."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y), np.asarray(predicted)), 1)
    return matrix


def calibration_bins(probs: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean confidence, accuracy, samples) of each non-empty equal-width confidence bin, confidence being the
    highest class probability."""
    confidence, correct = probs.max(1), probs.argmax(1) == y
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = [(confidence[index == b].mean(), correct[index == b].mean(), (index == b).sum())
            for b in range(bins) if (index == b).any()]
    return tuple(np.array([row[k] for row in rows]) for k in range(3))


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: over confidence bins, |accuracy - confidence| weighted by the bin's share of
    samples."""
    if not len(y):
        return float("nan")
    confidence, accuracy, counts = calibration_bins(probs, y, bins)
    return float(sum(n / len(y) * abs(a - c) for c, a, n in zip(confidence, accuracy, counts)))
