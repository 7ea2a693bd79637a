"""Scores of class-probability predictions: accuracy, negative log-likelihood (nats) and expected
calibration error (equal-width confidence bins, computed in train.metrics)."""
from __future__ import annotations

import numpy as np

from dlx.train.metrics import EPS, confusion_counts, ece


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float((probs.argmax(1) == y).mean()) if len(y) else float("nan")


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    if not len(y):
        return float("nan")
    return float(-np.log(np.maximum(probs[np.arange(len(y)), y], EPS)).mean())


def scores(probs: np.ndarray, y: np.ndarray) -> dict:
    return {"accuracy": accuracy(probs, y), "nll": nll(probs, y), "ece": ece(probs, y)}


def confusion(probs: np.ndarray, y: np.ndarray) -> list[list[int]]:
    return confusion_counts(y, probs.argmax(1), probs.shape[1]).tolist()
