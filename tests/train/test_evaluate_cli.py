"""`dlx evaluate` through the real CLI: the confusion matrix as a table at 80 columns (class names on both axes,
rows true, columns predicted) and in --json, and a dataset that no longer matches the checkpoint's input record
refused with exit code 2."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import ROOT, assert_user_error, run_dlx

COMMON = ["--set", "train.epochs=1", "--set", "output.save_last=false", "--set", "device.type=cpu", "--quiet"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate") / "digits"
    run_dlx("train", ROOT / "configs" / "digits.yaml", *COMMON, "--out", out, check=0)
    return out


def test_table_shows_the_confusion_matrix_with_class_names_at_80_columns(digits_run):
    result = json.loads(run_dlx("evaluate", digits_run, "--json", check=0).stdout)
    matrix, names = result["confusion_matrix"], result["class_names"]
    assert names == [str(d) for d in range(10)] and np.array(matrix).sum() == result["samples"]
    text = run_dlx("evaluate", digits_run, env={"COLUMNS": "80"}, check=0).stdout
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    assert "rows: true class, columns: predicted" in text
    header = next(line for line in lines if line.strip().startswith("true \\ pred"))
    assert header.split()[3:] == names, header  # "true \ pred" then every class name
    rows = {line.split()[0]: [int(v) for v in line.split()[1:]] for line in lines
            if line.split() and line.split()[0] in names and len(line.split()) == len(names) + 1}
    assert [rows[name] for name in names] == matrix, text
    assert f"accuracy {result['accuracy']:.4f}" in text


def test_a_dataset_that_changed_since_training_is_refused(tmp_path):
    from sklearn.datasets import load_digits
    bunch = load_digits()
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=np.round(bunch.images / 16 * 255).astype(np.uint8), y_train=bunch.target)
    run_dlx("train", ROOT / "configs" / "digits.yaml", *COMMON, "--set", "data.dataset=npz", "--set",
            f"data.path={path}", "--out", tmp_path / "run", check=0)
    run_dlx("evaluate", tmp_path / "run", check=0)
    np.savez(path, x_train=bunch.images, y_train=bunch.target)  # the same digits, now float64 0–16
    assert_user_error(run_dlx("evaluate", tmp_path / "run"), "no longer matches", "uint8 values in 0–255",
                      "dtype float64")
