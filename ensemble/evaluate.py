"""`dlx evaluate` on a folder that is either a run or an ensemble: decided here, in the layer that knows both."""
from __future__ import annotations

from pathlib import Path

from dlx.core.errors import DlxError
from dlx.ensemble.api import evaluate_ensemble
from dlx.experiment.yamlio import load_yaml_mapping
from dlx.train.evaluate import evaluate_run


def is_ensemble_folder(folder: str | Path) -> bool:
    return (Path(folder) / "ensemble.yaml").is_file()


def _ensemble_class_names(folder: Path) -> list[str]:
    names = load_yaml_mapping(folder / "ensemble.yaml", "ensemble").get("class_names") or []
    if not isinstance(names, list):
        raise DlxError(f"must be a list of class names, but got {names!r}"[:200] + "; rebuild the ensemble.",
                       file=folder / "ensemble.yaml", key="class_names")
    return [str(name) for name in names]


def evaluate_folder(folder: str | Path, split: str = "test") -> dict:
    """Loss, accuracy and confusion matrix on `split` of a run's best checkpoint or of an ensemble."""
    if not is_ensemble_folder(folder):
        return evaluate_run(folder, split)
    result = evaluate_ensemble(folder, split)
    return {**result, "class_names": result.get("class_names") or _ensemble_class_names(Path(folder))}
