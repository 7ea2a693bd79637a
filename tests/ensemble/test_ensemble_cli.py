"""`dlx ensemble`, `dlx predict` and `dlx evaluate` on an ensemble, through the real CLI."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from tests.conftest import assert_user_error, run_dlx
from tests.ensemble.conftest import GOOD


def _ensemble(runs, names, out, *extra):
    result = run_dlx("ensemble", *(runs[n] for n in names), "--out", out, "--json", *extra, check=0)
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def weighted(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("ens") / "weighted"
    return _ensemble(runs, [*GOOD, "poor"], out, "--method", "weighted", "--metric", "nll"), out


def test_weighted_beats_best_member_and_average_on_validation(weighted):
    result, out = weighted
    val = {k: result["results"][k]["val"] for k in ("best_member", "average", "ensemble")}
    assert val["ensemble"]["nll"] <= val["best_member"]["nll"] + 1e-9
    assert val["ensemble"]["nll"] <= val["average"]["nll"] + 1e-9
    assert abs(sum(m["weight"] for m in result["members"]) - 1) < 1e-6
    for key in ("best_member", "average", "ensemble"):
        assert set(result["results"][key]["test"]) == {"accuracy", "nll", "ece"}
    assert (out / "ensemble.yaml").is_file()
    assert json.loads((out / "ensemble.json").read_text())["members"][0]["run"] == result["members"][0]["run"]


def test_poor_model_gets_less_weight_than_good_ones(weighted):
    result, _ = weighted
    weights = {m["run"].rsplit("/", 1)[-1]: m["weight"] for m in result["members"]}
    assert weights["poor"] < max(weights[n] for n in GOOD)
    assert weights["poor"] <= 0.05
    row = next(m for m in result["members"] if m["run"].endswith("poor"))
    assert row["val_accuracy"] < 0.6


def test_same_architecture_other_seed_is_flagged_as_near_duplicate(weighted):
    result, _ = weighted
    pair = next(p for p in result["pairs"] if {p["a"].rsplit("/", 1)[-1], p["b"].rsplit("/", 1)[-1]} == {"mlp", "mlp_seed1"})
    assert pair["near_duplicate"], pair
    assert any("another seed" in line for line in result["advice"])
    assert all(0 <= p["disagreement"] <= 1 for p in result["pairs"])


def test_second_run_reads_cached_predictions(runs, weighted, tmp_path):
    first, _ = weighted
    caches = sorted((runs["mlp"] / "predictions").glob("*.npz"))
    assert len(caches) == 1
    mtime = caches[0].stat().st_mtime_ns
    second = _ensemble(runs, [*GOOD, "poor"], tmp_path / "again", "--temperature", "--method", "weighted",
                       "--metric", "nll")
    assert second["cache"] == {"hits": 5, "misses": 0}
    assert caches[0].stat().st_mtime_ns == mtime
    assert first["cache"]["hits"] + first["cache"]["misses"] == 5  # other modules may have filled the caches
    assert any(abs(m["temperature"] - 1) > 1e-3 for m in second["members"])
    assert second["results"]["ensemble"]["val"]["nll"] <= second["results"]["best_member"]["val"]["nll"] + 1e-9


@pytest.mark.parametrize("method", ["average", "greedy", "stacking"])
def test_other_methods(runs, tmp_path, method):
    result = _ensemble(runs, [*GOOD, "poor"], tmp_path / method, "--method", method)
    assert result["method"] == method
    weights = [m["weight"] for m in result["members"]]
    assert abs(sum(weights) - 1) < 1e-6 and min(weights) >= 0
    ensemble, best = result["results"]["ensemble"], result["results"]["best_member"]
    assert ensemble["test"]["accuracy"] > 0.85
    if method == "greedy":  # the best ensemble on the selection path, started from the best few members
        assert ensemble["val"]["accuracy"] >= best["val"]["accuracy"] - 0.01
        assert result["members"][-1]["weight"] < max(weights)
    if method == "stacking":  # the combiner is saved and reloaded; test scores match
        evaluated = json.loads(run_dlx("evaluate", tmp_path / method, "--json", check=0).stdout)
        assert evaluated["accuracy"] == pytest.approx(ensemble["test"]["accuracy"])
        assert (tmp_path / method / "combiner.npz").is_file()


def test_evaluate_accepts_an_ensemble_folder(weighted):
    result, out = weighted
    evaluated = json.loads(run_dlx("evaluate", out, "--json", check=0).stdout)
    assert evaluated["accuracy"] == pytest.approx(result["results"]["ensemble"]["test"]["accuracy"])
    assert evaluated["loss"] == pytest.approx(result["results"]["ensemble"]["test"]["nll"], rel=1e-4)
    assert np.asarray(evaluated["confusion_matrix"]).sum() == evaluated["samples"]


class Payload:
    """Unpickling this runs os.mkdir(marker): the code a malicious checkpoint would smuggle in."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os
        return (os.mkdir, (self.marker,))


def test_checkpoint_with_pickled_code_is_refused_and_never_runs(runs, tmp_path):
    evil = tmp_path / "evil"
    shutil.copytree(runs["tanh"], evil)
    marker = tmp_path / "PWNED"
    torch.save({"format": "dlx-checkpoint-1", "model": Payload(marker)}, evil / "checkpoints" / "best.pt")
    result = _ensemble(runs, ["mlp", "cnn"], tmp_path / "out", str(evil))  # noqa: the evil run rides along
    skipped = {s["run"]: s["reason"] for s in result["skipped"]}
    assert "refusing to load" in skipped[str(evil)] and "never unpickles code" in skipped[str(evil)]
    assert_user_error(run_dlx("predict", evil, tmp_path / "x.npz"), "refusing to load")
    assert not marker.exists()
    torch.load(evil / "checkpoints" / "best.pt", weights_only=False)  # proves the payload is live
    assert marker.exists()


def test_search_folder_expands_and_corrupt_members_are_skipped(runs, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(runs["cnn"], broken, ignore=shutil.ignore_patterns("predictions"))
    data = (broken / "checkpoints" / "best.pt").read_bytes()
    (broken / "checkpoints" / "best.pt").write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty"
    empty.mkdir()
    search = tmp_path / "search"
    (search / "trials").mkdir(parents=True)
    for name in ("mlp", "tanh"):
        (search / "trials" / name).symlink_to(runs[name], target_is_directory=True)
    result = _ensemble(runs, [], tmp_path / "out", str(search), str(broken), str(empty))
    skipped = {s["run"]: s["reason"] for s in result["skipped"]}
    assert "corrupt or truncated" in skipped[str(broken)]
    assert "no checkpoints/best.pt" in skipped[str(empty)]
    assert sorted(m["run"].rsplit("/", 1)[-1] for m in result["members"]) == ["mlp", "tanh"]


def test_mismatched_split_is_refused(runs, tmp_path):
    result = run_dlx("ensemble", runs["mlp"], runs["other_split"], "--out", tmp_path / "out")
    assert_user_error(result, str(runs["other_split"]), "split_seed", "val_indices")
    assert not (tmp_path / "out").exists()


def test_too_few_members_is_a_clear_error(runs, tmp_path):
    assert_user_error(run_dlx("ensemble", runs["mlp"], "--out", tmp_path / "a"), "only one usable member")
    assert_user_error(run_dlx("ensemble", tmp_path / "nothing", "--out", tmp_path / "b"), "no usable member",
                      "not a folder")


def _digits_test(runs):
    from dlx.ensemble.api import shared_data
    from dlx.ensemble.members import load_member
    unit, y = shared_data(load_member(runs["mlp"]))
    return unit["test"][:], y["test"]


def test_predict_on_npz_channels_last(runs, weighted, tmp_path):
    ensemble, out = weighted
    x, y = _digits_test(runs)
    np.savez(tmp_path / "x.npz", x_test=x.transpose(0, 2, 3, 1))  # channels-last, as Keras writes it
    result = json.loads(run_dlx("predict", out, tmp_path / "x.npz", "--json", check=0).stdout)
    predicted = np.array([row["predicted"] for row in result["predictions"]])
    assert len(predicted) == len(y)
    assert (predicted == y).mean() > 0.85
    assert (predicted == y).mean() == pytest.approx(ensemble["results"]["ensemble"]["test"]["accuracy"])
    probs = np.array(result["predictions"][0]["probabilities"])
    assert probs.sum() == pytest.approx(1, abs=1e-5)


def test_predict_on_png_folder_with_a_run_folder(runs, tmp_path):
    from PIL import Image
    x, y = _digits_test(runs)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(20):
        Image.fromarray((x[i, 0] * 255).round().astype(np.uint8), mode="L").resize((32, 32)).save(folder / f"{i:02d}.png")
    run_dlx("predict", runs["mlp"], folder, "--out", tmp_path / "preds.csv", "--resize", check=0)
    lines = (tmp_path / "preds.csv").read_text().splitlines()
    assert lines[0].split(",")[:3] == ["input", "predicted", "class"] and len(lines[0].split(",")) == 13
    predicted = np.array([int(line.split(",")[1]) for line in lines[1:]])
    assert len(predicted) == 20 and (predicted == y[:20]).mean() >= 0.7
    table = run_dlx("predict", runs["mlp"], folder / "00.png", "--resize", check=0)
    assert "00.png" in table.stdout


def test_predict_bad_input_is_a_clear_error(runs, tmp_path):
    np.savez(tmp_path / "wrong.npz", images=np.zeros((2, 8, 8)))
    assert_user_error(run_dlx("predict", runs["mlp"], tmp_path / "wrong.npz"), "x, x_test")
    np.savez(tmp_path / "shape.npz", x=np.zeros((2, 1, 9, 9), np.float32))
    assert_user_error(run_dlx("predict", runs["mlp"], tmp_path / "shape.npz"), "(1, 9, 9)", "(1, 8, 8)")
    assert_user_error(run_dlx("predict", tmp_path, tmp_path / "shape.npz"), "not a model")
