"""`dlx train` then `dlx evaluate` in-process through the real Typer app: an image folder and gzipped MNIST
files trained end to end, evaluate's --json and --split, and evaluate on a folder without a checkpoint; a grayscale
image folder trained as one channel, then predicted on and evaluated by the real CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from dataset_files import write_mnist, write_png_folder

from tests.conftest import assert_user_error, run_dlx
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


def test_a_grayscale_folder_trains_as_one_channel_and_takes_grayscale_or_rgb_input(tmp_path):
    write_png_folder(tmp_path / "pics", per_class=12, size=(8, 8), mode="L")
    write_png_folder(tmp_path / "inputs", classes=("any",), per_class=1, size=(8, 8), mode="L")
    write_png_folder(tmp_path / "colour", classes=("any",), per_class=1, size=(8, 8))
    spec = spec_file(tmp_path, f"{{dataset: image_folder, path: {tmp_path / 'pics'}}}")
    result = run_dlx("train", spec, "--out", tmp_path / "run", check=0)
    assert "data: 1 channel (data.channels auto: all 36 images are single-channel)" in result.stderr.splitlines()
    run = tmp_path / "run"
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["channels"] == 1
    assert json.loads((run / "summary.json").read_text())["channels"] == 1
    record = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["data"]
    assert record["input_shape"] == [1, 8, 8] and record["input"]["channels"] == 1
    assert record["channels"]["count"] == 1
    grey = run_dlx("predict", run, tmp_path / "inputs" / "any" / "000.png", "--json", check=0)
    assert grey.stderr == "" and json.loads(grey.stdout)["notices"] == []
    colour = run_dlx("predict", run, tmp_path / "colour" / "any" / "000.png", "--json", check=0)
    assert json.loads(colour.stdout)["notices"] == ["RGB image converted to grayscale: the model takes 1 channel."]
    report = json.loads(run_dlx("evaluate", run, "--json", check=0).stdout)
    assert report["samples"] == 6 and report["input_contract"]["shape"] == [1, 8, 8]


def test_a_run_from_before_data_channels_still_evaluates_as_it_was_trained(tmp_path):
    """Such a run (no data.channels in its spec) took a grayscale folder as RGB: it is re-read as RGB."""
    write_png_folder(tmp_path / "pics", per_class=12, size=(8, 8), mode="L")
    spec = spec_file(tmp_path, f"{{dataset: image_folder, path: {tmp_path / 'pics'}, channels: 3}}")
    assert dlx("train", spec, "--out", tmp_path / "run", "--quiet").exit_code == 0
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=True)
    del state["spec"]["data"]["channels"], state["data"]["channels"]
    torch.save(state, best)
    report = json.loads(run_dlx("evaluate", tmp_path / "run", "--json", check=0).stdout)
    assert report["input_contract"]["shape"] == [3, 8, 8] and report["samples"] == 6
