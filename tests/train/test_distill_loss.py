"""Distillation (train.distill): the loss is the formula it claims, and the teacher is only ever asked about
training images, whether its outputs are cached or computed per batch."""
from __future__ import annotations

import hashlib
import json
import math
import shutil

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import run_dlx
from tests.reliability.conftest import DIGITS, TINY

import dlx.ensemble  # noqa: F401  registers the teacher loader, as the dlx command does
from dlx.archs.check import load_spec
from dlx.core.errors import DlxError
from dlx.ensemble.teacher import FolderTeacher
from dlx.experiment.load import spec_to_dict
from dlx.experiment.yamlio import dump_yaml
from dlx.train.data import load_splits
from dlx.train.distill import distillation_loss
from dlx.train.run import train

SETS = [value for flag, value in zip(TINY[::2], TINY[1::2])] + ["train.epochs=2", "train.batch_size=64"]


def reference_loss(student, teacher, labels, temperature, alpha):
    """The formula written out with numpy, term by term: alpha·T²·KL(p_T ‖ q_T) + (1 − alpha)·CE."""
    s, t = np.asarray(student, np.float64), np.asarray(teacher, np.float64)
    total = 0.0
    for row in range(len(labels)):
        p = np.exp(t[row] / temperature) / np.exp(t[row] / temperature).sum()  # teacher at T
        q = np.exp(s[row] / temperature) / np.exp(s[row] / temperature).sum()  # student at T
        kl = sum(p[c] * math.log(p[c] / q[c]) for c in range(len(p)))
        ce = -math.log(np.exp(s[row, labels[row]]) / np.exp(s[row]).sum())
        total += alpha * temperature ** 2 * kl + (1 - alpha) * ce
    return total / len(labels)


@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.5), (4.0, 0.9), (2.5, 0.0), (3.0, 1.0)])
def test_the_loss_equals_its_formula_on_a_fixed_batch(temperature, alpha):
    generator = torch.Generator().manual_seed(7)
    student = torch.randn(6, 5, generator=generator) * 3
    teacher = torch.log_softmax(torch.randn(6, 5, generator=generator) * 2, dim=1)  # a teacher gives log-probs
    labels = torch.tensor([0, 4, 2, 2, 1, 3])
    loss = distillation_loss(student, teacher, labels, temperature, alpha)
    assert loss.item() == pytest.approx(reference_loss(student, teacher, labels, temperature, alpha), rel=1e-5)


def test_the_loss_sends_gradients_to_the_student_only():
    student = torch.randn(4, 3, requires_grad=True)
    teacher = torch.log_softmax(torch.randn(4, 3), dim=1)
    distillation_loss(student, teacher, torch.tensor([0, 1, 2, 0]), 2.0, 0.7).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0


def image_keys(unit_images: np.ndarray, scale: float) -> list[str]:
    """One key per image: its raw pixel values (digits: integers 0–16), so rounding in the [0, 1] scaling
    doesn't matter."""
    raw = np.rint(np.asarray(unit_images, np.float64) / scale).astype(np.int64)
    return [hashlib.sha256(image.tobytes()).hexdigest() for image in raw]


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teacher") / "teacher"
    train(load_spec(DIGITS, SETS + ["seed=3"]), out=folder)
    return folder


@pytest.mark.parametrize("budget, augment, expected_targets", [
    ("256MB", False, "cached"),   # every training image once, up front
    (1, False, "per batch"),     # a budget too small: each batch as it is trained on
    ("256MB", True, "per batch"),  # augmented batches: never cached
])
def test_the_teacher_is_asked_about_training_images_only(teacher_run, tmp_path, monkeypatch, budget, augment,
                                                         expected_targets):
    asked: list[np.ndarray] = []
    original = FolderTeacher.log_probs

    def recording(self, unit_x):
        asked.append(unit_x.detach().cpu().numpy().copy())
        return original(self, unit_x)

    monkeypatch.setattr(FolderTeacher, "log_probs", recording)
    sets = SETS + [f"distill.teacher={teacher_run}", f"distill.cache_budget={budget}"]
    if augment:
        sets.append("data.augment.horizontal_flip=true")
    spec = load_spec(DIGITS, sets)
    result = train(spec, out=tmp_path / "student")
    assert result.summary["distill"]["targets"] == expected_targets

    splits = load_splits(spec.data)
    keys = {split: set(image_keys(np.asarray(splits.x[split]) * splits.scale, splits.scale))
            for split in ("train", "val", "test")}
    seen = image_keys(np.concatenate(asked), splits.scale) if asked else []
    train_count = len(splits.y["train"])
    epochs = spec.train.epochs
    assert len(seen) == (train_count if expected_targets == "cached" else epochs * train_count)
    allowed = set(keys["train"])
    if augment:  # a flipped training image is still a training image, seen flipped
        allowed |= set(image_keys((np.asarray(splits.x["train"]) * splits.scale)[..., ::-1], splits.scale))
    else:
        assert set(seen) == keys["train"]  # every training image
    assert set(seen) <= allowed
    only_held_out = (keys["val"] | keys["test"]) - allowed  # digits has a few exact duplicates across splits
    assert len(only_held_out) > 400 and not only_held_out & set(seen)


def test_a_search_whose_base_is_a_distillation_spec_tunes_t_alpha_and_width(teacher_run, tmp_path):
    base = load_spec(DIGITS, SETS + ["train.epochs=1", f"distill.teacher={teacher_run}"])
    (tmp_path / "student.yaml").write_text(dump_yaml(spec_to_dict(base)))
    (tmp_path / "space.yaml").write_text(
        "base: student.yaml\ntrials: 2\nsampler: random\nparams:\n  distill.temperature: {float: [1.0, 8.0]}\n"
        "  distill.alpha: {float: [0.1, 0.9]}\n  model.vars.width: {int: [4, 8], step: 4}\n")
    out = tmp_path / "search"
    run_dlx("search", tmp_path / "space.yaml", "--out", out, "--quiet", check=0)
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in sorted((out / "trials").iterdir())]
    assert len(summaries) == 2 and all(s["status"] == "finished" for s in summaries)
    configs = [yaml.safe_load((folder / "config.yaml").read_text()) for folder in sorted((out / "trials").iterdir())]
    for summary, config in zip(summaries, configs):
        assert summary["distill"]["temperature"] == config["distill"]["temperature"]
        assert summary["distill"]["alpha"] == config["distill"]["alpha"]
        assert summary["distill"]["teacher"]["path"] == str(teacher_run.resolve())
    assert len({c["distill"]["temperature"] for c in configs}) == 2  # each trial its own T


def test_resuming_after_the_teacher_changed_is_refused(teacher_run, tmp_path):
    teacher = tmp_path / "teacher"
    shutil.copytree(teacher_run, teacher)
    student = tmp_path / "student"
    train(load_spec(DIGITS, SETS + ["train.epochs=1", f"distill.teacher={teacher}"]), out=student)
    train(load_spec(DIGITS, SETS + ["train.epochs=1", "seed=9"]), out=tmp_path / "other")
    shutil.copy(tmp_path / "other" / "checkpoints" / "best.pt", teacher / "checkpoints" / "best.pt")
    before = (student / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(DlxError, match="the teacher changed since this run started"):
        train(None, resume=student, epochs=2)
    assert (student / "checkpoints" / "last.pt").read_bytes() == before
