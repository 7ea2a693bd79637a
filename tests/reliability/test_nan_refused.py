"""Issue 21, item 6: no silent NaN. A tampered ensemble weight, temperature or combiner, or a checkpoint with
non-finite weights, is refused by `dlx predict` and `dlx evaluate` (exit code 2, naming the file and the field)
instead of printing probability `nan`; JSON files are written strictly, without NaN/Infinity tokens."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import ROOT, assert_user_error, run_dlx

CONFIG = ROOT / "configs" / "digits.yaml"
TINY = ["--set", "model.layers=[Flatten, {Dense: {units: 16, activation: relu}}, {Dense: {units: classes}}]",
        "--set", "model.vars={}", "--set", "train.epochs=1", "--set", "device.type=cpu", "--quiet"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two one-epoch digits runs, an averaging and a stacking ensemble of them, and an input to predict."""
    root = tmp_path_factory.mktemp("nan")
    for seed in (0, 1):
        run_dlx("train", CONFIG, *TINY, "--set", f"seed={seed}", "--out", root / f"run{seed}", check=0)
    for method in ("average", "stacking"):
        run_dlx("ensemble", root / "run0", root / "run1", "--method", method, "--out", root / method, check=0)
    from sklearn.datasets import load_digits
    np.savez(root / "input.npz", x=(load_digits().images[:5] / 16).astype(np.float32))
    return root


def _copy(built, name, tmp_path):
    """A copy of an ensemble folder whose members are found through their absolute paths."""
    target = tmp_path / name
    shutil.copytree(built / name, target)
    return target


def _tamper_member(folder, field, value):
    path = folder / "ensemble.yaml"
    document = yaml.safe_load(path.read_text())
    document["members"][0][field] = value
    path.write_text(yaml.safe_dump(document))


@pytest.mark.parametrize("field, value", [("weight", float("inf")), ("weight", float("nan")), ("temperature", 0.0),
                                          ("temperature", float("inf")), ("weight", "heavy")])
def test_a_non_finite_member_weight_or_temperature_is_refused(field, value, built, tmp_path):
    folder = _copy(built, "average", tmp_path)
    _tamper_member(folder, field, value)
    for command in (["predict", folder, built / "input.npz"], ["evaluate", folder]):
        assert_user_error(run_dlx(*command), str(folder / "ensemble.yaml"), f"at 'members[0].{field}'", "finite")


@pytest.mark.parametrize("name, value", [("coef", np.nan), ("intercept", np.inf)])
def test_non_finite_combiner_coefficients_are_refused(name, value, built, tmp_path):
    folder = _copy(built, "stacking", tmp_path)
    with np.load(folder / "combiner.npz", allow_pickle=False) as archive:
        arrays = {key: archive[key].copy() for key in archive.files}
    arrays[name].flat[0] = value
    np.savez(folder / "combiner.npz", **arrays)
    result = run_dlx("predict", folder, built / "input.npz")
    assert_user_error(result, str(folder / "combiner.npz"), f"at '{name}'", "NaN or infinite")


def test_a_combiner_of_the_wrong_shape_is_refused(built, tmp_path):
    folder = _copy(built, "stacking", tmp_path)
    np.savez(folder / "combiner.npz", coef=np.zeros((3, 3)), intercept=np.zeros(10))
    assert_user_error(run_dlx("predict", folder, built / "input.npz"), "at 'coef'", "shape (10, 20)")


def test_a_checkpoint_with_nan_weights_is_refused(built, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(built / "run0", run)
    best = run / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=True)
    name = next(iter(state["model"]))
    state["model"][name].view(-1)[0] = float("nan")
    torch.save(state, best)
    for command in (["predict", run, built / "input.npz"], ["evaluate", run]):
        assert_user_error(run_dlx(*command), str(best), f"the weights '{name}' hold NaN or infinite values")


def _strict(text: str):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def test_a_tampered_infinite_value_is_refused_not_written_back(built, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(built / "run0", run)
    for line in (run / "metrics.jsonl").read_text().splitlines():  # dlx itself writes strict JSON
        _strict(line)
    _strict((run / "summary.json").read_text())
    summary_path = run / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["wall_seconds"] = float("-inf")
    summary_path.write_text(json.dumps(summary))  # Python writes -Infinity, as the tampered file had
    tampered = summary_path.read_bytes()
    assert_user_error(run_dlx("train", "--resume", run, "--epochs", "2", "--quiet"), "summary.json",
                      "wall_seconds", "finite")
    assert summary_path.read_bytes() == tampered  # refused before anything is written
