"""`dlx distill` as a user runs it: real `dlx` processes on digits with tiny models. The student is an ordinary
run folder (evaluate, export, ensemble, resume work on it), its summary records the teacher, T, alpha and both test
scores, and a distillation killed with kill -9 resumes to exactly the run that was never interrupted."""
from __future__ import annotations

import hashlib
import json
import time

import pytest

from tests.conftest import assert_user_error, run_dlx
from tests.forked import Dlx, run
from tests.reliability.conftest import DIGITS, TINY, assert_intact
from tests.reliability.test_crash_train import metric_rows

TEACHER = [DIGITS, *TINY, "--set", "train.epochs=2", "--quiet"]
STUDENT = ["--student", DIGITS, *TINY, "--set", "train.epochs=2", "--set", "seed=5"]


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """Two tiny runs and their ensemble."""
    root = tmp_path_factory.mktemp("teachers")
    for seed in (1, 2):
        run_dlx("train", *TEACHER, "--set", f"seed={seed}", "--out", root / f"run{seed}", check=0)
    run_dlx("ensemble", root / "run1", root / "run2", "--method", "average", "--out", root / "ensemble", check=0)
    return root


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_distill_an_ensemble_into_a_run_folder_that_every_command_takes(teachers, tmp_path):
    out = tmp_path / "student"
    result = run_dlx("distill", teachers / "ensemble", *STUDENT, "--temperature", "3", "--alpha", "0.7", "--out", out,
                     "--quiet", env={"COLUMNS": "80"}, check=0)
    table = [line for line in result.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert len(table) == 6 and all(len(line) <= 80 for line in table), result.stdout  # paths stay whole, to copy
    summary = json.loads((out / "summary.json").read_text())
    record = summary["distill"]
    assert summary["status"] == "finished" and record["temperature"] == 3.0 and record["alpha"] == 0.7
    assert record["teacher"]["kind"] == "ensemble"
    assert record["teacher"]["path"] == str((teachers / "ensemble").resolve())
    assert record["teacher"]["sha256"] == sha256(teachers / "ensemble" / "ensemble.yaml")
    assert record["test"]["student"] == {"accuracy": summary["test_accuracy"], "loss": summary["test_loss"]}
    teacher_scored = json.loads(run_dlx("evaluate", teachers / "ensemble", "--json", check=0).stdout)
    assert record["test"]["teacher"] == {"accuracy": teacher_scored["accuracy"], "loss": teacher_scored["loss"]}
    accuracy_row = next(line for line in table if "accuracy" in line)  # teacher and student side by side
    assert f"{teacher_scored['accuracy']:.4f}" in accuracy_row and f"{summary['test_accuracy']:.4f}" in accuracy_row

    student_scored = json.loads(run_dlx("evaluate", out, "--json", check=0).stdout)
    assert student_scored["accuracy"] == pytest.approx(summary["test_accuracy"])
    run_dlx("export", out, "--format", "onnx", check=0)
    assert (out / "export" / "onnx" / "model.onnx").is_file()
    run_dlx("ensemble", teachers / "run1", out, "--method", "average", "--out", tmp_path / "pool", check=0)
    run_dlx("train", "--resume", out, "--epochs", "3", "--quiet", check=0)  # trained further, with its teacher
    assert json.loads((out / "summary.json").read_text())["distill"]["teacher"]["kind"] == "ensemble"
    assert_intact(out)


def test_a_search_folder_teaches_through_its_best_trial_and_a_bad_teacher_is_one_error(teachers, tmp_path):
    missing = run_dlx("distill", tmp_path / "nothing", *STUDENT, "--out", tmp_path / "s1", "--quiet")
    assert_user_error(missing, "distill.teacher", "not a model")
    assert not (tmp_path / "s1" / "summary.json").exists()
    bad = run_dlx("distill", teachers / "run1", *STUDENT, "--alpha", "1.5", "--out", tmp_path / "s2", "--quiet")
    assert_user_error(bad, "distill.alpha", "1")


def test_a_distillation_killed_with_kill_9_resumes_exactly(teachers, tmp_path):
    args = ["distill", teachers / "ensemble", "--student", DIGITS, *TINY, "--set", "train.epochs=5", "--set",
            "train.batch_size=32", "--quiet"]
    code, output = run([*args, "--out", tmp_path / "reference"], tmp_path / "reference.log")
    assert code == 0, output
    reference = metric_rows(tmp_path / "reference")
    run_dir = tmp_path / "killed"
    process = Dlx([*args, "--out", run_dir], tmp_path / "killed.log")
    deadline = time.monotonic() + 120
    while len(metric_rows(run_dir)) < 2 and time.monotonic() < deadline and process.alive():
        time.sleep(0.02)
    assert process.kill(), f"the run ended before it could be killed:\n{process.output()}"
    rows = metric_rows(run_dir)
    assert 2 <= len(rows) < 5, rows
    code, output = run(["train", "--resume", run_dir, "--quiet"], tmp_path / "resumed.log")
    assert code == 0, output
    assert metric_rows(run_dir) == reference
    resumed, uninterrupted = (json.loads((folder / "summary.json").read_text())
                              for folder in (run_dir, tmp_path / "reference"))
    assert resumed["test_accuracy"] == uninterrupted["test_accuracy"]
    assert resumed["distill"]["test"] == uninterrupted["distill"]["test"]
    assert_intact(run_dir)
