"""`dlx train` / `dlx evaluate` through the real CLI: kill -9 and resume, Ctrl-C, every bad input
(exit code 2, one paragraph, no traceback, nothing already written lost), the shipped configs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from dataset_files import TINY_CNN, write_mnist, write_npz, write_png_folder
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import ROOT
from train.rundir import TIMING_COLUMNS

SHIPPED = ["mnist_xception.yaml", "cifar10_resnet.yaml", "fashion_mnist_cnn.yaml"]


def dlx(*args):
    """Run a dlx command in this process, through the same Typer app and error boundary as `dlx`."""
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments) -> str:
    lines = [line for line in result.output.splitlines() if not line.startswith("run folder: ")]  # said at start
    text = " ".join(" ".join(lines).split())
    assert result.exit_code == 2, f"exit {result.exit_code} ({result.exception!r}):\n{result.output}"
    assert "Traceback" not in text and text.startswith("error:") and text.count("error:") == 1, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in: {text}"
    return text


def spec_file(tmp_path, data: str, model: str = TINY_CNN, train: str = "epochs: 1, batch_size: 16") -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: cli\nseed: 0\ndata: {data}\n{model}\ntrain: {{{train}}}\n"
                    "device: {type: cpu, threads: 1}\n")
    return str(path)


def metric_rows(run_dir):
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_COLUMNS}
            for line in lines]


def start_dlx(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "cli.main", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_epoch(process, run_dir, epoch: int, timeout: float = 120) -> None:
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


def test_train_then_evaluate_json(tmp_path):
    write_png_folder(tmp_path / "pics" / "train", per_class=8, seed=1)
    write_png_folder(tmp_path / "pics" / "val", per_class=2, seed=2)
    write_png_folder(tmp_path / "pics" / "test", per_class=3, seed=3)
    spec = spec_file(tmp_path, f"{{dataset: image_folder, path: {tmp_path / 'pics'}, image_size: 8}}")
    result = dlx("train", spec, "--out", tmp_path / "run", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    report = dlx("evaluate", tmp_path / "run", "--json")
    assert report.exit_code == 0, report.output
    data = json.loads(report.stdout)
    assert data["split"] == "test" and data["samples"] == 9 and data["accuracy"] == pytest.approx(summary["test_accuracy"])
    assert np.array(data["confusion_matrix"]).sum() == 9
    text = dlx("evaluate", tmp_path / "run", "--split", "val")
    assert text.exit_code == 0 and "val: accuracy" in text.stdout and "(6 samples)" in text.stdout
    assert_user_error(dlx("evaluate", tmp_path / "run", "--split", "train"), "unknown split 'train'", "val, test")


def test_train_mnist_gz_through_the_cli(tmp_path):
    write_mnist(tmp_path / "data", gz=True)
    spec = spec_file(tmp_path, f"{{dataset: mnist, root: {tmp_path / 'data'}}}")
    result = dlx("train", spec, "--out", tmp_path / "run", "--set", "model.layers.0.Conv2D.filters=2")
    assert result.exit_code == 0, result.output
    assert "test_accuracy" in result.stdout and (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    assert "epoch   1  loss" in result.stderr  # not a terminal: one plain line per epoch, no live bar
    quiet = dlx("train", spec, "--out", tmp_path / "quiet", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


# ---- bad input: exit code 2, one paragraph, no traceback ----

def test_missing_dataset_files(tmp_path):
    spec = spec_file(tmp_path, f"{{dataset: fashion_mnist, root: {tmp_path / 'data'}, download: false}}")
    assert_user_error(dlx("train", spec, "--out", tmp_path / "run"),
                      f"expected train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                      f"t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] in the folder "
                      f"{tmp_path / 'data' / 'FashionMNIST' / 'raw'}", "data.download: true")


@pytest.mark.parametrize("arrays, message", [
    ({"y_train": None}, "the .npz lacks y_train"),
    ({"y_test": np.zeros(3, np.int64)}, "x_test has 20 samples but y_test has 3"),
])
def test_bad_npz(tmp_path, arrays, message):
    npz = write_npz(tmp_path / "d.npz", **arrays)
    assert_user_error(dlx("train", spec_file(tmp_path, f"{{dataset: npz, path: {npz}}}")), message, str(npz))


def test_labels_out_of_range(tmp_path):
    write_mnist(tmp_path / "data", train_labels=(np.arange(60) % 11).astype(np.uint8))
    spec = spec_file(tmp_path, f"{{dataset: mnist, root: {tmp_path / 'data'}}}")
    assert_user_error(dlx("train", spec, "--out", tmp_path / "run"), "labels range over 0..10",
                      "labels must lie in 0..9")


def test_image_folder_without_images(tmp_path):
    (tmp_path / "pics" / "cat").mkdir(parents=True)
    spec = spec_file(tmp_path, f"{{dataset: image_folder, path: {tmp_path / 'pics'}}}")
    assert_user_error(dlx("train", spec, "--out", tmp_path / "run"), "no images found in class sub-folders")


def test_output_folder_that_cannot_be_written(tmp_path):
    npz = write_npz(tmp_path / "d.npz")
    (tmp_path / "file.txt").write_text("keep me")
    spec = spec_file(tmp_path, f"{{dataset: npz, path: {npz}}}")
    assert_user_error(dlx("train", spec, "--out", tmp_path / "file.txt" / "run"), "the output folder can't be written")
    assert (tmp_path / "file.txt").read_text() == "keep me"


def test_nan_loss_from_inf_values_in_the_data(tmp_path):
    x = np.ones((60, 8, 8, 1), np.float32)
    x[7, 3, 3, 0] = np.inf
    npz = write_npz(tmp_path / "d.npz", x_train=x)
    spec = spec_file(tmp_path, f"{{dataset: npz, path: {npz}}}")
    assert_user_error(dlx("train", spec, "--out", tmp_path / "run"), "non-finite (NaN or inf) at epoch 1, batch 1 of 4",
                      "no checkpoint was written")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "failed"


@pytest.fixture
def finished_run(tmp_path):
    npz = write_npz(tmp_path / "d.npz")
    run = tmp_path / "run"
    result = dlx("train", spec_file(tmp_path, f"{{dataset: npz, path: {npz}}}"), "--out", run, "--quiet")
    assert result.exit_code == 0, result.output
    return run


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


def test_evaluate_a_folder_without_checkpoint(tmp_path):
    assert_user_error(dlx("evaluate", tmp_path), "best.pt", "checkpoint not found")


# ---- shipped configs ----

@pytest.mark.parametrize("config", SHIPPED)
def test_shipped_config_passes_summary_and_config(config):
    path = ROOT / "configs" / config
    assert path.read_text().startswith("#")  # documents itself
    summary = dlx("summary", path, "--json")
    assert summary.exit_code == 0, summary.output
    assert json.loads(summary.stdout)["trainable_params"] > 0
    resolved = dlx("config", path)
    assert resolved.exit_code == 0 and "dataset:" in resolved.stdout


def test_shipped_configs_use_the_promised_parts():
    xception = (ROOT / "configs" / "mnist_xception.yaml").read_text()
    resnet = (ROOT / "configs" / "cifar10_resnet.yaml").read_text()
    assert "SeparableConv2D" in xception and "Residual" in xception
    assert "Residual" in resnet and "BatchNormalization" in resnet and "random_crop_padding: 4" in resnet
