"""What a search optimises and what it must respect: `objectives:` (metric → max|min) and `constraints:`
("params <= 50000"), parsed into small objects that check themselves.

Metrics come from three places: the validation learning curve (val_accuracy, val_loss: reported every epoch,
so a pruner can use them), the model's shape (params, mflops: counted before training) and measurement
(latency_ms: batch-1 inference before training; train_seconds: the trial's wall-clock training time).
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Optional

from dlx.core.errors import DlxError, did_you_mean
from dlx.core.registry import Registry

CURVE, SHAPE, MEASURED, RUN = "curve", "shape", "measured", "run"

METRICS: Registry[str] = Registry("objective metric", key="objectives")
for _name, _source in (("val_accuracy", CURVE), ("val_loss", CURVE), ("params", SHAPE), ("mflops", SHAPE),
                       ("latency_ms", MEASURED), ("train_seconds", RUN)):
    METRICS.register(_name, _source)

DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}
INFEASIBLE = 1e12  # constraint value of a metric that was never measured (Optuna refuses NaN)


@dataclass(frozen=True)
class Goal:
    """One objective: a metric and whether bigger or smaller is better."""

    metric: str
    direction: str  # maximize | minimize

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b

    def to_dict(self) -> dict:
        return {self.metric: "max" if self.direction == "maximize" else "min"}


def source(metric: str) -> str:
    """Where a metric's value comes from: curve | shape | measured | run."""
    return METRICS.get(metric)


def parse_objectives(raw: list, file=None) -> list[Goal]:
    """`[{val_accuracy: max}, {params: min}]` → Goals; the first must have a learning curve (pruning and the
    'best' trial go by it)."""
    goals: list[Goal] = []
    for index, item in enumerate(raw):
        key = f"objectives.{index}"
        if not isinstance(item, dict) or len(item) != 1:
            raise DlxError(f"each objective is one `metric: max|min` pair, such as `val_accuracy: max`, but got "
                           f"{item!r}.", file=file, key=key)
        (metric, way), = item.items()
        metric = METRICS.canonical(str(metric), key=key, file=file)
        if str(way).lower() not in DIRECTIONS:
            raise DlxError(f"an objective's direction is max or min, but got {way!r} for '{metric}'.", file=file,
                           key=f"{key}.{metric}")
        if metric in [g.metric for g in goals]:
            raise DlxError(f"'{metric}' is listed twice in objectives; list each metric once.", file=file, key=key)
        goals.append(Goal(metric, DIRECTIONS[str(way).lower()]))
    if not goals:
        raise DlxError("objectives needs at least one `metric: max|min` entry.", file=file, key="objectives")
    if source(goals[0].metric) != CURVE:
        raise DlxError(f"the first objective must be val_accuracy or val_loss (pruning and the best trial go by its "
                       f"learning curve), but got '{goals[0].metric}'; list it after one of them.", file=file,
                       key="objectives.0")
    return goals


_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")
_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


@dataclass(frozen=True)
class Constraint:
    """`metric op bound`, e.g. params <= 50000. `excess` is Optuna's constraint value: <= 0 when it holds."""

    metric: str
    op: str
    bound: float

    def holds(self, value: Optional[float]) -> bool:
        return value is not None and math.isfinite(value) and _OPS[self.op](value, self.bound)

    def excess(self, value: Optional[float]) -> float:
        if value is None or not math.isfinite(value):
            return INFEASIBLE
        over = value - self.bound if self.op in ("<=", "<") else self.bound - value
        return over if self.op in ("<=", ">=") or over != 0 else 1e-12  # a strict bound met exactly is violated

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def parse_constraint(text, file=None, key: str = "constraints", known: Optional[list[str]] = None) -> Constraint:
    """"params <= 50000" → Constraint; `known` limits the metrics (default: every objective metric)."""
    match = _CONSTRAINT.match(str(text)) if isinstance(text, str) else None
    if not match:
        raise DlxError(f"a constraint reads `metric <= number` (or <, >=, >), such as \"params <= 50000\", but got "
                       f"{text!r}.", file=file, key=key)
    metric, op, number = match.groups()
    names = known or METRICS.names()
    if metric not in names:
        raise DlxError(f"unknown metric '{metric}' in the constraint {text!r}; expected one of: "
                       f"{', '.join(names)}.{did_you_mean(metric, names)}", file=file, key=key)
    try:
        bound = float(number)
    except ValueError:
        raise DlxError(f"the bound of the constraint {text!r} is not a number.", file=file, key=key) from None
    return Constraint(metric, op, bound)


def parse_constraints(raw: list, file=None) -> list[Constraint]:
    return [parse_constraint(text, file, f"constraints.{index}") for index, text in enumerate(raw or [])]


def set_constraints(trial, constraints: list[Constraint], metrics: dict) -> None:
    """Record each constraint's value for `metrics` on the trial (Optuna's `Trial.set_constraint`; <= 0 holds):
    samplers then prefer feasible trials, and `FrozenTrial.constraints` says which trials are feasible."""
    for constraint in constraints:
        trial.set_constraint(str(constraint), constraint.excess(metrics.get(constraint.metric)))


def feasible(frozen_trial) -> bool:
    """Every constraint recorded on the trial holds (a trial without constraints is feasible)."""
    return all(value <= 0 for value in frozen_trial.constraints.values())
