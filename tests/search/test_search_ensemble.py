"""`dlx search SPACE --ensemble K`: the search ends with an ensemble of up to K of its finished trials, chosen by
greedy selection on validation data, written inside the search folder; `dlx evaluate` takes that folder."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import assert_user_error, run_dlx


def test_search_ensemble_is_written_in_the_search_folder_and_evaluates(make_space, tmp_path):
    space = make_space("sampler: random\ntrials: 4\nseed: 3\n",
                       params="params:\n  model.vars.width: {choice: [8, 16, 32]}\n"
                              "  train.optimizer.lr: {choice: [0.003, 0.01, 0.03]}\n")
    out = tmp_path / "search"
    result = json.loads(run_dlx("search", space, "--out", out, "--ensemble", "2", "--json", check=0).stdout)
    pooled = result["ensemble"]
    folder = out / "ensemble"
    assert pooled["ensemble_dir"] == str(folder) and (folder / "ensemble.yaml").is_file()
    assert len(pooled["members"]) == 2 and pooled["candidates"] == 4
    trials = {str((out / "trials" / str(n)).resolve()) for n in range(4)}
    assert {str(Path(m).resolve()) for m in pooled["members"]} <= trials
    assert pooled["best"]["test_accuracy"] == result["test"]["accuracy"]
    evaluated = json.loads(run_dlx("evaluate", folder, "--json", check=0).stdout)
    assert evaluated["accuracy"] == pytest.approx(pooled["ensemble"]["test_accuracy"], abs=1e-6)
    shown = run_dlx("search", space, "--out", tmp_path / "again", "--ensemble", "2", check=0).stdout
    assert "ensemble of 2 trials" in " ".join(shown.split()) and "vs best trial" in shown


def test_ensemble_of_one_is_refused(make_space, tmp_path):
    result = run_dlx("search", make_space("trials: 1\n"), "--out", tmp_path / "s", "--ensemble", "1")
    assert_user_error(result, "at '--ensemble'", "needs K >= 2")
