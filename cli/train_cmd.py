"""`dlx train` and `dlx evaluate`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import JsonOption, QuietOption, SetOption, console, friendly_errors, print_json


@friendly_errors
def train(config: Annotated[Optional[Path], typer.Argument(help="Experiment spec (YAML).")] = None,
          set: SetOption = None,
          out: Annotated[Optional[Path], typer.Option(help="Run folder (default: runs/<name>-<time>).")] = None,
          resume: Annotated[Optional[Path], typer.Option(help="Continue this run folder from its last checkpoint.")] = None,
          quiet: QuietOption = False, json: JsonOption = False) -> None:
    """Train a model from a YAML spec and write a run folder."""
    from spec.errors import DlxError
    from train.run import train as run_training
    if (config is None) == (resume is None):
        raise DlxError("give a spec file (dlx train CONFIG) or --resume RUN_DIR, not both.")
    spec = None
    if config is not None:
        from spec.load import load_spec
        spec = load_spec(config, set)
    elif set:
        raise DlxError("--set can't change a run being resumed; its spec is fixed in its checkpoint.")
    result = run_training(spec, out=out, resume=resume, quiet=quiet or json)
    if json:
        print_json({"run_dir": str(result.run_dir), **result.summary})
        return
    s = result.summary
    console.print(f"run folder: {result.run_dir}\nbest epoch {s['best_epoch']}: val_accuracy {s['val_accuracy']:.4f}  "
                  f"val_loss {s['val_loss']:.4f}\ntest_accuracy {s['test_accuracy']:.4f}  test_loss {s['test_loss']:.4f}",
                  highlight=False)


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
