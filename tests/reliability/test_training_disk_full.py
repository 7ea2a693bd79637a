"""A really full disk while `dlx train` writes: a small tmpfs, filled to a chosen number of free bytes. torch.save
reports ENOSPC as a RuntimeError of its zip writer, and config.yaml, split.json, the marker, provenance.json and
the summary as OSErrors; each is exit code 2 with one paragraph saying the disk is full and naming the file, and
what was written before stays whole (the previous checkpoint loads, and the run resumes once there is room)."""
from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import assert_user_error, run_dlx
from tests.reliability.conftest import DIGITS, TINY, assert_intact
from tests.tmpfs import fill, tmpfs

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path / "disk", "2m") as folder:
        yield folder


def test_a_full_disk_while_checkpointing_says_so_and_keeps_the_previous_checkpoint(small_disk):
    run = small_disk / "run"
    run_dlx("train", DIGITS, *TINY, "--set", "train.epochs=1", "--set", "train.metric=val_loss", "--out", run,
            "--quiet", check=0)
    filler = fill(small_disk, leave=24 * 1024)  # room for the small records, not for last.pt (about 40 kB)
    result = run_dlx("train", "--resume", run, "--epochs", "3", "--quiet")
    assert_user_error(result, "could not write the checkpoint: the disk is full", "No space left on device",
                      "the previous checkpoint is intact", ".pt")
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1  # where a resume starts
    assert_intact(run)  # best.pt (epoch 1, or epoch 2 where its smaller file still fitted) loads too
    filler.unlink()  # with room again, the run continues from epoch 1
    assert run_dlx("train", "--resume", run, "--epochs", "3", "--quiet").returncode == 0
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


@pytest.mark.parametrize("leave", [0, 14 * 1024, 20 * 1024, 28 * 1024])  # the marker, provenance, split, epoch 1
def test_a_full_disk_in_a_new_run_says_so_naming_the_file(small_disk, leave):
    """The marker, provenance.json, config.yaml and split.json are written before training, checkpoints and the
    summary after each epoch; whichever finds the disk full is named, and nothing in the folder is half-written."""
    fill(small_disk, leave)
    run = small_disk / "run"
    result = run_dlx("train", DIGITS, *TINY, "--set", "train.epochs=1", "--out", run, "--quiet")
    text = assert_user_error(result, "the disk is full", "No space left on device")
    assert str(run) in text, text
    if run.exists():
        assert_intact(run)
