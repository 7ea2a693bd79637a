"""`train.log.mlflow: {tracking_uri: ..., experiment: ...}`: mirror a run, search or ensemble to MLflow.

MLflow is an optional extra (`pip install 'dlx[mlflow]'`), imported only when logging is asked for. The run folder
stays the record: a tracking server that can't be reached, or that fails while a run trains, is a warning and the
command goes on without it, unless `required: true` (`--mlflow-required`), which makes it an error.

One dlx folder is one MLflow run, tagged `dlx.folder`; a search's trials are nested runs under the search's run
(`mlflow.parentRunId`). The run's id is kept in the folder's provenance.json, so `dlx train --resume` goes on
logging to the same run."""
from __future__ import annotations

import math
import os
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from dlx.core.errors import DlxError
from dlx.core.urls import redact

KEY = "train.log.mlflow"
# small files of a run, search or ensemble folder that are copied to the MLflow run as artefacts
ARTIFACTS = ("config.yaml", "summary.json", "provenance.json", "metrics.csv", "split.json", "search.yaml",
             "best.json", "best.yaml", "leaderboard.csv", "ensemble.yaml", "ensemble.json")
MAX_ARTIFACT_BYTES = 10_000_000
MAX_PARAM_LENGTH = 6000  # MLflow refuses longer parameter values
BATCH = 100              # MLflow takes at most 100 params (1000 metrics) per log_batch call
STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
# a dead server must not stall training for minutes (MLflow's default: 7 retries with backoff, 120 s timeout)
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


@dataclass(frozen=True)
class Tracking:
    """Where to log: the tracking URI, the experiment (None: the caller's default name), and whether an
    unreachable server is an error rather than a warning."""

    tracking_uri: str
    experiment: Optional[str] = None
    required: bool = False

    @classmethod
    def from_settings(cls, settings) -> Optional["Tracking"]:
        """From a spec's `train.log.mlflow` (a pydantic section, a dict, or None)."""
        if settings is None:
            return None
        data = settings if isinstance(settings, dict) else settings.model_dump()
        return cls(data["tracking_uri"], data.get("experiment"), bool(data.get("required")))


def require_mlflow():
    """MLflow's client class, or a DlxError saying how to install it."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise DlxError(f"{KEY} (or --mlflow) asks for MLflow, but it is not installed; install dlx[mlflow] "
                       "(pip install 'dlx[mlflow]') or remove the setting.", key=KEY) from None
    return MlflowClient


def _param_text(value) -> str:
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[:MAX_PARAM_LENGTH - 1] + "…"


def _numbers(values: dict) -> dict:
    return {k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


# summary.json field → MLflow metric; the best epoch's validation scores get their own names, so they don't
# join the per-epoch series of the same name
SUMMARY_METRICS = {"val_accuracy": "best_val_accuracy", "val_loss": "best_val_loss", "test_accuracy": "test_accuracy",
                   "test_loss": "test_loss", "best_epoch": "best_epoch", "epochs": "epochs_trained",
                   "trainable_params": "trainable_params", "wall_seconds": "wall_seconds"}


def summary_metrics(summary: dict) -> dict:
    return {name: summary.get(key) for key, name in SUMMARY_METRICS.items()}


def _check_reachable(uri: str) -> None:
    """Fail fast (a few seconds, not MLflow's minutes of retries) when an HTTP server does not answer at all."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).close()
    except urllib.error.HTTPError:
        return  # it answered: reachable (a proxy or a prefix may refuse /health)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(f"no answer from {redact(uri)} ({reason})") from None


def warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


class MlflowRun:
    """One MLflow run mirroring a dlx folder. After a failed call (the server went away) it warns once and logs
    nothing more; with `required` the failure is raised as a DlxError instead."""

    def __init__(self, client, run_id: str, tracking: Tracking, on_warning: Callable[[str], None] = warn):
        self.client, self.run_id, self.tracking, self.on_warning = client, run_id, tracking, on_warning
        self.error: Optional[str] = None

    def info(self) -> dict:
        """What provenance.json records about this run."""
        return {"tracking_uri": redact(self.tracking.tracking_uri), "run_id": self.run_id, "error": self.error}

    def _call(self, what: str, action: Callable) -> None:
        if self.error is not None:
            return
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - any MLflow/HTTP failure: the run folder remains the record
            self.error = f"MLflow stopped logging while {what}: {type(exc).__name__}: {str(exc)[:300]}"
            if self.tracking.required:
                raise DlxError(f"{self.error}. The run folder has everything; logging was required "
                               f"({KEY}.required / --mlflow-required).", key=KEY) from None
            self.on_warning(f"{self.error}; the command goes on and the folder keeps the full record.")

    def log_params(self, params: dict, skip: frozenset = frozenset()) -> None:
        from mlflow.entities import Param
        items = [Param(str(k), _param_text(v)) for k, v in params.items() if k not in skip]
        for start in range(0, len(items), BATCH):
            self._call("logging parameters", lambda chunk=items[start:start + BATCH]:
                       self.client.log_batch(self.run_id, params=chunk))

    def log_metrics(self, values: dict, step: int = 0) -> None:
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in _numbers(values).items()]
        if metrics:
            self._call("logging metrics", lambda: self.client.log_batch(self.run_id, metrics=metrics))

    def set_tags(self, tags: dict) -> None:
        from mlflow.entities import RunTag
        items = [RunTag(str(k), _param_text(v)) for k, v in tags.items()]
        self._call("setting tags", lambda: self.client.log_batch(self.run_id, tags=items))

    def epoch_logger(self, then: Optional[Callable] = None) -> Callable[[int, dict], None]:
        """An `on_epoch(epoch, row)` callback logging the epoch's metrics at step `epoch`, then calling `then`."""
        def on_epoch(epoch: int, row: dict) -> None:
            self.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)
            if then is not None:
                then(epoch, row)
        return on_epoch

    def log_folder(self, folder: str | Path) -> None:
        """Copy the folder's small files (ARTIFACTS) to the run."""
        for name in ARTIFACTS:
            path = Path(folder) / name
            if path.is_file() and path.stat().st_size <= MAX_ARTIFACT_BYTES:
                self._call(f"uploading {name}", lambda p=path: self.client.log_artifact(self.run_id, str(p)))

    def finish(self, status: str) -> None:
        self._call("ending the run", lambda: self.client.set_terminated(self.run_id, STATUS.get(status, "FAILED")))


def _experiment_id(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # noqa: BLE001 - another process (a search worker) created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _start(client, tracking: Tracking, name: str, default_experiment: str, tags: dict,
           parent: Optional[str], resume: Optional[str]) -> tuple[str, frozenset]:
    """(run id, names of parameters it already has): `resume`'s run reopened if it still exists, else a new run
    (nested under `parent`, in the parent's experiment)."""
    if resume:
        try:
            run = client.get_run(resume)
            client.update_run(resume, status="RUNNING")
            return resume, frozenset(run.data.params)
        except Exception:  # noqa: BLE001 - deleted on the server: start a new one
            pass
    if parent:
        experiment = client.get_run(parent).info.experiment_id
        tags = {**tags, "mlflow.parentRunId": parent}
    else:
        experiment = _experiment_id(client, tracking.experiment or default_experiment)
    run = client.create_run(experiment, tags=tags, run_name=name)
    return run.info.run_id, frozenset()


def open_run(tracking: Tracking, folder: str | Path, kind: str, default_experiment: str,
             parent: Optional[str] = None, resume: Optional[str] = None,
             on_warning: Callable[[str], None] = warn) -> tuple[Optional[MlflowRun], frozenset]:
    """(the MLflow run for `folder`, names of parameters it already holds), or (None, ...) with a warning when
    the tracking server can't be reached (a DlxError when `tracking.required`)."""
    client_class = require_mlflow()
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # stdout is dlx's (--json); MLflow prints links
    folder = Path(folder)
    try:
        _check_reachable(tracking.tracking_uri)
        client = client_class(tracking_uri=tracking.tracking_uri)
        tags = {"dlx.folder": str(folder.resolve()), "dlx.kind": kind}
        run_id, existing = _start(client, tracking, folder.name, default_experiment, tags, parent, resume)
    except Exception as exc:  # noqa: BLE001 - an unreachable or refusing server: the folder is the record
        message = (f"can't log to MLflow at {redact(tracking.tracking_uri)} ({type(exc).__name__}: "
                   f"{str(exc).splitlines()[0][:300] if str(exc) else 'no details'})")
        if tracking.required:
            raise DlxError(f"{message}. Logging is required ({KEY}.required / --mlflow-required): start the "
                           "server or check the URI, or drop --mlflow-required to go on without it.",
                           key=KEY) from None
        on_warning(f"{message}; going on without MLflow (the folder keeps the full record).")
        return None, frozenset()
    return MlflowRun(client, run_id, tracking, on_warning), existing


@contextmanager
def tracked(tracking: Optional[Tracking], folder: str | Path, kind: str, default_experiment: str,
            parent: Optional[str] = None, resume: Optional[str] = None,
            params: Optional[dict] = None) -> Iterator[Optional[MlflowRun]]:
    """The MLflow run of `folder` for the duration of the block (None when not asked for or unreachable): opened
    with `params`, and at the end given the folder's small files and the block's outcome as its status."""
    if tracking is None:
        yield None
        return
    run, existing = open_run(tracking, folder, kind, default_experiment, parent, resume)
    if run is not None and params:
        run.log_params(params, skip=existing)
    status = "finished"
    try:
        yield run
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException:
        status = "failed"
        raise
    finally:
        if run is not None:
            run.log_folder(folder)
            run.finish(status)


def resumable_run(sessions: list[dict], tracking: Tracking) -> Optional[str]:
    """The MLflow run id an earlier session of this folder logged to at the same tracking URI, if any."""
    for session in reversed(sessions):
        logged = session.get("mlflow") or {}
        if logged.get("run_id") and logged.get("tracking_uri") == redact(tracking.tracking_uri):
            return logged["run_id"]
    return None
