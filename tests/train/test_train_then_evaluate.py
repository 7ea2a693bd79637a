"""`dlx train` then `dlx evaluate` in-process through the real Typer app: an image folder and gzipped MNIST
files trained end to end, evaluate's --json and --split, and evaluate on a folder without a checkpoint."""
from __future__ import annotations

import json

import numpy as np
import pytest
from dataset_files import write_mnist, write_png_folder

from tests.conftest import assert_user_error
from tests.train.conftest import dlx, spec_file


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


def test_evaluate_a_folder_without_checkpoint(tmp_path):
    assert_user_error(dlx("evaluate", tmp_path), "best.pt", "checkpoint not found")
