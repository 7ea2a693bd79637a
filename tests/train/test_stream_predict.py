"""`dlx predict` on a folder reads, predicts and writes a chunk of images at a time: the CSV holds every image,
the same as predicting them all at once, and a bad image leaves no partial CSV behind."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from dataset_files import write_png_folder

from dlx.archs.check import load_spec
from dlx.ensemble.folder import load_model
from dlx.ensemble.predict import CHUNK, input_chunks, read_inputs
from tests.conftest import assert_user_error, run_dlx
from dlx.train.inputs import InputContract
from dlx.train.run import train


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    folder = write_png_folder(root / "images", per_class=8, size=(12, 10))
    spec = root / "spec.yaml"
    spec.write_text(f"name: p\nseed: 0\ndata: {{dataset: image_folder, path: {folder}, cache: stream, workers: 1}}\n"
                    "model:\n  layers: [{Conv2D: {filters: 4, kernel_size: 3, activation: relu}}, "
                    "GlobalAveragePooling2D, {Dense: {units: classes}}]\ntrain: {epochs: 1, batch_size: 8}\n"
                    "device: {type: cpu, threads: 1}\n")
    return train(load_spec(spec, []), out=root / "run").run_dir


def test_a_folder_larger_than_a_chunk_is_predicted_whole_and_as_at_once(folder_run, tmp_path):
    images = write_png_folder(tmp_path / "new", per_class=CHUNK // 3 + 20, size=(12, 10), seed=5)
    count = 3 * (CHUNK // 3 + 20)
    result = run_dlx("predict", folder_run, images, "--out", tmp_path / "p.csv", check=0)
    assert f"{count} predictions written" in result.stdout
    with open(tmp_path / "p.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    model = load_model(folder_run)
    contract = InputContract.from_record(model.members[0].record, model.members[0].checkpoint)
    names, whole = read_inputs(images, contract)
    expected = model.predict(whole)
    assert [row["input"] for row in table] == names and len(names) == count
    assert [int(row["predicted"]) for row in table] == expected.argmax(1).tolist()
    probabilities = np.array([[float(row[f"p_{c}"]) for c in model.class_names] for row in table])
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
    chunks = list(input_chunks(images, contract))
    assert [len(n) for n, _ in chunks] == [CHUNK, count - CHUNK]


def test_a_bad_image_in_a_later_chunk_leaves_no_partial_csv(folder_run, tmp_path):
    images = write_png_folder(tmp_path / "new", per_class=CHUNK // 3 + 20, size=(12, 10), seed=5)
    (images / "fox" / "zzz.png").write_bytes(b"not a png")
    result = run_dlx("predict", folder_run, images, "--out", tmp_path / "p.csv")
    assert_user_error(result, "zzz.png", "can't read image")
    assert not (tmp_path / "p.csv").exists() and not list(tmp_path.glob("*.tmp*"))
