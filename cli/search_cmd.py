"""`dlx search`: hyperparameter search over a space file (see search/)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import JsonOption, QuietOption, SetOption, console, friendly_errors, print_json
from cli.tracking import MlflowOption, MlflowRequiredOption, mlflow_overrides
from core.errors import DlxError


STOPPED = {"done": "stopped: the trial budget is reached", "timeout": "stopped: --timeout has passed",
           "failures": "stopped: too many failed trials"}


@friendly_errors
def search(space: Annotated[Optional[Path], typer.Argument(help="Search space (YAML).")] = None,
           set: SetOption = None,
           out: Annotated[Optional[Path], typer.Option(help="Search folder (default: runs/<name>-<time>); an "
                                                            "existing one is continued.")] = None,
           resume: Annotated[Optional[Path], typer.Option(help="Continue this search folder.")] = None,
           storage: Annotated[Optional[str], typer.Option(help="Optuna storage URL (default: SQLite study.db in "
                                                               "the search folder).")] = None,
           name: Annotated[Optional[str], typer.Option(help="Study name; processes with the same storage and "
                                                            "name share the study.")] = None,
           workers: Annotated[int, typer.Option(help="Trials run in parallel on this machine.")] = 1,
           trials: Annotated[Optional[int], typer.Option(min=1, help="COMPLETE+PRUNED trials to reach (overrides "
                                                                     "the space).")] = None,
           timeout: Annotated[Optional[str], typer.Option(help="Stop starting trials after this: 90, 30m, 2h.")] = None,
           max_failures: Annotated[int, typer.Option(min=1, help="Stop after this many failed trials.")] = 10,
           mlflow: MlflowOption = None, mlflow_required: MlflowRequiredOption = False,
           quiet: QuietOption = False, json: JsonOption = False) -> None:
    """Search hyperparameters with Optuna; each trial is a run folder; the best is scored on test data."""
    from search import TrialDisplay, parse_duration, run_search
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
                            trials=trials, timeout=seconds, max_failures=max_failures, on_trial=display,
                            overrides=[*(set or []), *mlflow_overrides(mlflow, mlflow_required)] or None)
    finally:
        if display is not None:
            display.close()
    if json:
        print_json(result.best)
        return
    if quiet:
        return
    best = result.best
    counts = result.counts  # one phrase a line, never broken by rich: the terminal wraps a long folder if it must
    console.print(f"search folder: {result.search_dir}\ntrials: {counts['complete']} complete, {counts['pruned']} "
                  f"pruned, {counts['fail']} failed; {STOPPED.get(result.stopped, result.stopped)}",
                  highlight=False, soft_wrap=True)
    if best is None:
        console.print("no trial completed.")
        return
    test = best["test"] or {}
    console.print(f"best trial {best['trial']}: {best['metric']} {best['value']:.4f}"
                  + (f"  test_accuracy {test['accuracy']:.4f}" if test else "")
                  + f"\nparams: {best['params']}\nspec: {best['spec']}", highlight=False, soft_wrap=True)


COMMANDS = [search]
