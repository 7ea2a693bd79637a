"""A search folder given where a model is expected (`dlx evaluate`, `predict`, `export`) stands for its best trial,
said in one line; a search with no finished trial is refused, naming the folder."""
from __future__ import annotations

import json

import numpy as np

from tests.conftest import assert_user_error, run_dlx


def test_evaluate_predict_and_export_take_a_search_folder_for_its_best_trial(make_space, tmp_path):
    space = make_space("sampler: random\ntrials: 2\nseed: 0\n", params="params:\n  model.vars.width: {choice: [8, 16]}\n")
    out = tmp_path / "search"
    run_dlx("search", space, "--out", out, "--quiet", check=0)
    best = json.loads((out / "best.json").read_text())
    trial = out / "trials" / str(best["trial"])
    note = f"search folder: using its best trial {best['trial']} ({trial})"

    evaluated = run_dlx("evaluate", out, "--json", check=0)
    assert note in evaluated.stderr.splitlines(), evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["run"] == str(trial) and result["accuracy"] == best["test"]["accuracy"]

    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32))
    predicted = run_dlx("predict", out, tmp_path / "x.npz", "--json", check=0)
    assert note in predicted.stderr.splitlines(), predicted.stderr
    assert json.loads(predicted.stdout) == json.loads(run_dlx("predict", trial, tmp_path / "x.npz", "--json",
                                                              check=0).stdout) | {"model": str(trial)}

    exported = run_dlx("export", out, "--json", check=0)
    assert note in exported.stderr.splitlines(), exported.stderr
    document = json.loads(exported.stdout)
    assert document["out"] == str(trial / "export" / "onnx") and document["source"]["path"] == str(trial)


def test_a_search_without_a_finished_trial_is_no_model(make_space, tmp_path):
    space = make_space("sampler: random\ntrials: 2\n", params="params:\n  model.vars.width: {choice: [0]}\n")
    out = tmp_path / "search"
    assert run_dlx("search", space, "--out", out, "--max-failures", "1", "--quiet").returncode == 2  # all fail
    np.savez(tmp_path / "x.npz", x=np.zeros((1, 1, 8, 8), dtype=np.float32))
    for args in (["evaluate", out], ["predict", out, tmp_path / "x.npz"], ["export", out]):
        assert_user_error(run_dlx(*args), str(out), "has no finished trial", f"dlx search --resume {out}")
