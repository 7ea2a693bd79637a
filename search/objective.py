"""One trial = one ordinary run folder `<search>/trials/<number>/`, trained with the sampled parameters.

The validation metric is reported to the trial after every epoch so a pruner can stop it early. A
trial that can't be built, diverges or raises is recorded with its reason (user attr `fail_reason`) and
re-raised for Optuna to mark it failed; the search goes on. A trial stopped by Ctrl-C or SIGTERM is re-queued
with its parameters before Optuna marks it failed, so a resumed search runs it again (search.study.requeued).

With several objectives (or constraints) the model's costs are measured before it trains, every objective's
value is kept as a user attr (also the last values of a pruned trial), and the constraint values are stored for
the sampler's `constraints_func`. Several objectives are pruned by dlx's own rules (search.curve_pruning), on
the first objective's learning curve recorded in the trial's user attr `curve`.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from dlx.core.errors import DlxError
from dlx.core.files import read_json
from dlx.core.lazy import lazy_module
from dlx.archs.check import validate_spec
from dlx.search.costs import model_costs
from dlx.search.curve_pruning import CURVE_ATTR, should_stop
from dlx.search.objectives import set_constraints
from dlx.search.records import search_origin
from dlx.search.study import INTERRUPTED, requeue_stale
from dlx.train.rundir import write_summary

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

    @property
    def measures(self) -> bool:
        """Whether trials measure costs and record every objective: several objectives, or constraints."""
        return self.space.multi or bool(self.space.constraints)

    def _costs(self, spec) -> dict:
        """params, mflops (and latency_ms when an objective or constraint names it), measured before training."""
        if not self.measures:
            return {}
        wanted = {g.metric for g in self.space.goals} | {c.metric for c in self.space.constraints}
        return model_costs(spec, latency="latency_ms" in wanted)

    def _record(self, trial, metrics: dict) -> list[float]:
        """Store the objectives' values and the constraint values; returns the objectives' values."""
        values = [metrics.get(g.metric) for g in self.space.goals]
        if self.measures:
            trial.set_user_attr("metrics", {k: v for k, v in metrics.items() if v is not None})
            trial.set_user_attr("values", values)
            set_constraints(trial, self.space.constraints, metrics)
        return values

    def _check_epoch(self, trial, epoch: int, value: float, curve: dict) -> bool:
        """Report `value` and say whether to prune: Optuna's pruner for one objective, dlx's for several."""
        if not self.space.multi:
            trial.report(value, epoch)
            return trial.should_prune()
        curve[epoch] = value
        trial.set_user_attr(CURVE_ATTR, sorted(curve.items()))
        others = trial.study.get_trials(deepcopy=False)
        return should_stop(self.space, others, trial.number, curve)

    def __call__(self, trial) -> float | list[float]:
        from dlx.experiment.load import spec_to_dict
        from dlx.train.distributed import train_in_processes
        from dlx.train.loop import NonFiniteLoss
        from dlx.train.run import train

        run_dir = self.trials_dir / str(trial.number)
        for key, value in {**self.owner, "run_dir": str(run_dir.resolve())}.items():
            trial.set_user_attr(key, value)
        started = time.perf_counter()
        metric = self.space.metric
        epochs, curve, last, costs = [0], {}, {}, {}

        def on_epoch(epoch: int, row: dict) -> None:
            epochs[0] = epoch
            value = row[metric]
            if not math.isfinite(value):
                raise NonFiniteLoss(f"{metric} became {value} at epoch {epoch}.", key="train")
            last.update({k: row.get(k) for k in ("val_accuracy", "val_loss")})
            if self._check_epoch(trial, epoch, value, curve):
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
            costs = self._costs(spec)
            trained = time.perf_counter()
            if self.space.nproc > 1:  # torchrun processes, on the devices this worker holds (search.devices)
                summary = train_in_processes(spec_to_dict(spec), run_dir, self.space.nproc, on_epoch)
            else:
                summary = train(spec, out=run_dir, quiet=True, on_epoch=on_epoch, test=False,
                                spec_file=self.spec_file, mlflow_parent=self.mlflow_parent).summary
        except optuna.TrialPruned as exc:
            finish(str(exc), "pruned")
            self._record(trial, {**costs, **last, "train_seconds": time.perf_counter() - trained})
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
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (search.worker.interrupt): not the configuration's fault
            finish(INTERRUPTED)
            requeue_stale(trial.study, trial, died=False)  # so the search, resumed, runs these parameters again
            raise
        seconds = time.perf_counter() - trained
        finish()
        value = summary.get(metric)
        if value is None or not math.isfinite(value):
            trial.set_user_attr("fail_reason", f"no finite {metric} was measured")
            raise DlxError(f"trial {trial.number} measured no finite {metric}.")
        trial.set_user_attr("val_accuracy", summary.get("val_accuracy"))
        trial.set_user_attr("val_loss", summary.get("val_loss"))
        trial.set_user_attr("best_epoch", summary.get("best_epoch"))
        metrics = {**costs, "val_accuracy": summary.get("val_accuracy"), "val_loss": summary.get("val_loss"),
                   "train_seconds": round(seconds, 3)}
        values = self._record(trial, metrics)
        return [float(v) for v in values] if self.space.multi else float(value)


def _mark_summary(run_dir: Path, status: str, reason: str | None) -> None:
    """Record in the run folder's summary.json why the run stopped (train() marks any exception 'failed')."""
    summary = read_json(run_dir / "summary.json")
    if summary is not None:
        write_summary(run_dir, {**summary, "status": status, "reason": reason})
