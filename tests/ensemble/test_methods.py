"""The pooling methods, metrics and diversity measures on synthetic predictions (no training)."""
from __future__ import annotations

import numpy as np
import pytest

from dlx.ensemble import diversity
from dlx.ensemble.methods import METHODS, get_method, mixture_nll
from dlx.ensemble.metrics import ece, nll
from dlx.core.errors import DlxError


def _synthetic(members=4, samples=400, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, samples)
    logits = rng.normal(size=(members, samples, classes))
    for m in range(members):  # member m sees the true class with strength 3 - m (the last one is poor)
        logits[m, np.arange(samples), y] += max(0.0, 3.0 - m)
    log_probs = logits - np.log(np.exp(logits).sum(2, keepdims=True))
    return log_probs, y


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_returns_weights_on_the_simplex(name):
    log_probs, y = _synthetic()
    combination = get_method(name)(log_probs, y)
    assert combination.weights.shape == (4,)
    assert combination.weights.min() >= 0 and combination.weights.sum() == pytest.approx(1)
    probs = combination.predict(log_probs)
    assert probs.shape == (400, 5) and np.allclose(probs.sum(1), 1) and np.isfinite(probs).all()


def test_weighted_is_no_worse_than_average_or_best_member_and_favours_good_members():
    log_probs, y = _synthetic()
    weights = get_method("weighted")(log_probs, y, metric="nll").weights
    assert mixture_nll(weights, log_probs, y) <= mixture_nll(np.full(4, 0.25), log_probs, y)
    assert mixture_nll(weights, log_probs, y) <= min(nll(np.exp(lp), y) for lp in log_probs)
    assert weights[3] < weights[0]


def test_greedy_keeps_the_best_ensemble_on_its_path():
    log_probs, y = _synthetic()
    combination = get_method("greedy")(log_probs, y, rounds=30)
    probs = combination.predict(log_probs)
    best_single = max((np.exp(lp).argmax(1) == y).mean() for lp in log_probs)
    assert (probs.argmax(1) == y).mean() >= best_single - 0.02


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(DlxError, match="unknown ensemble method 'wieghted'.*Did you mean 'weighted'"):
        get_method("wieghted")


def test_ece_is_zero_for_calibrated_confident_predictions_and_positive_otherwise():
    y = np.array([0, 1, 0, 1])
    assert ece(np.eye(2)[y], y) == pytest.approx(0)
    assert ece(np.full((4, 2), 0.5) + np.array([0.49, -0.49]), y) > 0.4


def test_identical_members_are_near_duplicates():
    log_probs, y = _synthetic(members=2)
    log_probs[1] = log_probs[0]
    [pair] = diversity.pairs(["a", "b"], log_probs, y)
    assert pair["near_duplicate"] and pair["disagreement"] == 0 and pair["error_correlation"] == pytest.approx(1)


def test_temperature_cools_overconfident_members():
    from dlx.ensemble.temperature import apply_temperature, fit_temperature
    log_probs, y = _synthetic(members=1)
    hot = log_probs[0] * 4  # 4x sharper than it should be
    t = fit_temperature(hot, y)
    assert t > 1.2
    assert nll(np.exp(apply_temperature(hot, t)), y) < nll(np.exp(hot - np.log(np.exp(hot).sum(1, keepdims=True))), y)
