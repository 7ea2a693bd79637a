"""Registries of Optuna samplers and pruners by the names a space file uses.

Each factory takes (space, seed, args) and returns the Optuna object; `args` are the space file's
sampler_args / pruner_args, checked against the constructor's keyword names.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from dlx.core.errors import DlxError, did_you_mean
from dlx.core.lazy import lazy_module, resolve
from dlx.core.registry import Registry
from dlx.search.distributions import MAX_GRID_POINTS, MAX_GRID_VALUES

optuna = lazy_module("optuna")


@dataclass(frozen=True)
class Factory:
    """A registered sampler or pruner: `make` builds it; `target` names the Optuna class whose keyword
    arguments the space file's sampler_args / pruner_args are checked against."""

    make: Callable
    target: str


SAMPLERS: Registry[Factory] = Registry("sampler", key="sampler")
PRUNERS: Registry[Factory] = Registry("pruner", key="pruner")


def register_sampler(name: str, target: str):
    def decorate(factory):
        SAMPLERS.register(name, Factory(factory, target))
        return factory
    return decorate


def register_pruner(name: str, target: str):
    def decorate(factory):
        PRUNERS.register(name, Factory(factory, target))
        return factory
    return decorate


def _check_args(registry: Registry, name: str, args: dict, file) -> None:
    factory = registry.get(name, file=file)
    if not args:
        return
    cls = resolve(factory.target)
    known = [p for p in inspect.signature(cls).parameters if p not in ("self", "search_space", "seed")]
    for arg in args:
        if arg not in known:
            raise DlxError(f"{cls.__name__} has no argument '{arg}'; its arguments are: {', '.join(known)}."
                           f"{did_you_mean(arg, known)}", file=file, key=f"{registry.kind}_args.{arg}")


def check_sampler(name: str, args: dict, file=None) -> None:
    _check_args(SAMPLERS, name, args, file)


def check_pruner(name: str, args: dict, file=None) -> None:
    _check_args(PRUNERS, name, args, file)


def make_sampler(space, seed: int):
    """The space's sampler. Constraints need no argument: the objective records them with
    `Trial.set_constraint` (Optuna 5), which the samplers read to put feasible trials first."""
    return SAMPLERS.get(space.sampler).make(space, seed, dict(space.sampler_args))


SINGLE_ONLY = ("cmaes",)  # samplers Optuna offers for one objective only


def check_multi(space) -> None:
    """A sampler that can't take several objectives is refused before any trial runs."""
    if space.multi and space.sampler in SINGLE_ONLY:
        raise DlxError(f"sampler '{space.sampler}' optimises one objective only; for several objectives use "
                       "nsga2, nsga3, tpe, random, gp or qmc.", file=space.file, key="sampler")


def make_pruner(space):
    return PRUNERS.get(space.pruner).make(space, dict(space.pruner_args))


# -- samplers -----------------------------------------------------------------------------------------------

def _startup_trials(space, least: int) -> int:
    """Random trials before a model-based sampler takes over: a quarter of the budget, 10 at most."""
    return min(10, max(least, (space.trials or 30) // 4))


@register_sampler("random", "optuna.samplers:RandomSampler")
def _random(space, seed, args):
    return optuna.samplers.RandomSampler(seed=seed, **args)


@register_sampler("tpe", "optuna.samplers:TPESampler")
def _tpe(space, seed, args):
    args.setdefault("n_startup_trials", _startup_trials(space, 2))
    return optuna.samplers.TPESampler(seed=seed, **args)


@register_sampler("gp", "optuna.samplers:GPSampler")
def _gp(space, seed, args):
    args.setdefault("n_startup_trials", _startup_trials(space, 2))
    return optuna.samplers.GPSampler(seed=seed, **args)


@register_sampler("cmaes", "optuna.samplers:CmaEsSampler")
def _cmaes(space, seed, args):
    try:
        import cmaes  # noqa: F401
    except ImportError:
        raise DlxError("sampler 'cmaes' needs the 'cmaes' package, which is not installed; run "
                       "`pip install cmaes`, or choose another sampler (tpe, gp, random).", key="sampler") from None
    args.setdefault("n_startup_trials", _startup_trials(space, 1))
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False, **args)


@register_sampler("genetic", "optuna.samplers:NSGAIISampler")
def _genetic(space, seed, args):
    args.setdefault("population_size", min(50, max(4, (space.trials or 40) // 4)))
    return optuna.samplers.NSGAIISampler(seed=seed, **args)


@register_sampler("nsga2", "optuna.samplers:NSGAIISampler")
def _nsga2(space, seed, args):
    return _genetic(space, seed, args)


@register_sampler("nsga3", "optuna.samplers:NSGAIIISampler")
def _nsga3(space, seed, args):
    args.setdefault("population_size", min(50, max(4, (space.trials or 40) // 4)))
    return optuna.samplers.NSGAIIISampler(seed=seed, **args)


@register_sampler("qmc", "optuna.samplers:QMCSampler")
def _qmc(space, seed, args):
    return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False, **args)


@register_sampler("grid", "optuna.samplers:GridSampler")
def _grid(space, seed, args):
    return optuna.samplers.GridSampler(grid_values(space), seed=seed, **args)


def grid_values(space) -> dict[str, list]:
    """GridSampler's search space: every choice list and int range (float ranges need a step). Sizes are
    checked first (`grid_size`), so nothing absurd is ever listed."""
    grid_size(space)
    return {param.path: param.distribution.grid() for param in space.params}


def grid_size(space) -> int:
    """The number of grid points, counted without listing them; refused past MAX_GRID_POINTS."""
    size = 1
    for param in space.params:
        count = param.distribution.grid_count()
        if count is None:
            raise DlxError("sampler 'grid' needs a finite space, but this is a continuous float range; give it a "
                           "`step`, make it a `choice`, or use another sampler.", file=space.file,
                           key=f"params.{param.path}")
        if count > MAX_GRID_VALUES:
            raise DlxError(f"this grid parameter has {count} values; a grid parameter is limited to "
                           f"{MAX_GRID_VALUES} values (MAX_GRID_VALUES). Raise `step`, narrow the range, or use "
                           "another sampler.", file=space.file, key=f"params.{param.path}")
        size *= count
        if size > MAX_GRID_POINTS:
            raise DlxError(f"the grid has more than {MAX_GRID_POINTS} combinations (MAX_GRID_POINTS) once "
                           f"'{param.path}' is added; raise a `step`, narrow a range, or use another sampler.",
                           file=space.file, key=f"params.{param.path}")
    return size


# -- pruners ------------------------------------------------------------------------------------------------

def _epochs(space) -> int:
    return int(space.base["train"]["epochs"])


@register_pruner("none", "optuna.pruners:NopPruner")
def _none(space, args):
    return optuna.pruners.NopPruner(**args)


# dlx's defaults for Optuna's pruners, also those of dlx's own multi-objective rules (search.curve_pruning)
PRUNER_DEFAULTS = {"median": {"n_startup_trials": 3, "n_warmup_steps": 1},
                   "hyperband": {"min_resource": 1, "reduction_factor": 3},  # max_resource: the epochs
                   # 4, not Optuna's 3: with 3, 20 trials of 8 epochs used 48% of the unpruned epochs; with 4,
                   # 39% for 99.3% of the best (benchmarks/search_bench.py --only pruning)
                   "asha": {"min_resource": 1, "reduction_factor": 4}}


@register_pruner("median", "optuna.pruners:MedianPruner")
def _median(space, args):
    return optuna.pruners.MedianPruner(**{**PRUNER_DEFAULTS["median"], **args})


@register_pruner("hyperband", "optuna.pruners:HyperbandPruner")
def _hyperband(space, args):
    defaults = {**PRUNER_DEFAULTS["hyperband"], "max_resource": _epochs(space)}
    return optuna.pruners.HyperbandPruner(**{**defaults, **args})


@register_pruner("asha", "optuna.pruners:SuccessiveHalvingPruner")
def _asha(space, args):
    return optuna.pruners.SuccessiveHalvingPruner(**{**PRUNER_DEFAULTS["asha"], **args})
