"""Search distributions: `{float: [lo, hi], log: true}`, `{int: [lo, hi], step: 16}`, `{choice: [...]}`.

Each YAML entry parses into one small object that validates itself in its constructor (as Optuna's
`distributions.py` does) and knows how to sample itself from a trial and list its grid values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from dlx.core.errors import DlxError, did_you_mean

KINDS = ("float", "int", "choice")
MAX_GRID_VALUES = 100_000  # values of one grid parameter
MAX_GRID_POINTS = 1_000_000  # combinations: Optuna's GridSampler lists every one of them in memory


def _check_grid_size(count: int) -> None:
    """Grids are counted before they are listed: `{int: [1, 1e12]}` would otherwise fill memory."""
    if count > MAX_GRID_VALUES:
        raise DlxError(f"this grid has {count} values; a grid parameter is limited to {MAX_GRID_VALUES} values "
                       "(MAX_GRID_VALUES). Raise `step`, narrow the range, or use another sampler.")
OPTIONS = {"float": ("log", "step", "when"), "int": ("log", "step", "when"), "choice": ("when",)}


def _number(value, what: str, integer: bool):
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or (isinstance(value, float) and not math.isfinite(value)):
        kind = "an integer" if integer else "a finite number"
        raise DlxError(f"{what} must be {kind}, but got {value!r}.")
    return value


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False
    step: Optional[float] = None

    def __post_init__(self):
        _number(self.low, "low", False), _number(self.high, "high", False)
        if not self.low <= self.high:
            raise DlxError(f"`low <= high` must hold, but got (low={self.low}, high={self.high}); swap the bounds.")
        if self.log and self.low <= 0:
            raise DlxError(f"`log: true` needs bounds > 0, but got (low={self.low}, high={self.high}); raise low "
                           "above 0 or drop `log`.")
        if self.step is not None:
            _number(self.step, "step", False)
            if self.step <= 0 or self.log:
                raise DlxError(f"`step` must be > 0 and can't be combined with `log: true`, but got "
                               f"(step={self.step}, log={self.log}).")

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log, step=self.step)

    def grid_count(self) -> Optional[int]:
        if self.step is None:
            return None
        return int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1

    def grid(self) -> Optional[list]:
        count = self.grid_count()
        if count is None:
            return None
        _check_grid_size(count)
        return [round(self.low + i * self.step, 12) for i in range(count)]

    def to_dict(self) -> dict:
        return {"float": [self.low, self.high], **({"log": True} if self.log else {}),
                **({"step": self.step} if self.step is not None else {})}


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1
    log: bool = False

    def __post_init__(self):
        _number(self.low, "low", True), _number(self.high, "high", True), _number(self.step, "step", True)
        if not self.low <= self.high:
            raise DlxError(f"`low <= high` must hold, but got (low={self.low}, high={self.high}); swap the bounds.")
        if self.step < 1:
            raise DlxError(f"`step` must be >= 1, but got (step={self.step}).")
        if self.log and (self.low <= 0 or self.step != 1):
            raise DlxError(f"`log: true` needs low > 0 and step 1, but got (low={self.low}, step={self.step}).")

    def suggest(self, trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def grid_count(self) -> int:
        return (self.high - self.low) // self.step + 1

    def grid(self) -> list:
        _check_grid_size(self.grid_count())
        return list(range(self.low, self.high + 1, self.step))

    def to_dict(self) -> dict:
        return {"int": [self.low, self.high], **({"step": self.step} if self.step != 1 else {}),
                **({"log": True} if self.log else {})}


@dataclass(frozen=True)
class Choice:
    choices: tuple

    def __post_init__(self):
        if not self.choices:
            raise DlxError("a choice list needs at least one value, but got an empty list; list the values to try.")
        for value in self.choices:
            if not (value is None or isinstance(value, (bool, int, float, str))):
                raise DlxError(f"choices must be plain values (numbers, strings, booleans, null), but got {value!r}.")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise DlxError(f"choices must be distinct, but got {list(self.choices)}.")

    def suggest(self, trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def grid_count(self) -> int:
        return len(self.choices)

    def grid(self) -> list:
        return list(self.choices)

    def to_dict(self) -> dict:
        return {"choice": list(self.choices)}


Distribution = FloatRange | IntRange | Choice


@dataclass(frozen=True)
class Param:
    """One searched key path, its distribution, and an optional condition on earlier parameters."""

    path: str
    distribution: Distribution
    when: Optional[dict] = None  # {other_path: [values]}: sampled only when every other_path took one of them

    def active(self, sampled: dict) -> bool:
        return all(p in sampled and sampled[p] in values for p, values in (self.when or {}).items())

    def to_dict(self) -> dict:
        return {**self.distribution.to_dict(), **({"when": self.when} if self.when else {})}


def _pair(raw, kind: str) -> tuple:
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise DlxError(f"`{kind}` expects two bounds like {{{kind}: [1, 8]}}, but got {raw!r}.", key=kind)
    return tuple(raw)


def parse_distribution(raw: Any) -> tuple[Distribution, Optional[dict]]:
    """One YAML entry → (distribution, when). Raises DlxError with a key relative to the entry."""
    if isinstance(raw, list):
        raw = {"choice": raw}
    if not isinstance(raw, dict):
        raise DlxError(f"expected a mapping like {{float: [0.001, 0.1]}}, {{int: [1, 8]}} or {{choice: [1, 2]}}, "
                       f"but got {raw!r}.")
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) != 1:
        raise DlxError(f"give exactly one of {', '.join(KINDS)}, but got keys {sorted(map(str, raw))}.")
    kind = kinds[0]
    unknown = [k for k in raw if k != kind and k not in OPTIONS[kind]]
    if unknown:
        raise DlxError(f"unknown option '{unknown[0]}' for a {kind} parameter; expected one of: "
                       f"{', '.join(OPTIONS[kind])}.{did_you_mean(str(unknown[0]), OPTIONS[kind])}", key=str(unknown[0]))
    try:
        if kind == "choice":
            if not isinstance(raw["choice"], list):
                raise DlxError(f"`choice` expects a list of values, but got {raw['choice']!r}.")
            dist = Choice(tuple(raw["choice"]))
        elif kind == "int":
            low, high = _pair(raw["int"], "int")
            dist = IntRange(low, high, raw.get("step", 1), bool(raw.get("log", False)))
        else:
            low, high = _pair(raw["float"], "float")
            dist = FloatRange(low, high, bool(raw.get("log", False)), raw.get("step"))
    except DlxError as exc:
        raise exc.with_context(key_prefix=None if exc.key else kind) from None
    return dist, _parse_when(raw.get("when"))


def _parse_when(when) -> Optional[dict]:
    if when is None:
        return None
    if not isinstance(when, dict) or not when:
        raise DlxError(f"`when` expects a mapping {{other.param: value or a list of values}}, but got {when!r}.", key="when")
    return {str(k): (list(v) if isinstance(v, list) else [v]) for k, v in when.items()}
