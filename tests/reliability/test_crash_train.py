"""kill -9 at random moments during `dlx train`; each time `dlx train --resume` carries on, and the finished run
equals one that was never interrupted: epochs 1..N each exactly once, same metrics, same test accuracy."""
from __future__ import annotations

import json
import signal
import time

import pytest

from tests.forked import Dlx, run
from tests.reliability.conftest import DIGITS, TINY, assert_intact, rng
from tests.reliability.midwrite import INTERRUPT_EPOCH, interrupt_after_last_checkpoint, kill_writing
from dlx.train.rundir import TIMING_COLUMNS

pytestmark = pytest.mark.slow  # the quick subset (-m "not slow") leaves this suite to CI

KILLS = 10
EPOCHS = 8
SPEC = [DIGITS, *TINY, "--set", f"train.epochs={EPOCHS}", "--set", "train.batch_size=32", "--quiet"]


def metric_rows(run_dir):
    path = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def check_after_kill(run_dir):
    """What a kill may leave: whole files only, and a last.pt that agrees with metrics.jsonl."""
    assert_intact(run_dir)
    rows = metric_rows(run_dir)
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    last = run_dir / "checkpoints" / "last.pt"
    if last.exists():
        import torch
        epoch = torch.load(last, weights_only=True)["epoch"]
        # last.pt is written before metrics.jsonl: a kill in between leaves it one epoch ahead, never behind
        assert epoch in (len(rows), len(rows) + 1), (epoch, len(rows))
    return rows


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")  # kill and multi-process tests: never two at once under `--dist loadgroup`
def test_train_survives_ten_kills_and_matches_an_uninterrupted_run(tmp_path):
    started = time.monotonic()
    code, output = run(["train", *SPEC, "--out", tmp_path / "reference"], tmp_path / "reference.log")
    assert code == 0, output
    reference_seconds = time.monotonic() - started
    reference = metric_rows(tmp_path / "reference")
    reference_test = json.loads((tmp_path / "reference" / "summary.json").read_text())["test_accuracy"]
    assert len(reference) == EPOCHS

    draw = rng(1)
    kills, mid_epoch, runs, attempt = 0, 0, 0, 0

    def more_kills() -> bool:  # at least KILLS, and on until 3 of them landed after an epoch (timing varies)
        return kills < KILLS or (mid_epoch < 3 and kills < 3 * KILLS)

    while more_kills():
        runs += 1
        run_dir = tmp_path / f"run{runs}"
        first = True
        while True:
            attempt += 1
            args = ["train", *SPEC, "--out", run_dir] if first else ["train", "--resume", run_dir, "--quiet"]
            process = Dlx(args, tmp_path / f"attempt{attempt}.log")
            if more_kills():
                time.sleep(draw.uniform(0.0, 0.8 * reference_seconds))  # setup, any epoch, any checkpoint write
                before = len(metric_rows(run_dir))
                if process.kill():
                    kills += 1
                    rows = check_after_kill(run_dir)
                    mid_epoch += 0 < len(rows) < EPOCHS and len(rows) >= before
                    if first and not (run_dir / "checkpoints" / "last.pt").exists():
                        continue  # killed before its first epoch was saved: nothing to resume, start it again
                    first = False
                    continue
            assert process.wait() == 0, process.output()
            break
        assert metric_rows(run_dir) == reference, f"run {run_dir} differs from the uninterrupted run"
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["test_accuracy"] == reference_test
        assert_intact(run_dir)
    assert kills >= KILLS and mid_epoch >= 3, (kills, mid_epoch)


SHORT = [DIGITS, *TINY, "--set", "train.epochs=3", "--set", "train.batch_size=32", "--quiet"]


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")
def test_a_kill_while_last_pt_is_written_keeps_the_previous_checkpoint_and_the_metrics_in_step(tmp_path):
    """A random kill rarely lands inside a checkpoint write: this one does (midwrite.kill_writing), half-way through
    epoch 2's last.pt. Epoch 1's last.pt must still load, metrics.jsonl must not be ahead of it, and the resumed
    run must equal one that was never interrupted."""
    code, output = run(["train", *SHORT, "--out", tmp_path / "reference"], tmp_path / "reference.log")
    assert code == 0, output
    run_dir = tmp_path / "run"
    process = Dlx(["train", *SHORT, "--out", run_dir], tmp_path / "killed.log", patches=kill_writing("last.pt@2"))
    assert process.wait() == -signal.SIGKILL, f"the write of epoch 2's last.pt was never reached:\n{process.output()}"
    rows = check_after_kill(run_dir)
    import torch
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    assert len(rows) == 1, "metrics.jsonl went on to an epoch whose checkpoint was never written"
    code, output = run(["train", "--resume", run_dir, "--quiet"], tmp_path / "resumed.log")
    assert code == 0, output
    assert metric_rows(run_dir) == metric_rows(tmp_path / "reference")
    assert_intact(run_dir)


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")
def test_ctrl_c_between_a_checkpoint_and_its_metrics_waits_until_both_are_written(tmp_path):
    """Ctrl-C arriving right after epoch 2's last.pt is in place (midwrite.interrupt_after_last_checkpoint), before
    its metrics and summary: dlx holds it until they are written too, then stops with exit code 130. The summary,
    metrics.jsonl and last.pt then describe the same epoch, and --resume finishes the run."""
    run_dir = tmp_path / "run"
    process = Dlx(["train", *SHORT, "--out", run_dir], tmp_path / "interrupted.log",
                  patches=interrupt_after_last_checkpoint())
    assert process.wait() == 130, process.output()
    import torch
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert last["epoch"] == INTERRUPT_EPOCH and last["train_state"]["epoch"] == INTERRUPT_EPOCH
    assert summary["status"] == "interrupted"
    assert (summary["epochs"], len(metric_rows(run_dir))) == (INTERRUPT_EPOCH, INTERRUPT_EPOCH), \
        "Ctrl-C split an epoch: its checkpoint was written but not its metrics or summary"
    assert_intact(run_dir)
    code, output = run(["train", "--resume", run_dir, "--quiet"], tmp_path / "resumed.log")
    assert code == 0, output
    assert [row["epoch"] for row in metric_rows(run_dir)] == [1, 2, 3]
