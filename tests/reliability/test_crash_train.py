"""kill -9 at random moments during `dlx train`; each time `dlx train --resume` carries on, and the finished run
equals one that was never interrupted: epochs 1..N each exactly once, same metrics, same test accuracy."""
from __future__ import annotations

import json
import time

from tests.reliability.conftest import DIGITS, TINY, assert_intact, rng
from tests.reliability.forked import Dlx, run
from train.rundir import TIMING_COLUMNS

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
