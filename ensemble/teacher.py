"""A run or ensemble folder as the teacher of a distillation (train.distill): the layer that knows how to load
members and pool them builds it, and registers the loader that training looks up, so train never imports
ensemble. `distill` is `dlx distill` as a Python function: the spec's `distill:` section filled in, then trained."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from dlx.core.errors import DlxError
from dlx.ensemble.evaluate import evaluate_folder, is_ensemble_folder
from dlx.ensemble.folder import EnsembleModel, load_model
from dlx.ensemble.members import file_sha256
from dlx.ensemble.metrics import EPS
from dlx.ensemble.predictions import load_model as load_member_model, member_log_probs
from dlx.experiment.load import spec_to_dict
from dlx.experiment.schema import ExperimentSpec
from dlx.archs.check import validate_spec
from dlx.train.distill import LOADER, register_teacher_loader
from dlx.train.run import RunResult, train


class FolderTeacher:
    """An EnsembleModel (a run is a one-member one) with its members' networks loaded once on `device`;
    `log_probs` pools them as `dlx predict` does."""

    def __init__(self, path: Path, model: EnsembleModel, device: torch.device):
        self.path, self.model, self.device = path, model, device
        self.networks = {i: load_member_model(model.members[i], device).eval() for i in model.active()}
        self.class_names = model.class_names
        self.record = teacher_record(path, model)

    @torch.no_grad()
    def log_probs(self, unit_x: torch.Tensor) -> torch.Tensor:
        members = {i: member_log_probs(self.model.members[i], unit_x, self.networks[i], self.device)
                   for i in self.networks}
        probs = self.model.pool(members)
        return torch.from_numpy(np.log(np.maximum(probs, EPS)).astype(np.float32)).to(unit_x.device)

    def test_scores(self) -> dict:
        scored = evaluate_folder(self.path, "test")
        return {"test_accuracy": scored["accuracy"], "test_loss": scored["loss"]}


def teacher_record(path: Path, model: EnsembleModel) -> dict:
    """Where the teacher came from, with the hash that pins it: ensemble.yaml's, or the run's best.pt."""
    ensemble = is_ensemble_folder(path)
    pinned = path / "ensemble.yaml" if ensemble else model.members[0].checkpoint
    return {"path": str(Path(path).resolve()), "kind": "ensemble" if ensemble else "run",
            "sha256": file_sha256(pinned), "hashed_file": pinned.name, "members": len(model.active()),
            "split_fingerprint": model.members[0].split.get("fingerprint")}


@register_teacher_loader(LOADER)
def load_folder_teacher(path: str, device: torch.device) -> FolderTeacher:
    folder = Path(path)
    try:
        model = load_model(folder)
    except DlxError as exc:
        hint = " For a search folder, give its best trial's folder (dlx distill picks it)." \
            if (folder / "search.yaml").is_file() else ""
        raise DlxError(f"{exc.message}{hint}", file=exc.file or folder, key="distill.teacher") from None
    return FolderTeacher(folder, model, device)


def distill(teacher: str | Path, student: ExperimentSpec, temperature: Optional[float] = None,
            alpha: Optional[float] = None, out: Optional[str | Path] = None, quiet: bool = True,
            spec_file: Optional[str | Path] = None, **options) -> RunResult:
    """Train `student` on `teacher` (a run or ensemble folder): the spec's `distill:` section is set to the teacher
    (as an absolute path, so the run resumes from anywhere), and `temperature`/`alpha` where given, keeping the
    spec's own values (or the defaults) otherwise. The result is an ordinary run folder."""
    data = spec_to_dict(student)
    section = dict(data.get("distill") or {})
    section["teacher"] = str(Path(teacher).resolve())
    section.update({key: value for key, value in (("temperature", temperature), ("alpha", alpha))
                    if value is not None})
    data["distill"] = section
    return train(validate_spec(data, file=spec_file), out=out, quiet=quiet, spec_file=spec_file, **options)
