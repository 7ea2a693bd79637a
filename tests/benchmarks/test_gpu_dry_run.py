"""`benchmarks/gpu.py --cpu-dry-run`: the GPU check, run on the CPU with tiny sizes so that it can't rot before
it meets a GPU. A real subprocess, its table read from a pipe as a user would see it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

ROWS = ["pytest -m gpu", "train img/s, resnet", "max RSS MB, resnet", "train img/s, airbench", "max RSS MB, airbench",
        "airbench epoch s per 50k images, compile off", "airbench epoch s per 50k images, compile on",
        "search, 2 workers on cpu"]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "gpu.json"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "CUDA_VISIBLE_DEVICES")}
    env["CUDA_VISIBLE_DEVICES"] = ""  # a GPU machine must take the CPU path too: the dry run promises the CPU
    done = subprocess.run([sys.executable, "benchmarks/gpu.py", "--cpu-dry-run", "--out", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done.stdout, json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")
def test_every_row_runs_and_has_figures(dry_run):
    _, result = dry_run
    rows = {r["comparison"].split(" (")[0].removesuffix(", vs best loop"): r for r in result["rows"]}
    assert list(rows) == ROWS and result["dry_run"] is True
    assert not any("error" in r for r in rows.values())
    counts = rows["pytest -m gpu"]["counts"]  # no CUDA: every GPU test skips, none fails
    assert counts["tests"] >= 7 and counts["skipped"] == counts["tests"] and rows["pytest -m gpu"]["met"]
    for name in ROWS[1:5]:
        row = rows[name]
        assert row["dlx"] > 0 and row["reference"] > 0 and row["ratio"] == pytest.approx(
            row["dlx"] / row["reference"]) and row["device"] == "cpu"
    for name in ROWS[5:7]:
        row = rows[name]
        assert row["dlx"] > 0 and row["first_epoch_seconds"] > 0 and len(row["epoch_seconds_per_50k"]) == 2
        assert row["reference"] == pytest.approx(3.09 / 9.9)
    assert rows[ROWS[6]]["backend"] == "aot_eager" and rows[ROWS[5]]["backend"] is None
    search = rows["search, 2 workers on cpu"]
    assert search["met"] and search["devices"] == ["cpu"] and search["trials_per_hour"] > 0
    assert all(r["seconds"] > 0 for r in rows.values())


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")
def test_the_table_prints_within_80_columns(dry_run):
    stdout, result = dry_run
    lines = stdout.splitlines()
    assert any("dlx GPU check (CPU dry run" in line for line in lines)
    assert max(len(line) for line in lines) <= 80
    starts = iter(line.strip() for line in lines)
    for row in result["rows"]:  # in order, each row starts a line: its label (wrapped below), verdict, seconds
        line = next(text for text in starts if text.startswith(row["comparison"][:14]))
        verdict = {True: "yes", False: "NO", None: "-"}[row["met"]]
        assert line.split()[-2:] == [verdict, f"{row['seconds']:.0f}"], line
