"""Temperature scaling: one scalar per member that divides its logits, fitted on validation NLL."""
from __future__ import annotations

import numpy as np

from dlx.core.lazy import lazy_module

optimize = lazy_module("scipy.optimize")
special = lazy_module("scipy.special")


def fit_temperature(log_probs: np.ndarray, y: np.ndarray) -> float:
    """The temperature T in [0.05, 20] minimising the NLL of softmax(log_probs / T) on (log_probs, y)."""
    logits = log_probs.astype(np.float64)
    true = logits[np.arange(len(y)), y]

    def loss(log_t):
        t = np.exp(log_t)
        return float((special.logsumexp(logits / t, axis=1) - true / t).mean())

    fit = optimize.minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(fit.x)) if fit.success and loss(fit.x) <= loss(0.0) else 1.0


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """In numpy: torch's thread pool costs more than the work on arrays of this size."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def apply_temperature(log_probs: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0:
        return log_probs
    return log_softmax(log_probs / temperature)
