"""What an ensemble folder records about itself: a provenance.json session and, when asked (`dlx ensemble
--mlflow URI`), an MLflow run with the members, their weights and the scores."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from dlx.experiment.overrides import key_paths
from dlx.train.mlflow_log import Tracking, tracked
from dlx.train.provenance import Provenance


def ensemble_params(result: dict) -> dict:
    """The choices and, per member (by its id), its folder, weight and temperature."""
    params = {key: result.get(key) for key in ("method", "requested_method", "metric", "temperature_scaling")}
    params["members"] = len(result["members"])
    for row in result["members"]:
        for key in ("run", "weight", "temperature"):
            params[f"member.{row['id']}.{key}"] = row[key]
    return params


def record_ensemble(result: dict, session: dict, fingerprint: Optional[str], experiment: str,
                    tracking: Optional[Tracking] = None) -> None:
    """Write the ensemble folder's provenance.json (`session`, begun when the command started) and log the
    ensemble to MLflow: params from `ensemble_params`, every score in `results` as a metric."""
    folder = Path(result["ensemble_dir"])
    with tracked(tracking, folder, "ensemble", experiment, params=ensemble_params(result)) as tracker:
        record = Provenance(folder, "ensemble", {**session, "device": result.get("device", "cpu"),
                                                 "data_fingerprint": fingerprint})
        if tracker is not None:
            tracker.log_metrics(key_paths(result["results"]))
            record.update(mlflow=tracker.info())
        record.end("finished")
