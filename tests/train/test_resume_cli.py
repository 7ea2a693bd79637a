"""`dlx train --resume` through the real CLI: what it says with no arguments or on a finished run, and
`--resume RUN --epochs N`, which trains a finished or early-stopped run further (Keras's initial_epoch)."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.conftest import assert_user_error, run_dlx

MLP = """\
name: mlp
seed: 0
data: {dataset: digits}
model:
  layers: [Flatten, {Dense: {units: 16, activation: relu}}, {Dense: {units: classes}}]
train: {epochs: 2, batch_size: 128, optimizer: {name: adam, lr: 0.01}}
device: {type: cpu, threads: 1}
"""


def train_run(tmp_path, name, *sets):
    spec = tmp_path / "mlp.yaml"
    spec.write_text(MLP)
    flags = sum((["--set", s] for s in sets), [])
    run_dlx("train", spec, "--out", tmp_path / name, "--quiet", *flags, check=0)
    return tmp_path / name


def rows(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def summary(run_dir) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def snapshot(run_dir) -> dict:
    return {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 2-epoch run, copied fresh for each test."""
    return train_run(tmp_path_factory.mktemp("resume"), "finished")


@pytest.fixture
def run(finished, tmp_path):
    shutil.copytree(finished, tmp_path / "run")
    return tmp_path / "run"


def test_train_without_arguments_says_what_it_needs():
    text = assert_user_error(run_dlx("train"), "needs a spec file", "--resume RUN_DIR")
    assert "not both" not in text


def assert_already_finished(result, *fragments) -> None:
    """Not an error (the run is as complete as resuming makes it), but said plainly, with the way on."""
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    text = " ".join(result.stderr.split())
    for fragment in ("already finished", "left unchanged", "--epochs N", *fragments):
        assert fragment in text, f"{fragment!r} not in: {text}"


def test_resume_of_a_finished_run_says_so_and_changes_nothing(run):
    before = snapshot(run)
    result = run_dlx("train", "--resume", run)
    assert_already_finished(result, "trained for 2 epochs", "N above 2")
    assert snapshot(run) == before  # summary.json included: nothing rewritten
    assert f"run folder: {run}" in result.stdout  # and its results, as a resume that finished it would print
    as_json = run_dlx("train", "--resume", run, "--json")
    assert_already_finished(as_json)
    assert json.loads(as_json.stdout) == {"run_dir": str(run), **summary(run)} and snapshot(run) == before


def test_epochs_must_be_above_the_epochs_done(run):
    before = snapshot(run)
    assert_user_error(run_dlx("train", "--resume", run, "--epochs", "2"), "--epochs", "above the 2", "got 2")
    assert snapshot(run) == before


def test_epochs_needs_resume(tmp_path):
    (tmp_path / "mlp.yaml").write_text(MLP)
    assert_user_error(run_dlx("train", tmp_path / "mlp.yaml", "--epochs", "3"), "--set train.epochs=N")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle", "step"])
def test_epochs_trains_a_finished_run_further(tmp_path, scheduler):
    """2 epochs, then --epochs 4: the first two epochs stay as they were, the spec plans 4, and from epoch 3 on the
    learning rate is the one a 4-epoch schedule has at that step (the schedule is rebuilt for the new total)."""
    schedule = f"train.scheduler={{name: {scheduler}, step_size: 1, gamma: 0.5}}"
    run_dir = train_run(tmp_path, "run", schedule)
    first = rows(run_dir)
    result = run_dlx("train", "--resume", run_dir, "--epochs", "4", check=0)
    assert f"run folder: {run_dir}" in result.stdout
    after = rows(run_dir)
    assert [r["epoch"] for r in after] == [1, 2, 3, 4] and after[:2] == first
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["epochs"] == 4
    s = summary(run_dir)
    assert s["status"] == "finished" and s["epochs"] == 4 and not s["stopped_early"]
    assert s["test_accuracy"] is not None
    planned = train_run(tmp_path, "planned", schedule, "train.epochs=4")  # the same spec planned for 4 epochs
    assert [r["lr"] for r in after[2:]] == pytest.approx([r["lr"] for r in rows(planned)[2:]], rel=1e-6)
    assert_already_finished(run_dlx("train", "--resume", run_dir), "trained for 4 epochs")


def test_epochs_continues_an_early_stopped_run_with_fresh_patience(tmp_path):
    """min_delta 1 means no epoch after the first improves: patience 2 stops at epoch 3. --epochs 10 continues,
    and with patience counted afresh it stops again two epochs later, at epoch 5."""
    run_dir = train_run(tmp_path, "run", "train.epochs=10", "train.early_stopping={patience: 2, min_delta: 1.0}")
    assert summary(run_dir)["stopped_early"] and summary(run_dir)["epochs"] == 3
    assert_already_finished(run_dlx("train", "--resume", run_dir), "stopped early after 3 epochs")
    run_dlx("train", "--resume", run_dir, "--epochs", "10", "--quiet", check=0)
    s = summary(run_dir)
    assert [r["epoch"] for r in rows(run_dir)] == [1, 2, 3, 4, 5]
    assert s["status"] == "finished" and s["stopped_early"] and s["epochs"] == 5 and s["best_epoch"] == 1


def test_run_folder_is_printed_when_training_starts(tmp_path):
    spec = tmp_path / "mlp.yaml"
    spec.write_text(MLP)
    result = run_dlx("train", spec, "--out", tmp_path / "run", check=0)  # piped: one progress line per epoch
    lines = result.stderr.splitlines()
    started = next(i for i, line in enumerate(lines) if line.startswith("run folder:"))
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("epoch"))
    assert started < first_epoch and lines[started] == f"run folder: {tmp_path / 'run'}"
