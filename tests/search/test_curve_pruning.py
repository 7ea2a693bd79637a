"""dlx's pruning rules for multi-objective studies (search.curve_pruning), on real Optuna studies whose trials
carry learning curves: the decisions follow Optuna's median, ASHA and Hyperband semantics."""
from __future__ import annotations

import optuna
import pytest

from dlx.search import load_space
from dlx.search.curve_pruning import brackets, should_stop

TWO = "objectives:\n  - val_accuracy: max\n  - params: min\n"


def study_with(curves: list[dict], state=optuna.trial.TrialState.COMPLETE):
    """An in-memory two-objective study holding one finished trial per curve (epoch → val_accuracy), recorded as
    the objective records it (user attr `curve`)."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    for curve in curves:
        study.add_trial(optuna.trial.create_trial(state=state, values=[curve[max(curve)], 100.0] if
                                                  state == optuna.trial.TrialState.COMPLETE else None,
                                                  user_attrs={"curve": sorted(curve.items())}))
    return study.get_trials(deepcopy=False)


def space(make_space, pruner: str, args: str = "{}", epochs: int = 9):
    return load_space(make_space(f"trials: 10\npruner: {pruner}\npruner_args: {args}\n"
                                 f"overrides: {{train.epochs: {epochs}}}\n{TWO}"))


def test_median_stops_a_curve_below_the_median_of_complete_trials(make_space):
    trials = study_with([{1: 0.8, 2: 0.9}, {1: 0.7, 2: 0.85}, {1: 0.6, 2: 0.8}])
    rule = space(make_space, "median", "{n_startup_trials: 3, n_warmup_steps: 2}")
    assert should_stop(rule, trials, 99, {1: 0.5, 2: 0.6})
    assert not should_stop(rule, trials, 99, {1: 0.5, 2: 0.86})      # above the median (0.85) at epoch 2
    assert not should_stop(rule, trials, 99, {1: 0.1})                # before epoch 2: warm-up (step < n_warmup_steps)
    assert not should_stop(rule, trials[:2], 99, {1: 0.5, 2: 0.6})    # fewer than n_startup_trials complete


def test_asha_keeps_the_top_third_at_each_rung(make_space):
    rule = space(make_space, "asha", "{min_resource: 1, reduction_factor: 3}")
    trials = study_with([{1: 0.9, 3: 0.95}, {1: 0.8, 3: 0.9}, {1: 0.7}])
    assert should_stop(rule, trials, 99, {1: 0.75})                  # 4 at rung 1: keep 1 (0.9)
    assert not should_stop(rule, trials, 99, {1: 0.95})
    assert not should_stop(rule, trials, 99, {1: 0.95, 2: 0.1})      # epoch 2 is no rung: no decision
    assert not should_stop(rule, trials, 99, {1: 0.95, 2: 0.9, 3: 0.97})
    assert should_stop(rule, trials, 99, {1: 0.95, 2: 0.9, 3: 0.91})  # 3 at rung 3: keep 1 (0.95)
    assert not should_stop(rule, [], 99, {1: 0.1})                   # the first trial at a rung goes on


def test_hyperband_compares_trials_within_their_bracket_only(make_space):
    rule = space(make_space, "hyperband", "{min_resource: 1, reduction_factor: 3}", epochs=9)
    assert brackets({"min_resource": 1, "reduction_factor": 3}, rule) == 3  # rungs from 1, 3 and 9 epochs
    trials = study_with([{1: 0.9}, {1: 0.1}, {1: 0.1}, {1: 0.9}, {1: 0.9}, {1: 0.9}])  # numbers 0..5
    assert should_stop(rule, trials, 6, {1: 0.5})      # bracket 0 (trials 0 and 3: 0.9): pruned at epoch 1
    assert not should_stop(rule, trials, 7, {1: 0.5})  # bracket 1 starts at epoch 3: no rung at epoch 1
    assert should_stop(rule, trials, 6, {1: float("nan")})


@pytest.mark.parametrize("pruner", ["median", "asha", "hyperband"])
def test_minimised_first_objective(make_space, pruner):
    rule = load_space(make_space(f"trials: 10\npruner: {pruner}\npruner_args: {{}}\n"
                                 "objectives:\n  - val_loss: min\n  - params: min\n"))
    trials = study_with([{1: 0.2}, {1: 0.3}, {1: 0.25}])
    assert should_stop(rule, trials, 3, {1: 5.0}) and not should_stop(rule, trials, 3, {1: 0.1})
