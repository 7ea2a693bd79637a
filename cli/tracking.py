"""The MLflow options that `dlx train`, `dlx search` and `dlx ensemble` share (train.log.mlflow in a spec)."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

MlflowOption = Annotated[Optional[str], typer.Option(
    "--mlflow", metavar="URI", help="Also log to this MLflow tracking server or store (http://host:5000, "
                                    "sqlite:///mlflow.db); sets train.log.mlflow.tracking_uri.")]
MlflowRequiredOption = Annotated[bool, typer.Option(
    "--mlflow-required", help="Stop with an error when MLflow can't be reached (default: a warning, and the command "
                              "goes on; the folder keeps the full record).")]


def mlflow_overrides(uri: Optional[str], required: bool = False) -> list[str]:
    """`--set` overrides of a spec for --mlflow URI and, with a URI, --mlflow-required."""
    import json
    if not uri:
        return []
    return [f"train.log.mlflow.tracking_uri={json.dumps(uri)}"] + (["train.log.mlflow.required=true"] if required
                                                                     else [])
