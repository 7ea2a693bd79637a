"""`dlx diff A B` through the real CLI: runs that differ in one spec key, in their data, and in nothing; a run
against a spec file; `dlx runs --columns` shows chosen spec keys beside the metrics."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import assert_user_error, run_dlx

SPEC = """name: d
seed: 0
data: {{dataset: npz, path: {npz}}}
model:
  vars: {{width: 4}}
  layers:
    - Conv2D: {{filters: "${{width}}", kernel_size: 3, padding: same, activation: relu}}
    - GlobalAveragePooling2D
    - Dense: {{units: classes}}
train: {{epochs: 1, batch_size: 16}}
device: {{type: cpu, threads: 1}}
"""


def _npz(path, seed: int):
    rng = np.random.default_rng(seed)
    y = np.arange(60) % 3
    x = np.clip(y[:, None, None, None] * 80 + rng.integers(0, 40, (60, 8, 8, 1)), 0, 255).astype(np.uint8)
    np.savez(path, x_train=x[:45], y_train=y[:45], x_test=x[45:], y_test=y[45:])
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """base, base again, width 8 instead of 4, and the same spec on other data: four one-epoch runs."""
    root = tmp_path_factory.mktemp("diff")
    spec = root / "spec.yaml"
    spec.write_text(SPEC.format(npz=_npz(root / "a.npz", 0)))
    other = root / "other.yaml"
    other.write_text(SPEC.format(npz=_npz(root / "b.npz", 1)))
    made = {"base": (spec,), "again": (spec,), "wide": (spec, "--set", "model.vars.width=8"), "data": (other,)}
    for name, args in made.items():
        run_dlx("train", *args, "--out", root / "runs" / name, "--quiet", check=0)
    return root


def diff_json(a, b) -> dict:
    return json.loads(run_dlx("diff", a, b, "--json", check=0).stdout)


def test_runs_differing_in_one_key_show_that_key_and_the_metrics(runs):
    result = diff_json(runs / "runs" / "base", runs / "runs" / "wide")
    assert result["spec"] == [{"key": "model.vars.width", "a": 4, "b": 8}]
    assert result["same_spec"] is False and result["data"]["same"] is True
    params = {row["key"]: row for row in result["metrics"]}["trainable_params"]
    assert params["b"] > params["a"] and params["difference"] == params["b"] - params["a"]
    assert result["provenance"] == []  # same code, packages, host and device


def test_runs_differing_in_data_show_the_fingerprints(runs):
    result = diff_json(runs / "runs" / "base", runs / "runs" / "data")
    assert [row["key"] for row in result["spec"]] == ["data.path"]
    assert result["data"]["same"] is False and result["data"]["a"] != result["data"]["b"]
    text = run_dlx("diff", runs / "runs" / "base", runs / "runs" / "data", check=0).stdout
    assert f"data: differs (A {result['data']['a']}, B {result['data']['b']})" in text


def test_identical_runs_differ_in_nothing_but_timing(runs):
    result = diff_json(runs / "runs" / "base", runs / "runs" / "again")
    assert result["spec"] == [] and result["same_spec"] and result["same_data"] and result["provenance"] == []
    metrics = {row["key"]: row for row in result["metrics"]}
    for key in ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "trainable_params", "best_epoch"):
        assert metrics[key]["difference"] == 0, key
    text = run_dlx("diff", runs / "runs" / "base", runs / "runs" / "again", check=0).stdout
    assert "spec: the same" in text and "data: same (" in text


def test_a_run_against_its_spec_file_and_a_changed_one(runs):
    result = diff_json(runs / "runs" / "wide", runs / "spec.yaml")
    assert result["b"]["kind"] == "spec"
    assert result["spec"] == [{"key": "model.vars.width", "a": 8, "b": 4}]
    assert result["data"] == {"a": result["data"]["a"], "b": None, "same": None}


def test_provenance_differences_are_listed(runs, tmp_path):
    copy = shutil.copytree(runs / "runs" / "base", tmp_path / "copy")
    record = json.loads((copy / "provenance.json").read_text())
    record["sessions"][-1]["packages"]["torch"] = "0.0.1"
    (copy / "provenance.json").write_text(json.dumps(record))
    result = diff_json(runs / "runs" / "base", copy)
    assert [row["key"] for row in result["provenance"]] == ["packages.torch"]
    assert result["provenance"][0]["b"] == "0.0.1"


def test_diff_refuses_what_is_neither_a_run_nor_a_spec(runs, tmp_path):
    assert_user_error(run_dlx("diff", runs / "runs" / "base", tmp_path / "missing"), "no such run folder or spec")
    assert_user_error(run_dlx("diff", runs / "runs" / "base", tmp_path), "has no config.yaml")


def test_runs_columns_show_spec_keys_and_sort_by_them(runs):
    rows = json.loads(run_dlx("runs", runs / "runs", "--columns", "model.vars.width,train.epochs", "--sort",
                              "model.vars.width", "--json", check=0).stdout)
    assert [r["model.vars.width"] for r in rows] == [8, 4, 4, 4]
    assert all(r["train.epochs"] == 1 for r in rows)
    table = run_dlx("runs", runs / "runs", "--columns", "model.vars.width", check=0).stdout
    assert "model.vars.width" in table
    kept = json.loads(run_dlx("runs", runs / "runs", "--columns", "model.vars.width", "--filter",
                              "model.vars.width=8", "--json", check=0).stdout)
    assert [r["path"].rsplit("/", 1)[-1] for r in kept] == ["wide"]


def test_runs_columns_refuse_an_unknown_key_with_a_suggestion(runs):
    assert_user_error(run_dlx("runs", runs / "runs", "--columns", "model.vars.widht"),
                      "unknown spec key 'model.vars.widht'", "Did you mean 'model.vars.width'?")
