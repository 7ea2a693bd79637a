"""`dlx train --nproc 2` under the signals a cluster sends: SIGINT or SIGTERM to the launcher's pid alone (not its
group, as `kill PID` or a scheduler does) stops every rank, records the run as interrupted and leaves no rank
running; a rank killed with kill -9 ends the run in a few lines naming it, and the run resumes."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import ROOT

DIGITS = ROOT / "configs" / "digits.yaml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("heavy")]  # several processes at once


def _started(run, *extra):
    """A 2-rank run that has finished its first epoch, and every process under its launcher."""
    launcher = subprocess.Popen([sys.executable, "-m", "dlx", "train", str(DIGITS), "--nproc", "2", "--out", str(run),
                                 "--set", "train.epochs=200", *extra], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().strip()):
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
        time.sleep(0.05)
    return launcher, psutil.Process(launcher.pid).children(recursive=True)


def _ended(launcher, processes):
    try:
        _, stderr = launcher.communicate(timeout=120)
        _, alive = psutil.wait_procs(processes, timeout=15)
    finally:
        for process in [launcher, *processes]:
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                process.kill()  # only if the test failed
    return stderr, alive


@pytest.mark.parametrize("target, signum", [("launcher", signal.SIGINT), ("launcher", signal.SIGTERM),
                                            ("group", signal.SIGINT)], ids=["SIGINT", "SIGTERM", "ctrl-c"])
def test_a_signal_to_the_launcher_or_its_group_stops_every_rank(tmp_path, target, signum):
    """The launcher's pid alone is what `kill PID` or a scheduler signals; its group is what Ctrl-C does."""
    run = tmp_path / "run"
    launcher, processes = _started(run)
    assert len(processes) >= 2
    (os.killpg if target == "group" else os.kill)(launcher.pid, signum)
    stderr, alive = _ended(launcher, processes)
    assert alive == []  # no rank trains on as an orphan
    assert launcher.returncode == 128 + signum, stderr
    assert stderr.count("interrupted") == 1 and f"dlx train --resume {run}" in stderr, stderr
    assert "Traceback" not in stderr and "terminate called" not in stderr, stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"


def test_a_rank_killed_with_kill_9_is_named_in_a_few_lines_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    launcher, processes = _started(run)
    ranks = [process for process in processes if process.ppid() == launcher.pid]
    assert len(ranks) == 2
    victim = max(ranks, key=lambda process: process.pid)
    victim.kill()
    stderr, alive = _ended(launcher, processes)
    assert alive == []
    assert launcher.returncode == 128 + signal.SIGKILL, stderr
    assert "Traceback" not in stderr and len(stderr.splitlines()) <= 6, stderr
    assert "died of SIGKILL" in stderr and "dlx train --resume" in stderr, stderr
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    resumed = subprocess.run([sys.executable, "-m", "dlx", "train", "--resume", str(run), "--epochs",
                              str(max(epochs) + 1), "--quiet"], cwd=ROOT, env=ENV, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs"] == max(epochs) + 1, summary


def test_sigterm_stops_a_single_process_run_as_ctrl_c_does(tmp_path):
    run = tmp_path / "run"
    launcher = subprocess.Popen([sys.executable, "-m", "dlx", "train", str(DIGITS), "--out", str(run),
                                 "--set", "train.epochs=200"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().strip()):
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
        time.sleep(0.05)
    launcher.terminate()
    _, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode == 130, stderr
    assert f"dlx train --resume {run}" in stderr and "Traceback" not in stderr, stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
