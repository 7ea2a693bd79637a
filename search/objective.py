"""One trial = one ordinary run folder `<search>/trials/<number>/`, trained with the sampled parameters.

The validation metric is reported to the trial after every epoch so a pruner can stop it early. A
trial that can't be built, diverges or raises is recorded with its reason (user attr `fail_reason`) and
re-raised for Optuna to mark it failed; the search goes on.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from core.errors import DlxError
from core.files import read_json
from core.lazy import lazy_module
from archs.check import validate_spec
from search.records import search_origin
from train.rundir import write_summary

optuna = lazy_module("optuna")


class Objective:
    def __init__(self, space, search_dir: Path, owner: dict):
        self.space = space
        self.trials_dir = Path(search_dir) / "trials"
        self.owner = owner
        self.spec_file, self.mlflow_parent = search_origin(search_dir)  # the search's git tree and MLflow run

    def sample(self, trial) -> dict:
        sampled = {}
        for param in self.space.params:
            if param.active(sampled):
                sampled[param.path] = param.distribution.suggest(trial, param.path)
        return sampled

    def __call__(self, trial) -> float:
        from train.loop import NonFiniteLoss
        from train.run import train

        run_dir = self.trials_dir / str(trial.number)
        for key, value in {**self.owner, "run_dir": str(run_dir.resolve())}.items():
            trial.set_user_attr(key, value)
        started = time.perf_counter()
        metric = self.space.metric
        epochs = [0]

        def on_epoch(epoch: int, row: dict) -> None:
            epochs[0] = epoch
            value = row[metric]
            if not math.isfinite(value):
                raise NonFiniteLoss(f"{metric} became {value} at epoch {epoch}.", key="train")
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} ({metric} {value:.4f}).")

        def finish(reason: str | None = None, status: str | None = None) -> None:
            trial.set_user_attr("epochs", epochs[0])
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
            if reason:
                trial.set_user_attr("fail_reason", reason)
            if status:
                _mark_summary(run_dir, status, reason)

        try:
            spec = validate_spec(self.space.apply(self.sample(trial)), file=f"trial {trial.number}")
            result = train(spec, out=run_dir, quiet=True, on_epoch=on_epoch, test=False, spec_file=self.spec_file,
                           mlflow_parent=self.mlflow_parent)
        except optuna.TrialPruned as exc:
            finish(str(exc), "pruned")
            raise
        except NonFiniteLoss as exc:
            finish(f"non-finite: {exc.message}", "failed")
            raise
        except DlxError as exc:  # an impossible architecture or invalid value: the configuration can't run
            finish(f"invalid configuration: {exc.render()}", "failed")
            raise
        except Exception as exc:
            finish(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}", "failed")
            raise
        summary = result.summary
        finish()
        value = summary.get(metric)
        if value is None or not math.isfinite(value):
            trial.set_user_attr("fail_reason", f"no finite {metric} was measured")
            raise DlxError(f"trial {trial.number} measured no finite {metric}.")
        trial.set_user_attr("val_accuracy", summary.get("val_accuracy"))
        trial.set_user_attr("val_loss", summary.get("val_loss"))
        trial.set_user_attr("best_epoch", summary.get("best_epoch"))
        return float(value)


def _mark_summary(run_dir: Path, status: str, reason: str | None) -> None:
    """Record in the run folder's summary.json why the run stopped (train() marks any exception 'failed')."""
    summary = read_json(run_dir / "summary.json")
    if summary is not None:
        write_summary(run_dir, {**summary, "status": status, "reason": reason})
