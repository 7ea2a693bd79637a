"""Pruning for multi-objective searches, decided by dlx: Optuna's pruners refuse studies with several objectives
(`Trial.report` and `should_prune` raise), so the objective records the first objective's learning curve in the
trial's user attr `curve` ([[epoch, value], ...]) and asks `should_stop` after each epoch. Not as Optuna's
intermediate values: TPE ranks pruned trials of a multi-objective study by them with `study.direction`, which
raises for several objectives (Optuna 5.0).

The rules follow Optuna's pruners of the same names, over the curves recorded in the study:
- median: stop when the trial's best value so far is worse than the median of COMPLETE trials at this epoch;
- asha: at rung epochs min_resource·η^k, go on only if the trial is in the top 1/η of all trials' values there;
- hyperband: trials are dealt round-robin to brackets s = 0..S; bracket s runs asha from rung η^s, against
  the trials of its own bracket only.
Optuna's keyword names (n_startup_trials, n_warmup_steps, min_resource, reduction_factor, ...) and dlx's
defaults (search.samplers) apply.
"""
from __future__ import annotations

import math
import statistics
from typing import Callable

from dlx.core.registry import Registry
from dlx.search.samplers import PRUNER_DEFAULTS

DEFAULTS = {"median": {**PRUNER_DEFAULTS["median"], "n_min_trials": 1},
            "asha": {**PRUNER_DEFAULTS["asha"], "min_early_stopping_rate": 0},
            "hyperband": PRUNER_DEFAULTS["hyperband"]}

RULES: Registry[Callable] = Registry("pruner", key="pruner")


CURVE_ATTR = "curve"


def curve_of(frozen_trial) -> dict[int, float]:
    """Epoch → value of the trial's first objective: Optuna's intermediate values, or dlx's `curve` user attr."""
    if frozen_trial.intermediate_values:
        return dict(frozen_trial.intermediate_values)
    return {int(epoch): float(value) for epoch, value in frozen_trial.user_attrs.get(CURVE_ATTR) or []}


def should_stop(space, trials: list, number: int, curve: dict[int, float]) -> bool:
    """Whether trial `number`, whose curve so far is `curve` (epoch → value), should stop now. `trials` are
    the study's frozen trials (their intermediate values are the other curves)."""
    if not curve:
        return False
    step = max(curve)
    if not math.isfinite(curve[step]):
        return True
    args = {**DEFAULTS.get(space.pruner, {}), **space.pruner_args}
    maximize = space.goals[0].direction == "maximize"
    others = [(t.number, t.state.name, curve_of(t)) for t in trials if t.number != number]
    return RULES.get(space.pruner)(args, space, others, number, curve, maximize)


def _better(a: float, b: float, maximize: bool) -> bool:
    return a > b if maximize else a < b


@RULES.register("none")
def _none(args, space, others, number, curve, maximize) -> bool:
    return False


@RULES.register("median")
def _median(args, space, others, number, curve, maximize) -> bool:
    step = max(curve)
    complete = [seen for _, state, seen in others if state == "COMPLETE"]
    if step < args["n_warmup_steps"] or len(complete) < args["n_startup_trials"]:
        return False
    at_step = [seen[step] for seen in complete if step in seen]
    at_step = [v for v in at_step if math.isfinite(v)]
    if len(at_step) < max(1, args["n_min_trials"]):
        return False
    best = max(curve.values()) if maximize else min(curve.values())
    return _better(statistics.median(at_step), best, maximize)


def _rungs_failed(curve: dict, others: list, min_resource: int, eta: int, rate: int, maximize: bool) -> bool:
    """ASHA: is the trial outside the top 1/eta at any rung it has reached (the latest one decides)?"""
    step = max(curve)
    rung = 0
    while True:
        at = min_resource * eta ** (rate + rung)
        if at > step:
            return False
        if at == step:  # the curve just reached this rung: compare it with every trial that reached it before
            value = curve[step]
            competing = [seen[at] for _, _, seen in others if at in seen]
            competing = sorted([v for v in competing if math.isfinite(v)] + [value], reverse=maximize)
            keep = max(1, len(competing) // eta)
            return _better(competing[keep - 1], value, maximize)
        rung += 1


@RULES.register("asha")
def _asha(args, space, others, number, curve, maximize) -> bool:
    return _rungs_failed(curve, others, int(args["min_resource"]), int(args["reduction_factor"]),
                         int(args["min_early_stopping_rate"]), maximize)


def brackets(args, space) -> int:
    """Hyperband's bracket count: floor(log_eta(max/min)) + 1."""
    low = int(args["min_resource"])
    high = int(args.get("max_resource") or space.base["train"]["epochs"])
    eta = int(args["reduction_factor"])
    return max(1, int(math.floor(math.log(max(1, high // low), eta) + 1e-9)) + 1)


@RULES.register("hyperband")
def _hyperband(args, space, others, number, curve, maximize) -> bool:
    count = brackets(args, space)
    bracket = number % count
    same = [other for other in others if other[0] % count == bracket]
    return _rungs_failed(curve, same, int(args["min_resource"]), int(args["reduction_factor"]), bracket, maximize)
