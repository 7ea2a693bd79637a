"""`dlx ensemble --device`: the members predict where asked (default auto), the prediction cache serves every
device, and a device that isn't there is refused before any work."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.conftest import assert_user_error, run_dlx

AUTO = "cuda" if torch.cuda.is_available() else "cpu"


def _copies(runs, folder):
    """Fresh copies of two members without the predictions earlier tests cached in them."""
    return [shutil.copytree(runs[name], folder / name, ignore=shutil.ignore_patterns("predictions"))
            for name in ("mlp", "cnn")]


def _ensemble(members, out, *extra) -> dict:
    result = run_dlx("ensemble", *members, "--method", "average", "--out", out, "--json", *extra, check=0)
    return json.loads(result.stdout)


def test_members_predict_on_the_device_asked_for_and_auto_is_the_default(runs, tmp_path):
    on_cpu = _ensemble(_copies(runs, tmp_path / "a"), tmp_path / "e-cpu", "--device", "cpu")
    default = _ensemble(_copies(runs, tmp_path / "b"), tmp_path / "e-auto")
    assert on_cpu["device"] == "cpu" and default["device"] == AUTO
    assert on_cpu["cache"] == default["cache"] == {"hits": 0, "misses": 2}
    provenance = json.loads((tmp_path / "e-cpu" / "provenance.json").read_text())
    assert provenance["sessions"][-1]["device"] == "cpu"
    assert json.loads((tmp_path / "e-auto" / "ensemble.json").read_text())["device"] == AUTO
    for split in ("val", "test"):
        cpu, auto = (r["results"]["ensemble"][split] for r in (on_cpu, default))
        assert auto["nll"] == pytest.approx(cpu["nll"], rel=1e-3) and auto["accuracy"] == cpu["accuracy"]


def test_the_prediction_cache_serves_any_device(runs, tmp_path):
    members = _copies(runs, tmp_path)
    first = _ensemble(members, tmp_path / "e1", "--device", "cpu")
    again = _ensemble(members, tmp_path / "e2", "--device", "auto")
    assert again["cache"] == {"hits": 2, "misses": 0}
    assert again["results"] == first["results"]


@pytest.mark.parametrize("device, fragment", [("gpu", "--device must be auto"), ("cuda:x", "cuda:N"),
                                              ("cuda:64", "a GPU this machine lacks")])
def test_an_unknown_or_missing_device_is_refused(runs, tmp_path, device, fragment):
    result = run_dlx("ensemble", runs["mlp"], runs["cnn"], "--device", device, "--out", tmp_path / "e")
    assert_user_error(result, "--device", fragment)
    assert not (tmp_path / "e").exists()
