"""What a search folder records about itself: its provenance.json session and, with train.log.mlflow in the base
spec, the MLflow run its trials nest under (search.objective reads that run's id from provenance.json)."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from dlx.core.files import read_json
from dlx.experiment.overrides import key_paths
from dlx.train.mlflow_log import MlflowRun, Tracking, resumable_run, tracked
from dlx.train.provenance import latest_session, read_provenance, recorded


def tracking_of(space) -> Optional[Tracking]:
    return Tracking.from_settings(((space.base.get("train") or {}).get("log") or {}).get("mlflow"))


@contextmanager
def search_records(search_dir: Path, space, space_file=None) -> Iterator[Optional[MlflowRun]]:
    """A provenance session in `search_dir` and the search's MLflow run (None when not asked for or unreachable)
    for the duration of the block; a search run again goes on logging to the run it logged to before."""
    tracking = tracking_of(space)
    earlier = (read_provenance(search_dir) or {}).get("sessions", [])
    resume = resumable_run(earlier, tracking) if tracking else None
    with tracked(tracking, search_dir, "search", space.name, resume=resume,
                 params=key_paths(space.to_yaml_dict())) as tracker:
        with recorded(search_dir, "search", space_file, space.seed) as record:
            if tracker is not None:
                record.update(mlflow=tracker.info())
            yield tracker
            record.update(data_fingerprint=_best_fingerprint(search_dir))


def _best_fingerprint(search_dir: Path) -> Optional[str]:
    """The data fingerprint of the best trial (every trial trains on the same data)."""
    best = read_json(Path(search_dir) / "best.json") or {}
    trial = best.get("trial") if isinstance(best, dict) else None
    split = read_json(Path(search_dir) / "trials" / str(trial) / "split.json") if trial is not None else None
    return split.get("fingerprint") if isinstance(split, dict) else None


def best_metrics(best: Optional[dict]) -> dict:
    """best.json as MLflow metrics of the search's run."""
    if not best:
        return {}
    test = best.get("test") or {}
    return {f"best_{best.get('metric')}": best.get("value"), "best_trial": best.get("trial"),
            "test_accuracy": test.get("accuracy"), "test_loss": test.get("loss")}


def search_origin(search_dir: Path) -> tuple[Optional[str], Optional[str]]:
    """(space file, MLflow run id) of the search in `search_dir`, from its newest provenance session: trials,
    also those of worker processes, record the same git tree and nest under the same MLflow run."""
    session = latest_session(search_dir)
    return session.get("spec_file"), (session.get("mlflow") or {}).get("run_id")
