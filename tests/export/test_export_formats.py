"""Each format exported from a run and from ensembles, reloaded in its own runtime and checked against eager
PyTorch (`dlx predict`'s path) on the run's test split: probabilities within 1e-4, the same class everywhere."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from dlx.export.api import TOLERANCE, build_graph, split_chunks
from dlx.export.formats import run

FORMATS = ["onnx", "torchscript", "pt2"]


def check_agreement(source, fmt, folder):
    """Reload the written file independently of the export's own check and compare on the test split."""
    import torch
    document = json.loads((folder / "export.json").read_text())
    _, model, factor = build_graph(source)
    chunks = list(split_chunks(model, factor, size=100))  # several chunks: verify's own way of reading the split
    images, unit = (np.concatenate([chunk[i] for chunk in chunks]) for i in (0, 1))
    with torch.inference_mode():
        eager = model.predict(unit)
    exported = run(fmt, folder / document["file"], images)
    assert exported.shape == eager.shape == (len(images), 10)
    assert np.abs(exported - eager).max() <= TOLERANCE
    assert (exported.argmax(1) == eager.argmax(1)).all()
    one = run(fmt, folder / document["file"], images[:1])  # another batch size than the export's example
    assert np.abs(one - eager[:1]).max() <= TOLERANCE
    return document


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_run_exports_and_agrees(runs, fmt, tmp_path):
    from dlx.export import export_model
    result = export_model(runs["cnn"], fmt, tmp_path)
    document = check_agreement(runs["cnn"], fmt, tmp_path)
    assert document["format"] == fmt and result["verification"] == document["verification"]
    assert document["input"] == {**document["input"], "name": "images", "shape": ["batch", 8, 8, 1],
                                 "dtype": "float32", "range": [0, 255]}
    assert document["output"] == {"name": "probabilities", "shape": ["batch", 10], "dtype": "float32"}
    assert document["class_names"] == [str(i) for i in range(10)]
    assert document["source"]["kind"] == "run" and len(document["checkpoint_sha256"]) == 64
    assert document["verification"]["same_class"] == document["verification"]["samples"] > 0
    assert document["versions"]["dlx"] and document["versions"]["torch"]
    assert document["opset"] == (18 if fmt == "onnx" else None)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["average", "stacking"])
def test_ensemble_exports_as_one_graph(ensembles, kind, fmt, tmp_path):
    from dlx.export import export_model
    export_model(ensembles[kind], fmt, tmp_path)
    document = check_agreement(ensembles[kind], fmt, tmp_path)
    assert document["source"]["kind"] == "ensemble" and len(document["source"]["members"]) == 2
    assert len(document["checkpoint_sha256"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".dlx-folder.json", "export.json", document["file"]])
    assert document["model_sha256"] == hashlib.sha256((tmp_path / document["file"]).read_bytes()).hexdigest()


@pytest.mark.slow
def test_default_folder_is_inside_the_run(runs):
    from dlx.export import export_model
    result = export_model(runs["mlp"], "onnx")
    assert (runs["mlp"] / "export" / "onnx" / "model.onnx").is_file()
    assert result["out"] == str(runs["mlp"] / "export" / "onnx")
