"""Scores of class-probability predictions: accuracy, negative log-likelihood (nats) and expected
calibration error (equal-width confidence bins)."""
from __future__ import annotations

import numpy as np

EPS = 1e-12  # floor on probabilities before the log, so one confident mistake costs ~27.6 nats, not inf


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float((probs.argmax(1) == y).mean()) if len(y) else float("nan")


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    if not len(y):
        return float("nan")
    return float(-np.log(np.maximum(probs[np.arange(len(y)), y], EPS)).mean())


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Sum over confidence bins of |accuracy - confidence| weighted by the bin's share of samples."""
    if not len(y):
        return float("nan")
    confidence = probs.max(1)
    correct = probs.argmax(1) == y
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def scores(probs: np.ndarray, y: np.ndarray) -> dict:
    return {"accuracy": accuracy(probs, y), "nll": nll(probs, y), "ece": ece(probs, y)}


def confusion(probs: np.ndarray, y: np.ndarray) -> list[list[int]]:
    classes = probs.shape[1]
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (y, probs.argmax(1)), 1)
    return matrix.tolist()
