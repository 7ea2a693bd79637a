"""Knowledge distillation (spec section `distill:`): the student trains on
`alpha · KL(teacher_T ‖ student_T) · T² + (1 − alpha) · CE(labels)` (Hinton, Vinyals & Dean 2015).

Train knows a teacher only through the narrow `Teacher` interface (inputs scaled to [0, 1] on the training device
→ log-probabilities). The code that builds one from a run or ensemble folder lives above train (dlx.ensemble.teacher)
and registers itself in `TEACHER_LOADERS`, so every process that trains (dlx train, dlx distill, search workers)
finds it. The teacher is only ever asked about training images: all of them once, when its outputs fit
`distill.cache_budget` and no augmentation is used, else each training batch as it is trained on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol

import torch
import torch.nn.functional as F

from dlx.core.errors import DlxError
from dlx.core.registry import Registry
from dlx.experiment.schema import DistillSpec, budget_bytes
from dlx.train.data.tensors import TensorData

TEACHER_LOADERS: Registry = Registry("teacher loader", key="distill.teacher")
register_teacher_loader = TEACHER_LOADERS.register
LOADER = "folder"  # the one entry: (path, device) → Teacher
CHUNK = 1024  # training images the teacher predicts at a time when filling the cache


class Teacher(Protocol):
    """What distillation needs from a trained model or ensemble."""

    class_names: list[str]
    record: dict  # where it came from: path, kind, sha256 of its checkpoint or ensemble.yaml, split fingerprint

    def log_probs(self, unit_x: torch.Tensor) -> torch.Tensor:
        """(N, classes) log-probabilities, on unit_x's device, of inputs scaled to [0, 1]."""

    def test_scores(self) -> dict:
        """{"test_accuracy", "test_loss"} of the teacher on its own test split (as `dlx evaluate` scores it)."""


def distillation_loss(student_logits: torch.Tensor, teacher_log_probs: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """alpha · KL(softmax(t / T) ‖ softmax(s / T)) · T² + (1 − alpha) · CE(s, labels), the KL averaged over the
    batch. T² keeps the soft term's gradients on the scale of the hard one's as T grows."""
    student = student_logits.float()
    soft_student = F.log_softmax(student / temperature, dim=1)
    soft_teacher = F.log_softmax(teacher_log_probs.float() / temperature, dim=1)
    kl = F.kl_div(soft_student, soft_teacher, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student, labels, label_smoothing=label_smoothing)
    return alpha * kl * temperature ** 2 + (1.0 - alpha) * hard


def load_teacher(path: str, device: torch.device) -> Teacher:
    if LOADER not in TEACHER_LOADERS:
        raise DlxError("distill: needs the teacher loader of dlx.ensemble, which is not imported in this process; "
                       "`import dlx.ensemble` before training (the dlx command does).", key="distill.teacher")
    return TEACHER_LOADERS.get(LOADER)(path, device)


@dataclass
class Distiller:
    """The teacher of one training run and how its outputs reach the loss: `cache` holds its log-probabilities
    for every training image (by index) or is None, and then each batch is predicted as it comes."""

    teacher: Teacher
    settings: DistillSpec
    mean: torch.Tensor  # the student's normalisation, undone to give the teacher [0, 1] inputs
    std: torch.Tensor
    cache: Optional[torch.Tensor] = None
    targets: str = "per batch"  # or "cached", with why in `reason`
    reason: str = ""

    def unit(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() * self.std + self.mean

    @torch.no_grad()
    def teacher_log_probs(self, x: torch.Tensor, index: Optional[torch.Tensor]) -> torch.Tensor:
        if self.cache is not None and index is not None:
            return self.cache[index.to(self.cache.device)].to(x.device)
        with torch.autocast(x.device.type, enabled=False):  # the teacher predicts in float32, as `dlx predict` does
            return self.teacher.log_probs(self.unit(x)).to(x.device)

    def loss(self, logits: torch.Tensor, y: torch.Tensor, x: torch.Tensor, index, label_smoothing: float = 0.0):
        targets = self.teacher_log_probs(x, index)
        return distillation_loss(logits, targets, y, self.settings.temperature, self.settings.alpha,
                                 label_smoothing)

    def record(self) -> dict:
        return {"teacher": dict(self.teacher.record), "temperature": self.settings.temperature,
                "alpha": self.settings.alpha, "targets": self.targets, "targets_reason": self.reason}


def make_distiller(settings: DistillSpec, splits, data_train, augment, device: torch.device) -> Distiller:
    """Load the teacher, check that it can teach this student (same classes, same split), and fill the cache of its
    outputs on the training split when that is allowed and fits the budget. The student's random number stream is
    left as it was, so a distilled run draws what the same spec without `distill:` would."""
    with torch.random.fork_rng(devices=[]):
        teacher = load_teacher(settings.teacher, device)
        _check_fit(teacher, splits)
        distiller = _with_normalisation(teacher, settings, splits, device)
        _fill_cache(distiller, data_train, augment, len(splits.class_names))
    return distiller


def _check_fit(teacher: Teacher, splits) -> None:
    if list(teacher.class_names) != list(splits.class_names):
        raise DlxError(f"the teacher predicts the classes {list(teacher.class_names)[:12]}, but this spec's data has "
                       f"{list(splits.class_names)[:12]}; give a teacher trained on the same data.",
                       key="distill.teacher")
    fingerprint = teacher.record.get("split_fingerprint")
    if fingerprint and fingerprint != splits.split_record.get("fingerprint"):
        raise DlxError("the teacher was trained with another dataset or validation/test split than this spec's "
                       "(its split.json fingerprint differs), so it may have learnt from this student's validation "
                       "or test images; use the teacher's data settings (data.*) in the student spec.",
                       key="distill.teacher")


def _with_normalisation(teacher: Teacher, settings: DistillSpec, splits, device) -> Distiller:
    ndim = len(splits.input_shape) + 1
    shape = (1, -1) + (1,) * (ndim - 2)
    mean = torch.as_tensor(splits.mean, dtype=torch.float32, device=device).view(shape)  # of [0, 1] inputs
    std = torch.as_tensor(splits.std, dtype=torch.float32, device=device).view(shape)
    return Distiller(teacher, settings, mean, std)


def _fill_cache(distiller: Distiller, data_train, augment, classes: int) -> None:
    """Predict every training image once when the outputs fit the budget; augmented or streamed data, or a
    budget too small, leave the teacher predicting each batch."""
    need = len(data_train) * classes * 4
    budget = budget_bytes(distiller.settings.cache_budget, 1)
    if augment is not None:
        distiller.reason = "data.augment: the teacher sees each augmented batch"
    elif not isinstance(data_train, TensorData):
        distiller.reason = "the training data is streamed from disk"
    elif need > budget:
        distiller.reason = f"its outputs ({need} bytes) exceed distill.cache_budget ({budget} bytes)"
    else:
        parts = []
        for start in range(0, len(data_train), CHUNK):
            index = torch.arange(start, min(start + CHUNK, len(data_train)), device=data_train.y.device)
            x, _ = data_train.take(index)
            with torch.no_grad():
                parts.append(distiller.teacher.log_probs(distiller.unit(x)).float())
        distiller.cache = torch.cat(parts) if parts else torch.zeros(0, classes)
        distiller.targets, distiller.reason = "cached", f"{need} bytes of teacher outputs on the training split"


def side_by_side(distiller: Distiller, test_accuracy: float, test_loss: float) -> dict:
    """The distillation record with the teacher's and the student's test scores next to each other."""
    teacher = distiller.teacher.test_scores()
    return {**distiller.record(), "test": {
        "teacher": {"accuracy": teacher["test_accuracy"], "loss": teacher["test_loss"]},
        "student": {"accuracy": test_accuracy, "loss": test_loss}}}


def check_same_teacher(distiller: Optional[Distiller], summary: dict, run_dir) -> None:
    """A resumed distillation must learn from the teacher it started with: a retrained or rebuilt teacher (another
    checkpoint or ensemble.yaml hash) would make the resumed run a different one."""
    recorded = ((summary or {}).get("distill") or {}).get("teacher") or {}
    if distiller is None or not recorded.get("sha256"):
        return
    now = distiller.teacher.record.get("sha256")
    if now != recorded["sha256"]:
        raise DlxError(f"the teacher changed since this run started (sha256 {str(now)[:16]} ≠ "
                       f"{str(recorded['sha256'])[:16]}), so resuming would mix two teachers; start a new run.",
                       file=run_dir, key="distill.teacher")
