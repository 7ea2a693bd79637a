"""Evaluation uses batch-norm statistics that describe the weights being evaluated (issue 12), and training
that goes wrong silently says so. Real MNIST images (tests/realdata.py), the real CLI."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.conftest import run_dlx
from tests.realdata import write_mnist5k
from tests.train.dataset_files import write_png_folder

# A small separable CNN with Keras's BatchNormalization defaults (momentum 0.99): 4,000 MNIST images at batch
# 128 give ~28 steps an epoch, and the moving averages still hold ~75% of their initial values after epoch 1.
SEPARABLE_CNN = """
model:
  layers:
    - Conv2D: {filters: 16, kernel_size: 3, padding: same, use_bias: false}
    - BatchNormalization: {}
    - Activation: relu
    - SeparableConv2D: {filters: 32, kernel_size: 3, padding: same, use_bias: false}
    - BatchNormalization: {}
    - Activation: relu
    - MaxPooling2D: 2
    - SeparableConv2D: {filters: 32, kernel_size: 3, padding: same, use_bias: false}
    - BatchNormalization: {}
    - Activation: relu
    - GlobalAveragePooling2D
    - Dense: {units: classes}
"""


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    return write_mnist5k(tmp_path_factory.mktemp("mnist5k"))


def mnist_spec(tmp_path, root, extra: str = "") -> str:
    path = tmp_path / "sep.yaml"
    path.write_text(f"name: sep\nseed: 0\ndata: {{dataset: mnist, root: '{root}'}}\n{SEPARABLE_CNN}\n"
                    f"train: {{epochs: 3, batch_size: 128, optimizer: {{name: adam, lr: 0.01}}{extra}}}\n"
                    "device: cpu\n")
    return str(path)


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def healthy_run(mnist_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("healthy")
    run_dlx("train", mnist_spec(tmp, mnist_root), "--out", tmp / "run", "--quiet", check=0)
    return tmp / "run"


@pytest.mark.slow  # real MNIST images, trained to a quality bar
def test_validation_tracks_training_with_keras_default_momentum(healthy_run):
    """Without recomputed statistics this network scores ~0.1 (chance) on validation after each epoch."""
    for row in rows(healthy_run):
        assert row["val_accuracy"] >= row["train_accuracy"] - 0.05, row
    assert rows(healthy_run)[-1]["val_accuracy"] > 0.6
    summary = json.loads((healthy_run / "summary.json").read_text())
    assert summary["warnings"] == []


@pytest.mark.slow  # real MNIST images, trained to a quality bar
def test_evaluate_reproduces_the_checkpoints_metrics(healthy_run):
    summary = json.loads((healthy_run / "summary.json").read_text())
    result = json.loads(run_dlx("evaluate", healthy_run, "--split", "val", "--json", check=0).stdout)
    assert result["accuracy"] == summary["val_accuracy"]
    assert result["loss"] == pytest.approx(summary["val_loss"], rel=1e-6, abs=1e-7)
    test = json.loads(run_dlx("evaluate", healthy_run, "--split", "test", "--json", check=0).stdout)
    assert test["accuracy"] == summary["test_accuracy"]


@pytest.mark.slow  # real MNIST images, trained to a quality bar
def test_off_keeps_the_lagging_moving_averages(mnist_root, tmp_path):
    run_dlx("train", mnist_spec(tmp_path, mnist_root, ", precise_bn: off"), "--out", tmp_path / "run", check=0)
    last = rows(tmp_path / "run")[-1]
    assert last["val_accuracy"] < 0.5 < last["train_accuracy"], last  # the lag the default removes


def test_recomputed_statistics_are_the_plain_average_over_the_sample():
    from dlx.train.bn_stats import recompute_bn_stats
    from dlx.train.device import DevicePlan

    class Data:
        def __init__(self, x):
            self.x, self.y = x, torch.zeros(len(x), dtype=torch.long)

        def __len__(self):
            return len(self.x)

        def take(self, index):
            return self.x[index], self.y[index]

    x = torch.randn(512, 3, 4, 4) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1) + 5
    norm = torch.nn.BatchNorm2d(3, momentum=0.01)
    model = torch.nn.Sequential(norm, torch.nn.Dropout(0.5)).train()
    plan = DevicePlan(torch.device("cpu"), None, False)
    assert recompute_bn_stats(model, Data(x), images=512, batch_size=512, plan=plan, seed=0)
    assert torch.allclose(norm.running_mean, x.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(norm.running_var, x.var(dim=(0, 2, 3)), rtol=1e-3)
    assert norm.momentum == 0.01 and model.training  # settings restored


def test_a_swapped_validation_folder_warns(tmp_path):
    """A val/ folder whose class folders hold another class's images: training learns, validation can't."""
    root = tmp_path / "data"
    write_png_folder(root / "train", per_class=30, size=(8, 8))
    write_png_folder(root / "val", per_class=6, size=(8, 8))
    (root / "val" / "cat").rename(root / "val" / "tmp")
    (root / "val" / "dog").rename(root / "val" / "cat")
    (root / "val" / "tmp").rename(root / "val" / "dog")
    shutil.rmtree(root / "val" / "fox")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: swapped\nseed: 0\ndata: {{dataset: image_folder, path: '{root}'}}\n"
                    "model:\n  layers:\n    - Conv2D: {filters: 8, kernel_size: 3, activation: relu}\n"
                    "    - GlobalAveragePooling2D\n    - Dense: {units: classes}\n"
                    "train: {epochs: 8, batch_size: 16, optimizer: {name: adam, lr: 0.03}}\ndevice: cpu\n")
    result = run_dlx("train", spec, "--out", tmp_path / "run", check=0)
    warnings = json.loads((tmp_path / "run" / "summary.json").read_text())["warnings"]
    kinds = [w["kind"] for w in warnings]
    assert kinds[0] == "missing_class" and "val_at_chance" in kinds, warnings
    assert "'fox'" in warnings[0]["message"]
    text = " ".join(result.stderr.split())
    for w in warnings:  # printed once each
        assert text.count(" ".join(w["message"].split())[:60]) == 1
