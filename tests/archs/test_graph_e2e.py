"""A branching graph spec end to end on digits through the real CLI: `dlx train` (then `dlx evaluate` reloads
the graph from its checkpoint, `dlx export` traces it), `dlx search` varying a var inside a branch, and
`dlx ensemble` of two graph runs."""
from __future__ import annotations

import json

import pytest

from tests.conftest import run_dlx

GRAPH_SPEC = """\
name: branches
seed: %(seed)d
data: {dataset: digits, val_split: 0.1}
model:
  vars: {width: 8}
  layers:
    - Conv2D: {filters: 8, kernel_size: 3, padding: same, activation: relu, name: stem}
    - Conv2D: {filters: "${width}", kernel_size: 3, padding: same, activation: relu, name: wide}  # branch 1
    - Conv2D: {filters: 4, kernel_size: 1, activation: relu, name: narrow, inputs: stem}           # branch 2
    - Concatenate: {inputs: [wide, narrow]}
    - Conv2D: {filters: 8, kernel_size: 1, name: squeeze}
    - Add: {inputs: [squeeze, stem]}                                                              # a shortcut
    - Flatten
    - Dense: {units: classes}
train: {epochs: 2, batch_size: 64, optimizer: {name: adam, lr: 0.01}}
device: cpu
"""

pytestmark = pytest.mark.xdist_group("heavy")


def graph_spec(folder, seed: int = 0):
    path = folder / f"graph{seed}.yaml"
    path.write_text(GRAPH_SPEC % {"seed": seed})
    return path


def train_graph(folder, seed: int = 0) -> dict:
    result = run_dlx("train", graph_spec(folder, seed), "--out", folder / f"run{seed}", "--json", "--quiet", check=0)
    return json.loads(result.stdout)


def test_graph_trains_and_evaluates(tmp_path):
    summary = train_graph(tmp_path)
    assert summary["test_accuracy"] > 0.8  # 2 epochs: far above chance (0.1), so the branches really learn
    evaluated = json.loads(run_dlx("evaluate", tmp_path / "run0", "--json", check=0).stdout)
    assert evaluated["accuracy"] == pytest.approx(summary["test_accuracy"])  # the graph reloads from best.pt
    exported = run_dlx("export", tmp_path / "run0", "--format", "torchscript", "--out", tmp_path / "ts", check=0)
    assert "same class on 359/359" in exported.stdout  # the generated forward traces like hand-written code


def test_search_varies_a_var_inside_a_branch(tmp_path):
    graph_spec(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text("base: graph0.yaml\nsampler: grid\ntrials: 2\n"
                     "params:\n  model.vars.width: {choice: [4, 12]}\n")
    best = json.loads(run_dlx("search", space, "--out", tmp_path / "search", "--json", check=0).stdout)
    assert best["trials"]["complete"] == 2
    rows = json.loads((tmp_path / "search" / "leaderboard.json").read_text())
    widths = set()
    for row in rows:  # each trial's own spec builds the branch at the width the trial drew
        config = f"{row['run_dir']}/config.yaml"
        layers = json.loads(run_dlx("summary", config, "--json", check=0).stdout)["layers"]
        wide = next(layer for layer in layers if layer["name"] == "wide")["output_shape"][-1]
        joined = next(layer for layer in layers if layer["type"] == "Concatenate")
        assert wide == row["params"]["model.vars.width"] and joined["output_shape"][-1] == wide + 4
        assert joined["inputs"] == ["wide", "narrow"]
        widths.add(wide)
    assert widths == {4, 12}


def test_ensemble_of_graph_runs(tmp_path):
    train_graph(tmp_path, seed=0)
    train_graph(tmp_path, seed=1)
    result = run_dlx("ensemble", tmp_path / "run0", tmp_path / "run1", "--out", tmp_path / "ensemble", "--json",
                     check=0)
    test = json.loads(result.stdout)["results"]["ensemble"]["test"]
    assert test["accuracy"] > 0.8
    evaluated = json.loads(run_dlx("evaluate", tmp_path / "ensemble", "--json", check=0).stdout)
    assert evaluated["accuracy"] == pytest.approx(test["accuracy"])  # the members' graphs reload from best.pt
