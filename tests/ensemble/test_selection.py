"""The `auto` method's parts on synthetic predictions (no training): folds, ties, the guard, the output
temperature, and how members are labelled."""
from __future__ import annotations

import numpy as np

from dlx.ensemble.labels import differences, identifiers
from dlx.ensemble.methods import Combination
from dlx.ensemble.metrics import accuracy, nll
from dlx.ensemble.selection import AUTO, BEST_MEMBER, Fitted, calibrate, fold_of, guard, select


def _synthetic(members=4, samples=400, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, samples)
    logits = rng.normal(size=(members, samples, classes))
    for m in range(members):
        logits[m, np.arange(samples), y] += max(0.0, 3.0 - m)
    return logits - np.log(np.exp(logits).sum(2, keepdims=True)), y


def test_folds_keep_every_class_in_every_fold():
    y = np.repeat(np.arange(4), 10)
    folds = fold_of(y, 5)
    for k in range(5):
        assert sorted(np.unique(y[folds == k])) == [0, 1, 2, 3]
    assert (fold_of(y, 5) == folds).all()  # seeded


def test_identical_members_tie_and_the_simplest_method_wins():
    log_probs, y = _synthetic(members=1)
    pool = np.repeat(log_probs, 3, axis=0)
    selection = select(pool, y, "accuracy")
    assert selection.winner == "average" and selection.fitted.name == "average"
    assert [c["method"] for c in selection.candidates] == list(AUTO)
    assert "the simpler method is kept" in selection.reason


def test_guard_falls_back_when_the_refit_is_worse_than_the_best_member():
    log_probs, y = _synthetic()
    worst = Fitted("weighted", [1.0] * 4, Combination(np.eye(4)[3]))  # all weight on the poor member
    fallback, used, note = guard(worst, log_probs, y, "accuracy")
    assert fallback in ("plain average", BEST_MEMBER) and used.name == fallback
    assert "worse than" in note and f"so the {fallback} is used instead" in note
    assert accuracy(used.predict(log_probs), y) > accuracy(worst.predict(log_probs), y)
    average = Fitted("average", [1.0] * 4, Combination(np.full(4, 0.25)))
    assert guard(average, log_probs, y, "accuracy") == (None, average, "")


def test_output_temperature_lowers_nll_and_keeps_every_prediction():
    log_probs, y = _synthetic()
    fitted = Fitted("average", [1.0] * 4, Combination(np.full(4, 0.25)))
    before = fitted.predict(log_probs)
    calibrate(fitted, log_probs, y)
    after = fitted.predict(log_probs)
    assert fitted.combination.temperature != 1.0
    assert (after.argmax(1) == before.argmax(1)).all() and np.allclose(after.sum(1), 1)
    assert nll(after, y) < nll(before, y)


def test_identifiers_are_relative_to_the_common_parent(tmp_path):
    paths = [tmp_path / "runs" / "digits-20261125-140102", tmp_path / "runs" / "digits-20261125-140103",
             tmp_path / "old" / "digits-20261125-140102"]
    assert identifiers(paths) == ("run", ["runs/digits-20261125-140102", "runs/digits-20261125-140103",
                                          "old/digits-20261125-140102"])
    trials = [tmp_path / "search" / "trials" / str(n) for n in (3, 12)]
    assert identifiers(trials) == ("trial", ["3", "12"])


def test_differences_show_only_what_varies():
    layers = ["Flatten", {"Dense": {"units": 64}}, {"Dense": {"units": "classes"}}]
    base = {"name": "a", "seed": 0, "model": {"vars": {"width": 16, "depth": 1}, "layers": layers},
            "train": {"optimizer": {"lr": 0.003}, "epochs": 5}}
    other = {**base, "name": "b", "model": {**base["model"], "vars": {"width": 32, "depth": 1}},
             "train": {"optimizer": {"lr": 0.0123456}, "epochs": 5}}
    assert differences([base, other]) == ["width=16 lr=0.003", "width=32 lr=0.0123"]
    deeper = {**base, "model": {**base["model"], "layers": ["Flatten", {"Dense": {"units": 64}},
                                                            {"Dropout": 0.2}, {"Dense": {"units": "classes"}}]}}
    assert differences([base, deeper]) == ["(fewer layers)", "Dropout(0.2)"]


def _correlated_pool(seed=0, members=7, val=143, test=2000, classes=10):
    """Members that share most of their errors, with a digits-sized validation set: a greedy pick of a few of them
    makes almost no errors on the samples it was picked on."""
    rng = np.random.default_rng(seed)
    n = val + test
    y = rng.integers(0, classes, n)
    logits = rng.normal(size=(1, n, classes)) + 0.8 * rng.normal(size=(members, n, classes))
    logits[:, np.arange(n), y] += rng.uniform(1.5, 4.5, (members, 1))
    log_probs = logits - np.log(np.exp(logits).sum(2, keepdims=True))
    return log_probs[:, :val], y[:val], log_probs[:, val:], y[val:]


def test_output_temperature_comes_from_predictions_the_weights_never_saw():
    val, y_val, test, y_test = _correlated_pool()
    selection = select(val, y_val, "accuracy")
    assert selection.fitted.name == "greedy"
    honest = nll(selection.fitted.predict(test), y_test)
    in_sample = calibrate(selection.fitted, val, y_val)  # what fitting the temperature on the refit's own data gives
    assert in_sample.combination.temperature <= 0.06  # driven to the bound: the refit erred on almost nothing
    assert honest < 0.5 * nll(in_sample.predict(test), y_test)
    best = min(range(len(val)), key=lambda m: nll(np.exp(val[m]), y_val))
    assert honest <= nll(np.exp(test[best]), y_test)
