"""`dlx export` and `dlx predict MODEL.onnx` through the real CLI: the torch-free predict path and each error."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, assert_user_error, run_dlx

# Runs `dlx predict` in a fresh interpreter and reports whether torch was imported on the way.
TORCH_FREE = """
import json, sys
from dlx.cli.main import app
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "torch": "torch" in sys.modules}))
"""


@pytest.fixture(scope="module")
def onnx_export(runs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    result = run_dlx("export", runs["cnn"], "--format", "onnx", "--out", folder, "--json", check=0)
    assert json.loads(result.stdout)["verification"]["same_class"] == 359
    return folder


def digit_images(folder, count=3, size=(8, 8)):
    from sklearn.datasets import load_digits
    folder.mkdir(exist_ok=True)
    digits = load_digits()
    for i in range(count):
        pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).resize(size).save(folder / f"{i}.png")
    return folder


@pytest.mark.slow
def test_export_prints_where_and_how_well(runs, tmp_path):
    result = run_dlx("export", runs["mlp"], "--format", "pt2", "--out", tmp_path, check=0)
    assert "pt2 model written to" in result.stdout and "same class on 359/359" in result.stdout
    assert (tmp_path / "model.pt2").is_file() and (tmp_path / "export.json").is_file()


@pytest.mark.slow
def test_predict_onnx_without_torch(onnx_export, tmp_path):
    images = digit_images(tmp_path / "images")
    result = subprocess.run([sys.executable, "-c", TORCH_FREE, "predict", str(onnx_export / "model.onnx"),
                             str(images), "--out", str(tmp_path / "p.csv")], cwd=ROOT, capture_output=True,
                            text=True, env={"PYTHONPATH": str(ROOT), "COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {"code": 0, "torch": False}, result.stderr
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0].startswith("input,predicted,class,p_0") and len(lines) == 4


@pytest.mark.slow
def test_predict_onnx_matches_predict_on_the_run(runs, onnx_export, tmp_path):
    images = digit_images(tmp_path / "images", count=300)  # more than one chunk (export.runtime.CHUNK)
    csv = tmp_path / "onnx.csv"
    exported = json.loads(run_dlx("predict", onnx_export / "model.onnx", images, "--json", "--out", csv,
                                  check=0).stdout)
    eager = json.loads(run_dlx("predict", runs["cnn"], images, "--json", check=0).stdout)
    assert len(exported["predictions"]) == len(eager["predictions"]) == 300
    assert len(csv.read_text().splitlines()) == 301  # the header and every image, written chunk by chunk
    for mine, theirs in zip(exported["predictions"], eager["predictions"]):
        assert mine["input"] == theirs["input"] and mine["predicted"] == theirs["predicted"]
        assert np.abs(np.array(mine["probabilities"]) - theirs["probabilities"]).max() < 1e-4


def test_unknown_format_is_a_usage_error(tmp_path):
    assert_user_error(run_dlx("export", tmp_path, "--format", "tflite"), "tflite")


def test_not_a_model_folder(tmp_path):
    assert_user_error(run_dlx("export", tmp_path), "not a model")


@pytest.mark.slow
def test_predict_onnx_refuses_other_sizes(onnx_export, tmp_path):
    images = digit_images(tmp_path / "images", count=1, size=(10, 10))
    assert_user_error(run_dlx("predict", onnx_export / "model.onnx", images), "8×8", "10×10", "Resize it first")


@pytest.mark.slow
def test_predict_onnx_refuses_resize(onnx_export, tmp_path):
    images = digit_images(tmp_path / "images", count=1)
    assert_user_error(run_dlx("predict", onnx_export / "model.onnx", images, "--resize"), "--resize")


def test_predict_onnx_needs_export_json(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not onnx")
    assert_user_error(run_dlx("predict", tmp_path / "model.onnx", tmp_path), "export.json", "Export the model again")


def test_predict_onnx_refuses_a_damaged_model(tmp_path):
    document = {"format": "onnx", "input": {"name": "images", "shape": ["batch", 8, 8, 1]},
                "output": {"name": "probabilities"}, "class_names": ["a", "b"], "source": {"members": [{}]},
                "model_sha256": hashlib.sha256(b"not onnx").hexdigest()}
    (tmp_path / "export.json").write_text(json.dumps(document))
    (tmp_path / "model.onnx").write_bytes(b"not onnx")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.png")
    assert_user_error(run_dlx("predict", tmp_path / "model.onnx", tmp_path / "x.png"), "not an ONNX model")
