"""Disk and permission faults: a full disk while a checkpoint is written keeps the previous one loadable and
says so (exit code 2); a read-only output folder is refused before training starts."""
from __future__ import annotations

import json
import textwrap

import pytest
import torch
from typer.testing import CliRunner

from dlx.cli.main import app
from tests.conftest import ROOT, assert_user_error, run_dlx
from tests.reliability.conftest import DIGITS, TINY, assert_intact
from tests.tmpfs import tmpfs

ENOSPC_AFTER = textwrap.dedent("""\
    # injected by tests/reliability: torch.save fails with ENOSPC from call number {n} on, as on a full disk
    import errno, torch
    _save, _calls = torch.save, [0]
    def _full_disk(*args, **kwargs):
        _calls[0] += 1
        if _calls[0] >= {n}:
            raise OSError(errno.ENOSPC, "No space left on device")
        return _save(*args, **kwargs)
    torch.save = _full_disk
""")


@pytest.mark.slow
def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoints(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(ENOSPC_AFTER.format(n=3))  # epoch 1 writes best.pt and last.pt
    run = tmp_path / "run"
    result = run_dlx("train", DIGITS, *TINY, "--set", "train.epochs=3", "--set", "train.metric=val_loss",
                     "--out", run, "--quiet", env={"PYTHONPATH": f"{hook}:{ROOT}"})
    assert_user_error(result, "could not write the checkpoint", "No space left on device",
                      "the previous checkpoint is intact")
    for name in ("best.pt", "last.pt"):
        assert torch.load(run / "checkpoints" / name, weights_only=True)["epoch"] == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed"
    # the state moves on only with its checkpoint: the summary describes epoch 1, whose checkpoints exist
    assert (summary["epochs"], summary["best_epoch"]) == (1, 1), summary
    assert not [p for p in run.rglob("*.tmp")], "the failed write left its temporary file"
    assert_intact(run)
    resumed = run_dlx("train", "--resume", run, "--quiet")  # with room again, the run continues from epoch 1
    assert resumed.returncode == 0, resumed.stderr
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


@pytest.fixture
def read_only_folder(tmp_path):
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as folder:
        yield folder


def test_a_read_only_output_folder_is_refused_before_training(read_only_folder):
    result = CliRunner().invoke(app, ["train", str(DIGITS), *TINY, "--out", str(read_only_folder / "run")])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in text, text
    assert "the output folder can't be written (Read-only file system)" in text and "epoch" not in text
    result = CliRunner().invoke(app, ["train", str(DIGITS), *TINY, "--set", f"output.dir={read_only_folder}"])
    assert result.exit_code == 2 and "Read-only file system" in " ".join(result.output.split())


def test_an_output_path_below_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("keep")
    result = CliRunner().invoke(app, ["train", str(DIGITS), *TINY, "--out", str(tmp_path / "file" / "run")])
    assert result.exit_code == 2 and "the output folder can't be written (Not a directory)" in " ".join(
        result.output.split())
    assert (tmp_path / "file").read_text() == "keep"
