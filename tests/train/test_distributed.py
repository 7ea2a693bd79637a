"""One run on several processes (torchrun + DistributedDataParallel, gloo on CPU): one run folder, the same
result as one process with the same global batch, checkpoints usable at any world size, and a killed rank that
torchrun restarts without losing or repeating an epoch."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, assert_user_error, run_dlx

DIGITS = ROOT / "configs" / "digits.yaml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def epochs_recorded(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")  # several processes: never two such tests at once under `--dist loadgroup`
def test_two_processes_train_like_one_and_write_one_run_folder(tmp_path):
    runs = tmp_path / "runs"
    settings = ["--set", "train.epochs=12", "--set", f"output.dir={runs}", "--quiet"]
    one = run_dlx("train", DIGITS, *settings, check=0)
    two = subprocess.run([sys.executable, "-m", "dlx", "train", str(DIGITS), "--nproc", "2", *settings], cwd=ROOT,
                         env=ENV, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr
    folders = sorted(p for p in runs.iterdir() if p.is_dir())
    assert len(folders) == 2  # one for each run, whatever its world size
    by_size = {summary(folder)["world_size"]: folder for folder in folders}
    single, double = by_size[1], by_size[2]
    assert summary(double)["status"] == "finished" and epochs_recorded(double) == list(range(1, 13))
    two_images = 2 / 143 + 1e-6  # digits' validation split: DDP's reductions and per-rank batch statistics differ
    assert abs(summary(double)["val_accuracy"] - summary(single)["val_accuracy"]) <= two_images
    assert summary(double)["test_accuracy"] >= summary(single)["test_accuracy"] - 0.02
    assert two.stdout.count(f"run folder: {double}\n") == 1  # rank 0 alone reports, with the path whole
    assert "best epoch" in one.stdout

    # the checkpoints hold the plain model: one process evaluates them to the metrics the two processes reported
    evaluated = run_dlx("evaluate", double, "--split", "val", "--json", check=0)
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(summary(double)["val_accuracy"], abs=1e-6)
    # ... and goes on training the run
    run_dlx("train", "--resume", double, "--epochs", "13", "--quiet", check=0)
    assert summary(double)["world_size"] == 1 and epochs_recorded(double) == list(range(1, 14))


def _rank_process(launcher: subprocess.Popen, rank: str):
    import psutil
    for child in psutil.Process(launcher.pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == rank and child.environ().get("LOCAL_RANK") is not None:
                return child
        except psutil.Error:
            continue
    return None


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")
def test_a_killed_rank_is_restarted_by_torchrun_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "--max-restarts=1",
               "-m", "dlx", "train", str(DIGITS), "--out", str(run), "--quiet", "--set", "train.epochs=8",
               "--set", "train.batch_size=16"]  # more steps an epoch: the kill lands inside one
    launcher = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while len(epochs_recorded(run)) < 2 and time.time() < deadline and launcher.poll() is None:
        time.sleep(0.05)
    victim = _rank_process(launcher, "1")
    assert victim is not None and len(epochs_recorded(run)) == 2, launcher.communicate()
    victim.send_signal(signal.SIGKILL)
    out, err = launcher.communicate(timeout=600)
    assert launcher.returncode == 0, err
    assert epochs_recorded(run) == list(range(1, 9))  # none lost, none repeated
    assert summary(run)["status"] == "finished" and summary(run)["world_size"] == 2
    sessions = json.loads((run / "provenance.json").read_text())["sessions"]
    assert len(sessions) == 2  # the first group, and the one torchrun restarted, which resumed the same folder
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_sync_batch_norm_on_cpu_is_refused_before_launching(tmp_path):
    result = run_dlx("train", DIGITS, "--nproc", "2", "--set", "device=cpu", "--set", "train.sync_batch_norm=true",
                     "--out", tmp_path / "run")
    assert_user_error(result, "train.sync_batch_norm", "CUDA")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")
def test_streamed_and_in_memory_data_give_two_processes_the_same_batches(tmp_path):
    """Each rank reads only its share of every global batch, from disk (data.cache: stream) as from memory."""
    from dataset_files import write_png_folder
    from dlx.train.rundir import TIMING_COLUMNS
    folder = write_png_folder(tmp_path / "images", per_class=14, size=(12, 10))
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: s\nseed: 0\ndata: {{dataset: image_folder, path: {folder}, workers: 1, augment: "
                    "{random_crop_padding: 2}}\nmodel:\n  layers:\n    - Conv2D: {filters: 4, kernel_size: 3}\n"
                    "    - BatchNormalization\n    - GlobalAveragePooling2D\n    - Dense: {units: classes}\n"
                    "train: {epochs: 2, batch_size: 8, optimizer: {name: adam, lr: 0.01}}\ndevice: cpu\n")
    runs = {}
    for cache in ("memory", "stream"):
        runs[cache] = tmp_path / cache
        subprocess.run([sys.executable, "-m", "dlx", "train", str(spec), "--nproc", "2", "--out", str(runs[cache]),
                        "--quiet", "--set", f"data.cache={cache}"], cwd=ROOT, env=ENV, check=True, timeout=600)
    rows = {cache: [{k: v for k, v in json.loads(line).items() if k not in TIMING_COLUMNS}
                    for line in (run / "metrics.jsonl").read_text().splitlines()] for cache, run in runs.items()}
    assert rows["memory"] == rows["stream"] and len(rows["stream"]) == 2
    assert summary(runs["stream"])["data_cache"] == "stream" and summary(runs["stream"])["world_size"] == 2
