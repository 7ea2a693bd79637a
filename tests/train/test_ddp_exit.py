"""`dlx train --nproc` ends cleanly: a finished run exits 0 with no traceback even on a loaded machine (a rank
used to abort at exit now and then, train.distributed.exit_rank), and Ctrl-C stops every rank at once, says so
once and leaves no process behind."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

DIGITS = ROOT / "configs" / "digits.yaml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("heavy")]  # several processes at once


def test_finished_runs_beside_a_busy_process_all_end_cleanly():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ddp_exit_loop.py"), "--runs", "4", "--busy",
                           "1"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0 and "0 of 4 runs not clean" in done.stdout, done.stdout + done.stderr


def test_ctrl_c_stops_every_rank_and_says_so_once(tmp_path):
    import psutil
    run = tmp_path / "run"
    launcher = subprocess.Popen([sys.executable, "-m", "dlx", "train", str(DIGITS), "--nproc", "2", "--out", str(run),
                                 "--set", "train.epochs=200"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)  # as a terminal's job
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().strip()):
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
        time.sleep(0.05)
    processes = psutil.Process(launcher.pid).children(recursive=True)  # torchrun's ranks, their data workers
    assert len(processes) >= 2
    try:
        os.killpg(launcher.pid, signal.SIGINT)  # what Ctrl-C does: the signal to the terminal's foreground group
        stdout, stderr = launcher.communicate(timeout=120)
        _, alive = psutil.wait_procs(processes, timeout=10)
    finally:
        for process in [launcher, *processes]:
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                process.kill()  # only if the test failed
    assert launcher.returncode == 130, stderr
    assert stderr.count("interrupted") == 1 and f"dlx train --resume {run}" in stderr, stderr
    assert "Traceback" not in stderr and "terminate called" not in stderr, stderr
    assert alive == []  # no rank left training on its own
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
