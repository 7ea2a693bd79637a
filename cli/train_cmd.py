"""`dlx train` and `dlx evaluate`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import (JsonOption, QuietOption, SetOption, console, err_console, friendly_errors, located_in,
                        print_json)


@friendly_errors
def train(config: Annotated[Optional[Path], typer.Argument(help="Experiment spec (YAML).")] = None,
          set: SetOption = None,
          out: Annotated[Optional[Path], typer.Option(help="Run folder (default: runs/<name>-<time>).")] = None,
          resume: Annotated[Optional[Path], typer.Option(help="Continue this run folder from its last checkpoint.")] = None,
          quiet: QuietOption = False, json: JsonOption = False) -> None:
    """Train a model from a YAML spec and write a run folder."""
    from spec.errors import DlxError
    from train.run import TrainingInterrupted, train as run_training
    if (config is None) == (resume is None):
        raise DlxError("give a spec file (dlx train CONFIG) or --resume RUN_DIR, not both.")
    spec = None
    if config is not None:
        from spec.load import load_spec
        spec = load_spec(config, set)
    elif set:
        raise DlxError("--set can't change a run being resumed; its spec is fixed in its checkpoint.")
    try:
        with located_in(config):
            result = run_training(spec, out=out, resume=resume, quiet=quiet or json)
    except TrainingInterrupted as stop:
        err_console.print(f"interrupted; {stop.run_dir}/checkpoints/last.pt holds epoch {stop.epoch}. Continue with: "
                          f"dlx train --resume {stop.run_dir}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    if json:
        print_json({"run_dir": str(result.run_dir), **result.summary})
        return
    s = result.summary

    def fmt(value):
        return "-" if value is None else f"{value:.4f}"
    console.print(f"run folder: {result.run_dir}\nbest epoch {s['best_epoch']}: val_accuracy {fmt(s['val_accuracy'])}  "
                  f"val_loss {fmt(s['val_loss'])}\ntest_accuracy {fmt(s['test_accuracy'])}  test_loss "
                  f"{fmt(s['test_loss'])}", highlight=False)


@friendly_errors
def evaluate(run_dir: Annotated[Path, typer.Argument(help="A run folder (or an ensemble folder).")],
             split: Annotated[str, typer.Option(help="val or test.")] = "test", json: JsonOption = False) -> None:
    """Reload the best checkpoint and report loss, accuracy and the confusion matrix."""
    from train.evaluate import evaluate_run
    result = evaluate_run(run_dir, split)
    if json:
        print_json(result)
        return
    console.print(f"{result['split']}: accuracy {result['accuracy']:.4f}  loss {result['loss']:.4f}  "
                  f"({result['samples']} samples)", highlight=False)


COMMANDS = [train, evaluate]
