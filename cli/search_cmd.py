"""`dlx search`: hyperparameter search over a space file (see search/)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dlx.cli.common import JsonOption, QuietOption, SetOption, console, err_console, friendly_errors, print_json
from dlx.cli.tracking import MlflowOption, MlflowRequiredOption, mlflow_overrides
from dlx.core.errors import DlxError


STOPPED = {"done": "stopped: the trial budget is reached", "timeout": "stopped: --timeout has passed",
           "failures": "stopped: too many failed trials"}


@friendly_errors
def search(space: Annotated[Optional[Path], typer.Argument(help="Search space (YAML), or with --pick a finished "
                                                                "search folder.")] = None,
           set: SetOption = None,
           out: Annotated[Optional[Path], typer.Option(help="Search folder (default: runs/<name>-<time>); an "
                                                            "existing one is continued.")] = None,
           resume: Annotated[Optional[Path], typer.Option(help="Continue this search folder.")] = None,
           storage: Annotated[Optional[str], typer.Option(help="Optuna storage: a database URL "
                                                               "(postgresql://user:pass@host/db, sqlite:///path) or "
                                                               "journal:///shared/path/search.journal (a file on a "
                                                               "shared filesystem); default: SQLite study.db in the "
                                                               "search folder.")] = None,
           name: Annotated[Optional[str], typer.Option(help="Study name; processes with the same storage and "
                                                            "name share the study.")] = None,
           workers: Annotated[int, typer.Option(help="Trials run in parallel on this machine (per device, with "
                                                     "--devices).")] = 1,
           devices: Annotated[Optional[str], typer.Option(help="cuda:0,cuda:1,... or cpu: --workers worker processes "
                                                               "per listed device, each seeing only its own GPU "
                                                               "(CUDA_VISIBLE_DEVICES).")] = None,
           trials: Annotated[Optional[int], typer.Option(min=1, help="COMPLETE+PRUNED trials to reach (overrides "
                                                                     "the space).")] = None,
           timeout: Annotated[Optional[str], typer.Option(help="Stop starting trials after this: 90, 30m, 2h.")] = None,
           max_failures: Annotated[int, typer.Option(min=1, help="Stop after this many failed trials.")] = 10,
           pick: Annotated[Optional[str], typer.Option(help='Choose the most accurate Pareto-front trial meeting '
                                                             'this, e.g. "params <= 20000".')] = None,
           ensemble: Annotated[Optional[int], typer.Option(help="At the end, pool up to K finished trials chosen "
                                                                "greedily for complementary errors.")] = None,
           mlflow: MlflowOption = None, mlflow_required: MlflowRequiredOption = False,
           quiet: QuietOption = False, json: JsonOption = False) -> None:
    """Search hyperparameters with Optuna; each trial is a run folder; the best is scored on test data."""
    from dlx.search import (SearchInterrupted, TrialDisplay, parse_devices, parse_duration, pick as pick_front,
                            run_search)
    import dlx.ensemble  # noqa: F401  the teacher loader of a distillation base spec (train.distill) lives there
    if space is not None and space.is_dir() and pick is not None:  # a finished search: choose, run nothing
        _print_pick(pick_front(space, pick), json)
        return
    if mlflow_required and not mlflow:
        raise DlxError("--mlflow-required needs --mlflow URI (or set train.log.mlflow.required: true in the base "
                       "spec).", key="--mlflow-required")
    try:
        seconds = parse_duration(timeout)
    except ValueError as exc:
        raise DlxError(str(exc) + ".", key="--timeout") from None
    display = None if quiet or json else TrialDisplay()
    try:
        result = run_search(space, out=out, resume=resume, storage=storage, name=name, workers=workers,
                            devices=parse_devices(devices) if devices is not None else None,
                            trials=trials, timeout=seconds, max_failures=max_failures, on_trial=display, pick=pick,
                            overrides=[*(set or []), *mlflow_overrides(mlflow, mlflow_required)] or None)
    except SearchInterrupted as stop:
        if display is not None:
            display.close()  # the table first, the message below it
        err_console.print(f"interrupted; the trials that were running will run again with their parameters. Continue "
                          f"with: dlx search --resume {stop.search_dir}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    finally:
        if display is not None:
            display.close()
    pooled = _ensemble(result, ensemble) if ensemble is not None else None
    if json:
        print_json({**result.best, "picked": result.picked, "ensemble": pooled}
                   if (result.picked or pooled) and result.best else result.best)
        return
    if quiet:
        return
    best = result.best
    counts = result.counts  # one phrase a line, never broken by rich: the terminal wraps a long folder if it must
    requeued = f", {counts['requeued']} re-queued" if counts.get("requeued") else ""  # interrupted: not failures
    console.print(f"search folder: {result.search_dir}\ntrials: {counts['complete']} complete, {counts['pruned']} "
                  f"pruned, {counts['fail']} failed{requeued}; {STOPPED.get(result.stopped, result.stopped)}",
                  highlight=False, soft_wrap=True)
    if best is None:
        console.print("no trial completed." if not counts["complete"] else "no complete trial meets the constraints.")
        return
    test = best["test"] or {}
    console.print(f"best trial {best['trial']}: {best['metric']} {best['value']:.4f}"
                  + (f"  test_accuracy {test['accuracy']:.4f}" if test else "")
                  + f"\nparams: {best['params']}\nspec: {best['spec']}", highlight=False, soft_wrap=True)
    if best.get("pareto"):
        console.print(f"Pareto front: {best['pareto']['size']} trials in {best['pareto']['file']}", highlight=False,
                      soft_wrap=True)
    if result.picked:
        _print_pick(result.picked, False)
    if pooled:
        console.print(f"ensemble of {len(pooled['members'])} trials ({pooled['method']}): test_accuracy "
                      f"{pooled['ensemble']['test_accuracy']:.4f} vs best trial "
                      f"{_number(pooled['best']['test_accuracy'])}\nensemble: {pooled['ensemble_dir']}",
                      highlight=False, soft_wrap=True)


def _ensemble(result, k: int):
    from dlx.cli.search_ensemble import search_ensemble
    return search_ensemble(result.search_dir, k, result.best) if result.best else None


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_pick(picked: dict, json: bool) -> None:
    if json:
        print_json(picked)
        return
    shown = ", ".join(f"{k} {v:.4g}" for k, v in {**picked.get("metrics", {}), **picked["values"]}.items()
                      if isinstance(v, (int, float)))
    console.print(f"picked trial {picked['number']} for {picked['pick']!r}: {shown}\nspec: {picked['spec']}",
                  highlight=False, soft_wrap=True)


COMMANDS = [search]
