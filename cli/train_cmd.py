"""`dlx train`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dlx.cli.common import (JsonOption, QuietOption, SetOption, console, err_console, friendly_errors, located_in,
                            print_json, reports)
from dlx.cli.tables import fixed
from dlx.cli.tracking import MlflowOption, MlflowRequiredOption, mlflow_overrides


@friendly_errors
def train(config: Annotated[Optional[Path], typer.Argument(help="Experiment spec (YAML).")] = None,
          set: SetOption = None,
          out: Annotated[Optional[Path], typer.Option(help="Run folder (default: runs/<name>-<time>).")] = None,
          resume: Annotated[Optional[Path], typer.Option(help="Continue this run folder from its last checkpoint.")] = None,
          epochs: Annotated[Optional[int], typer.Option(
              min=1, help="With --resume: train the run further, to this many epochs in total, even if it finished or "
                          "stopped early (early stopping's patience starts again). The new total is written to the "
                          "run's config.yaml. A schedule that depends on the total (cosine, onecycle) is rebuilt for "
                          "the new total and continues from the step reached, so the learning rate jumps to what "
                          "that longer schedule has there; step and none schedules just carry on.")] = None,
          nproc: Annotated[Optional[int], typer.Option(
              min=1, max=1024, help="Train on this many processes of this machine (one per GPU, or CPU processes with "
                                    "gloo) through torchrun. train.batch_size stays the global batch. For several "
                                    "machines, run torchrun ... -m dlx train SPEC instead (docs/scale.md).")] = None,
          test: Annotated[bool, typer.Option(help="At the end, score the best checkpoint on the test split (a "
                                                  "search's trials leave it to the search).")] = True,
          mlflow: MlflowOption = None, mlflow_required: MlflowRequiredOption = False,
          quiet: QuietOption = False, json: JsonOption = False) -> None:
    """Train a model from a YAML spec and write a run folder; or continue one with --resume."""
    from dlx.core.errors import DlxError
    from dlx.train.run import RunAlreadyFinished, RunResult, TrainingInterrupted, train as run_training
    import dlx.ensemble  # noqa: F401  the teacher loader of `distill:` specs (train.distill) lives there
    if config is None and resume is None:
        raise DlxError("dlx train needs a spec file to start a run (dlx train configs/digits.yaml) or --resume "
                       "RUN_DIR to continue one.")
    if config is not None and resume is not None:
        raise DlxError("give a spec file (dlx train CONFIG) or --resume RUN_DIR, not both.")
    if epochs is not None and resume is None:
        raise DlxError("--epochs trains a resumed run further (dlx train --resume RUN_DIR --epochs N); for a new "
                       "run, set the spec's epochs with --set train.epochs=N.", key="--epochs")
    spec = None
    if config is not None:
        from dlx.archs.check import load_spec
        spec = load_spec(config, [*(set or []), *mlflow_overrides(mlflow)])
        if mlflow_required:
            if spec.train.log.mlflow is None:
                raise DlxError("--mlflow-required needs a tracking server: give --mlflow URI or set "
                               "train.log.mlflow.tracking_uri in the spec.", key="--mlflow-required")
            spec.train.log.mlflow.required = True
    elif set:
        raise DlxError("--set can't change a run being resumed; its spec is fixed in its checkpoint.")
    elif mlflow or mlflow_required:
        raise DlxError("--mlflow can't change a run being resumed; its spec is fixed in its checkpoint (a run that "
                       "logged to MLflow goes on logging to the same MLflow run).", key="--mlflow")
    if nproc is not None and nproc > 1:
        from dlx.train.distributed import check_launchable, launch, world_from_env
        if world_from_env().distributed:
            raise DlxError("--nproc launches torchrun itself; under torchrun, leave it out.", key="--nproc")
        if spec is not None:
            check_launchable(spec, nproc)
        launch(nproc, _worker_arguments(config, set, out, resume, epochs, mlflow, mlflow_required, quiet, json, test))
    from dlx.train.interrupts import sigterm_interrupts
    try:
        with located_in(config), sigterm_interrupts():  # a scheduler's SIGTERM stops the run as Ctrl-C does
            result = run_training(spec, out=out, resume=resume, quiet=quiet or json, epochs=epochs, spec_file=config,
                                  test=test)
    except RunAlreadyFinished as finished:  # not an error: the run is as complete as resuming would make it
        from dlx.train.rundir import read_summary
        err_console.print(f"note: {finished.message}", highlight=False, soft_wrap=True)
        result = RunResult(resume, read_summary(resume))
    except TrainingInterrupted as stop:
        if reports():
            err_console.print(f"interrupted; {stop.run_dir}/checkpoints/last.pt holds epoch {stop.epoch}. Continue "
                              f"with: dlx train --resume {stop.run_dir}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    if not result.main:  # another rank of a torchrun run: rank 0 reports
        return
    if json:
        print_json({"run_dir": str(result.run_dir), **result.summary})
        return
    s = result.summary
    console.print(f"run folder: {result.run_dir}\nbest epoch {s.get('best_epoch')}: val_accuracy "
                  f"{fixed(s.get('val_accuracy'))}  val_loss {fixed(s.get('val_loss'))}\ntest_accuracy "
                  f"{fixed(s.get('test_accuracy'))}  test_loss {fixed(s.get('test_loss'))}", highlight=False,
                  soft_wrap=True)  # a long path stays whole, to be copied


def _worker_arguments(config, sets, out, resume, epochs, mlflow, mlflow_required, quiet, json, test) -> list[str]:
    """The `dlx train` arguments each torchrun worker gets: the same as this command's, less --nproc."""
    argv = ["train"] + ([str(config)] if config is not None else [])
    for flag, value in (("--out", out), ("--resume", resume), ("--epochs", epochs), ("--mlflow", mlflow)):
        argv += [flag, str(value)] if value is not None else []
    for item in sets or []:
        argv += ["--set", item]
    return argv + [flag for flag, on in (("--mlflow-required", mlflow_required), ("--quiet", quiet),
                                         ("--json", json), ("--no-test", not test)) if on]


COMMANDS = [train]  # `dlx evaluate` lives in cli/evaluate_cmd.py
