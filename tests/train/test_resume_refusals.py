"""`dlx train --resume` refusing what it can't resume (exit code 2, one paragraph, no traceback, nothing already
written lost): no checkpoint, a truncated one, one carrying code, one without the resume state, a spec and
--resume together; and a finished run, which resuming leaves as it measured it."""
from __future__ import annotations

import json
import os

import torch

from tests.conftest import assert_user_error
from tests.train.conftest import dlx, metric_rows


def test_resume_without_checkpoint(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_user_error(dlx("train", "--resume", tmp_path / "empty"), "no checkpoints/last.pt to resume from")
    assert_user_error(dlx("train", "--resume", tmp_path / "nowhere"), "no such run folder")


def test_resume_with_a_truncated_checkpoint_keeps_everything(finished_run):
    last = finished_run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:3000])
    before = {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}
    assert_user_error(dlx("train", "--resume", finished_run), "last.pt", "corrupt or truncated")
    assert {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()} == before


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_resume_refuses_a_checkpoint_carrying_code(finished_run, tmp_path):
    marker = tmp_path / "payload-ran"
    torch.save({"format": "dlx-checkpoint-1", "model": Payload(marker)}, finished_run / "checkpoints" / "last.pt")
    assert_user_error(dlx("train", "--resume", finished_run), "refusing to load this checkpoint", "posix.system",
                      "never unpickles code")
    assert not marker.exists()


def test_resume_needs_the_resume_state(finished_run):
    best = torch.load(finished_run / "checkpoints" / "best.pt", weights_only=True)
    torch.save(best, finished_run / "checkpoints" / "last.pt")
    assert_user_error(dlx("train", "--resume", finished_run), "lacks optimizer, scheduler, rng, train_state")


def test_resume_of_a_finished_run_changes_nothing_it_measured(finished_run):
    before = metric_rows(finished_run)
    result = dlx("train", "--resume", finished_run, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["status"] == "finished"
    assert metric_rows(finished_run) == before


def test_spec_and_resume_are_exclusive(finished_run, tmp_path):
    assert_user_error(dlx("train", finished_run / "config.yaml", "--resume", finished_run), "not both")
    assert_user_error(dlx("train", "--resume", finished_run, "--set", "train.epochs=3"), "--set can't change")
