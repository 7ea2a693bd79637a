"""`dlx train` interrupted for real: kill -9 mid-run then `--resume` reproduces the uninterrupted metrics, and
Ctrl-C (SIGINT) stops with a resumable checkpoint. Real `python -m cli.main` processes, waited on through the
metrics file they write, so a busy machine only makes them slower."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from dataset_files import TINY_CNN, write_npz

from tests.conftest import ROOT
from tests.train.conftest import dlx, metric_rows, spec_file

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("heavy")]


def start_dlx(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "dlx", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_epoch(process, run_dir, epoch: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(metric_rows(run_dir)) >= epoch:
            return
        assert process.poll() is None, f"dlx ended early: {process.communicate()}"
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"no epoch {epoch} within {timeout} s")


@pytest.fixture
def slow_spec(tmp_path):
    """A spec whose epochs take long enough (~0.1-0.3 s) for a signal to land between them."""
    npz = write_npz(tmp_path / "d.npz", n_train=600, n_test=30)
    return spec_file(tmp_path, f"{{dataset: npz, path: {npz}, augment: {{horizontal_flip: true}}}}",
                     model=TINY_CNN.replace("Conv2D: {", "Conv2D: {use_bias: true, ").replace(
                         "    - GlobalAveragePooling2D", "    - Dropout: 0.1\n    - GlobalAveragePooling2D"),
                     train="epochs: 8, batch_size: 8, optimizer: {name: sgd, lr: 0.05, momentum: 0.9}, "
                           "scheduler: {name: cosine, warmup_epochs: 1}")


def test_kill_9_then_resume_reproduces_the_uninterrupted_metrics(slow_spec, tmp_path):
    killed = tmp_path / "killed"
    process = start_dlx("train", slow_spec, "--out", killed, "--quiet")
    wait_for_epoch(process, killed, 2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    done = len(metric_rows(killed))
    assert 2 <= done < 8, "the run finished before it was killed"
    assert json.loads((killed / "summary.json").read_text())["status"] == "running"

    resumed = start_dlx("train", "--resume", killed, "--quiet")
    assert resumed.wait(timeout=300) == 0, resumed.communicate()
    reference = dlx("train", slow_spec, "--out", tmp_path / "straight", "--quiet")  # never interrupted
    assert reference.exit_code == 0, reference.output
    assert len(metric_rows(killed)) == 8 and metric_rows(killed) == metric_rows(tmp_path / "straight")
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["test_accuracy"] == json.loads(
        (tmp_path / "straight" / "summary.json").read_text())["test_accuracy"]


def test_ctrl_c_stops_with_a_resumable_checkpoint(slow_spec, tmp_path):
    run = tmp_path / "run"
    process = start_dlx("train", slow_spec, "--out", run, "--quiet")
    wait_for_epoch(process, run, 1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    summary = json.loads((run / "summary.json").read_text())
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert summary["status"] == "interrupted" and summary["epochs"] == last["epoch"] == len(metric_rows(run)) >= 1
    assert f"holds epoch {last['epoch']}" in stderr and f"dlx train --resume {run}" in " ".join(stderr.split())
