"""The search space file: YAML → `SearchSpace` (pydantic fields + distribution objects), validated like a spec.

`base` is an experiment spec path relative to the space file (or, in a search folder's resolved
`search.yaml`, the spec itself inline), so a search folder is enough to resume its search.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dlx.archs.check import validate_spec
from dlx.archs.parse import check_vars_referenced
from dlx.core.errors import DlxError, did_you_mean
from dlx.experiment.load import expand_shorthands, spec_to_dict, validation_error
from dlx.experiment.schema import ModelSpec
from dlx.search.distributions import Param, parse_distribution
from dlx.search.objectives import Constraint, Goal, parse_constraints, parse_objectives
from dlx.search.samplers import check_multi, check_pruner, check_sampler, grid_size
from dlx.experiment.overrides import apply_overrides, get_path, set_path
from dlx.experiment.yamlio import line_of, load_yaml_mapping, read_text

DIRECTIONS = {"val_accuracy": "maximize", "val_loss": "minimize"}
SPEC_NOT_SPACE = ("this is an experiment spec (for `dlx train`), not a search space. A search space names an "
                  "experiment spec as its `base` and the `params` to vary in it, each with a distribution, e.g. "
                  "`base: digits.yaml`, `trials: 12` and `params: {train.optimizer.lr: {float: [1.0e-3, 3.0e-2], "
                  "log: true}}`; see configs/search_digits.yaml.")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value) -> Optional[float]:
    """30, "45s", "30m", "2h" → seconds."""
    if value is None:
        return None
    match = _DURATION.match(str(value)) if not isinstance(value, bool) else None
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"timeout must be a positive duration like 90, 45s, 30m or 2h, but got {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


class SpaceFile(BaseModel):
    """The fields of a search space file, before its params are parsed."""

    model_config = ConfigDict(extra="forbid")

    base: Union[str, dict] = Field(description="experiment spec (path relative to this file), or inline")
    overrides: dict[str, Any] = Field(default_factory=dict, description="key path → value set in the base spec "
                                                                        "for every trial (like --set)")
    name: Optional[str] = Field(None, description="study name (default: the space file's name)")
    metric: Literal["val_accuracy", "val_loss"] = Field("val_accuracy", description="validation metric to optimise")
    direction: Optional[Literal["maximize", "minimize"]] = Field(None, description="default: from the metric")
    sampler: str = Field("tpe", description="random | tpe | gp | cmaes | genetic | nsga2 | nsga3 | grid | qmc")
    sampler_args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the Optuna sampler")
    pruner: str = Field("none", description="none | median | hyperband | asha")
    pruner_args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the Optuna pruner")
    trials: Optional[int] = Field(None, ge=1, le=1_000_000, description="COMPLETE + PRUNED trials to reach")
    timeout: Optional[Union[int, float, str]] = Field(None, description="wall-clock limit per invocation: 90, 30m, 2h")
    keep: Optional[int] = Field(10, ge=1, description="keep checkpoints of the best k trials; null = keep all")
    seed: int = Field(0, ge=0, description="sampler seed")
    params: dict[str, Any] = Field(min_length=1, description="key path → distribution")
    objectives: Optional[list[Any]] = Field(None, description="[metric: max|min, ...]; several make a "
                                                              "multi-objective search (replaces metric)")
    constraints: list[str] = Field(default_factory=list, description='"metric <= bound" each trial must meet')
    nproc: int = Field(1, ge=1, le=1024, description="processes (devices) each trial trains on, through torchrun")

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value):
        parse_duration(value)
        return value


@dataclass
class SearchSpace:
    file: Optional[Path]
    base: dict  # the resolved base experiment spec (overrides applied, validated)
    name: str
    metric: str
    direction: str
    sampler: str
    sampler_args: dict
    pruner: str
    pruner_args: dict
    trials: Optional[int]
    timeout: Optional[float]
    keep: Optional[int]
    seed: int
    params: list[Param] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)               # the objectives (one: metric and direction)
    constraints: list[Constraint] = field(default_factory=list)
    nproc: int = 1  # processes each trial trains on (torchrun); with --devices, devices each worker holds

    def __post_init__(self):
        self.goals = self.goals or [Goal(self.metric, self.direction)]

    @property
    def multi(self) -> bool:
        """Several objectives: an Optuna multi-objective study, a Pareto front instead of one best."""
        return len(self.goals) > 1

    @property
    def directions(self) -> list[str]:
        return [g.direction for g in self.goals]

    def fingerprint(self) -> dict:
        """What must not change when a study is resumed: comparing trials across it would be meaningless."""
        found = {"metric": self.metric, "direction": self.direction, "base": self.base,
                 "params": {p.path: p.to_dict() for p in self.params}}
        if self.multi:
            found["objectives"] = [g.to_dict() for g in self.goals]
        if self.constraints:
            found["constraints"] = [str(c) for c in self.constraints]
        return found

    def to_yaml_dict(self) -> dict:
        return {"name": self.name, "metric": self.metric, "direction": self.direction, "sampler": self.sampler,
                "sampler_args": self.sampler_args, "pruner": self.pruner, "pruner_args": self.pruner_args,
                "trials": self.trials, "timeout": self.timeout, "keep": self.keep, "seed": self.seed,
                "params": {p.path: p.to_dict() for p in self.params}, "base": self.base,
                **({"objectives": [g.to_dict() for g in self.goals]} if self.multi else {}),
                **({"constraints": [str(c) for c in self.constraints]} if self.constraints else {}),
                **({"nproc": self.nproc} if self.nproc > 1 else {})}

    def apply(self, params: dict) -> dict:
        """The base spec with sampled values set at their key paths."""
        spec = json.loads(json.dumps(self.base))
        for path, value in params.items():
            set_path(spec, path.split("."), value, origin="search")
        return spec


def load_space(path: str | Path, overrides: Optional[list[str]] = None) -> SearchSpace:
    """Read and validate a space file; `overrides` (--set) apply to its base spec."""
    path = Path(path)
    data = load_yaml_mapping(path, "search space")
    text = read_text(path)
    return parse_space(data, path, text, overrides)


def parse_space(data: dict, file: Optional[Path] = None, text: Optional[str] = None,
                overrides: Optional[list[str]] = None) -> SearchSpace:
    try:
        raw = SpaceFile.model_validate(data)
    except ValidationError as exc:
        if "base" not in data and {"data", "model"} & set(data):
            raise DlxError(SPEC_NOT_SPACE, file=file) from None
        raise validation_error(exc, SpaceFile, file, text, every=True) from None
    base = _load_base(raw.base, file, raw.overrides, list(overrides or []))
    params = [_parse_param(name, value, base, file, text) for name, value in raw.params.items()]
    _check_conditions(params, file, text)
    check_sampler(raw.sampler, raw.sampler_args, file=file)
    check_pruner(raw.pruner, raw.pruner_args, file=file)
    name = raw.name or (file.stem if file else "search")
    goals = _goals(raw, file)
    space = SearchSpace(file, base, name, goals[0].metric, goals[0].direction, raw.sampler.lower(),
                        raw.sampler_args, raw.pruner.lower(), raw.pruner_args, raw.trials, parse_duration(raw.timeout),
                        raw.keep, raw.seed, params, goals, parse_constraints(raw.constraints, file), raw.nproc)
    check_multi(space)
    if space.sampler == "grid":  # counted now, before anything is listed or trained
        grid_size(space)
    return space


def _goals(raw: SpaceFile, file) -> list[Goal]:
    """The objectives: `objectives:` if given (metric/direction may only repeat its first), else metric/direction."""
    if raw.objectives is None:
        return [Goal(raw.metric, raw.direction or DIRECTIONS[raw.metric])]
    goals = parse_objectives(raw.objectives, file)
    given = raw.model_fields_set
    if ("metric" in given and raw.metric != goals[0].metric) or \
            ("direction" in given and raw.direction not in (None, goals[0].direction)):
        raise DlxError(f"`metric`/`direction` say {raw.metric} {raw.direction or ''} but the first objective is "
                       f"{goals[0].metric} {goals[0].direction}; give `objectives:` alone.", file=file,
                       key="objectives")
    return goals


def _load_base(base, file: Optional[Path], space_overrides: dict, cli_overrides: list[str]) -> dict:
    """The base spec with the space's `overrides:` and then --set applied, validated.

    Errors name the place to fix: `overrides.<key>` in the space file for a bad override, `base.<key>` in
    the space file for an inline base, and the base spec file (at its own key) for a base given by path."""
    if isinstance(base, dict):
        data, base_file, text = expand_shorthands(base), None, None
    else:
        base_path = Path(base) if Path(base).is_absolute() or file is None else file.parent / base
        try:
            found = base_path.is_file()
        except OSError as exc:  # e.g. a file name too long for the file system
            raise DlxError(f"can't read the base spec {str(base_path)[:200]} ({exc.strerror or exc}).",
                           file=file, key="base") from None
        if not found:
            raise DlxError(f"the base spec {base_path} does not exist; give a path relative to the space file.",
                           file=file, key="base")
        data, base_file = expand_shorthands(load_yaml_mapping(base_path, "spec")), base_path
        text = read_text(base_path) if not space_overrides and not cli_overrides else None
    for key, value in space_overrides.items():
        try:
            data = apply_overrides(data, [f"{key}={json.dumps(value)}"])
        except DlxError as exc:
            raise DlxError(exc.message, file=file, key=f"overrides.{key}", hint=exc.hint,
                           line=_line(file, ["overrides", key])) from None
    data = apply_overrides(data, cli_overrides)
    try:
        return spec_to_dict(validate_spec(data, base_file, text, strict_vars=True))
    except DlxError as exc:
        culprit = _override_of(exc.key, space_overrides)
        if culprit is not None:
            raise DlxError(f"{exc.message} (the value set by `overrides:`)", file=file, key=f"overrides.{culprit}",
                           hint=exc.hint, line=_line(file, ["overrides", culprit])) from None
        if base_file is None:  # inline base: the key lives under `base:` in the space file
            raise exc.with_context(file=file, key_prefix="base") from None
        raise


def _line(file: Optional[Path], key_path: list) -> Optional[int]:
    try:
        return line_of(read_text(file), key_path) if file is not None else None
    except (DlxError, OSError):
        return None


def _override_of(key: Optional[str], space_overrides: dict) -> Optional[str]:
    """The `overrides:` key an error at spec key path `key` comes from (same path, or one inside the other)."""
    if not key:
        return None
    for name in space_overrides:
        if key == name or key.startswith(name + ".") or name.startswith(key + "."):
            return name
    return None


def _parse_param(name: str, value, base: dict, file, text) -> Param:
    line = line_of(text, ["params", name]) if text else None
    parts = name.split(".")
    if not name or any(not p for p in parts):
        raise DlxError("a parameter needs a key path like train.optimizer.lr.", file=file, key=f"params.{name}", line=line)
    vars_path = parts[:2] == ["model", "vars"] and len(parts) == 3
    if vars_path:  # a var that no layer references would vary nothing
        try:
            check_vars_referenced([parts[2]], ModelSpec.model_validate(base["model"]))
        except DlxError as exc:
            raise DlxError(exc.message, file=file, key=f"params.{name}", line=line) from None
    else:
        try:
            get_path(base, parts)
        except (KeyError, IndexError, TypeError):
            known = _known_paths(base)
            raise DlxError(f"'{name}' is not a key path of the base spec (only model.vars.NAME may add a new key); "
                           f"check the spelling.{did_you_mean(name, known)}", file=file, key=f"params.{name}",
                           line=line) from None
    try:
        distribution, when = parse_distribution(value)
    except DlxError as exc:
        raise DlxError(exc.message, file=file, key=f"params.{name}" + (f".{exc.key}" if exc.key else ""),
                       line=line) from None
    return Param(name, distribution, when)


def _known_paths(node, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return [prefix] if prefix else []
    paths = [prefix] if prefix else []
    for key, value in node.items():
        paths += _known_paths(value, f"{prefix}.{key}" if prefix else str(key))
    return paths


def _check_conditions(params: list[Param], file, text) -> None:
    seen: set[str] = set()
    for param in params:
        for other in param.when or {}:
            if other not in seen:
                raise DlxError(f"`when` may only refer to a parameter listed above this one, but got '{other}'.",
                               file=file, key=f"params.{param.path}.when",
                               line=line_of(text, ["params", param.path]) if text else None)
        seen.add(param.path)
