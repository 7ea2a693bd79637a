"""The scores shared by evaluate, ensembles and reports (train.metrics) and the one number formatter."""
import numpy as np
import pytest

from dlx.core.numbers import fmt
from dlx.core.processes import pid_alive
from dlx.train.metrics import calibration_bins, confusion_counts, ece


def test_ece_is_the_sample_weighted_gap_of_the_calibration_bins():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    y = np.array([0, 1, 1, 1])
    confidence, accuracy, counts = calibration_bins(probs, y, bins=10)
    assert counts.tolist() == [1, 1, 1, 1] and accuracy.tolist() == [0.0, 1.0, 1.0, 1.0]
    assert ece(probs, y, bins=10) == pytest.approx(np.mean(np.abs(accuracy - confidence))) == pytest.approx(0.3)


def test_confusion_counts_rows_are_true_classes():
    assert confusion_counts(np.array([0, 0, 1]), np.array([0, 1, 1]), 3).tolist() == [[1, 1, 0], [0, 1, 0],
                                                                                        [0, 0, 0]]


def test_one_formatter_serves_reports_and_fixed_width_tables():
    assert (fmt(0.5), fmt(None), fmt(12345.6), fmt(1234), fmt(True)) == ("0.5000", "–", "1.235e+04", "1,234", "yes")
    assert fmt(0.5, 2, style="fixed", empty="-") == "0.50" and fmt(None, style="fixed", empty="-") == "-"
    assert fmt(0.000123456, style="general") == "0.0001235" and fmt(True, style="general") == "True"


def test_pid_alive():
    import os
    assert pid_alive(os.getpid())
