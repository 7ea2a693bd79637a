"""Searches with several objectives and with constraints, through the real CLI on digits: the Pareto front
(pareto.json, pareto/<n>.yaml, pareto_rank), constraints kept out of the front, the best and --pick, and
multi-objective pruning decided by dlx."""
from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import assert_user_error, run_dlx
from tests.search.conftest import load_trials

WIDTHS = "params:\n  model.vars.width: {choice: [8, 16, 32]}\n  train.optimizer.lr: {choice: [0.003, 0.03]}\n"
TWO = "objectives:\n  - val_accuracy: max\n  - params: min\n"


def params_of(width: int) -> int:
    """Parameters of the tiny MLP on digits (64 inputs, 10 classes) with `width` hidden units."""
    return 64 * width + width + width * 10 + 10


def dominated(a: dict, b: dict) -> bool:
    """`a` is dominated by `b` (val_accuracy max, params min)."""
    no_worse = b["val_accuracy"] >= a["val_accuracy"] and b["params"] <= a["params"]
    return no_worse and (b["val_accuracy"] > a["val_accuracy"] or b["params"] < a["params"])


def test_two_objectives_write_a_non_dominated_front_whose_specs_train(make_space, tmp_path):
    space = make_space(f"sampler: nsga2\nsampler_args: {{population_size: 4}}\ntrials: 6\nseed: 1\n{TWO}",
                       params=WIDTHS)
    out = tmp_path / "search"
    best = json.loads(run_dlx("search", space, "--out", out, "--json", "--pick", f"params <= {params_of(16)}",
                              check=0).stdout)
    rows = json.loads((out / "leaderboard.json").read_text())
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    front = json.loads((out / "pareto.json").read_text())["front"]
    small = [m for m in front if m["values"]["params"] <= params_of(16)]
    assert best["picked"]["number"] == max(small, key=lambda m: m["values"]["val_accuracy"])["number"]
    assert front and len(complete) >= 2
    for member in front:
        assert not any(dominated(member["values"], r["values"]) for r in complete), member
        width = member["params"]["model.vars.width"]
        assert member["values"]["params"] == params_of(width)  # from the builder's shape inference
    off_front = [r for r in complete if r["pareto_rank"] != 1]
    assert all(any(dominated(r["values"], m["values"]) for m in front) for r in off_front)
    assert {r["number"] for r in complete if r["pareto_rank"] == 1} == {m["number"] for m in front}
    with open(out / "leaderboard.csv") as handle:
        table = list(csv.DictReader(handle))
    assert "pareto_rank" in table[0] and "params" in table[0]
    assert best["trial"] in {m["number"] for m in front} and best["pareto"]["size"] == len(front)
    assert best["value"] == max(m["values"]["val_accuracy"] for m in front)
    spec = out / "pareto" / f"{front[0]['number']}.yaml"
    assert sorted(p.name for p in (out / "pareto").iterdir()) == sorted(f"{m['number']}.yaml" for m in front)
    trained = run_dlx("train", spec, "--out", tmp_path / "again", "--json", check=0)
    assert json.loads(trained.stdout)["val_accuracy"] > 0.3
    shown = json.loads(run_dlx("report", out, "--json", check=0).stdout)
    assert "pareto" in {f["name"] for f in shown["figures"]}  # the scatter, front highlighted
    report = json.loads((out / "report" / "report.json").read_text())
    table = next(t for t in report["tables"] if t["title"] == "Pareto front")
    assert sorted(row[0] for row in table["rows"]) == sorted(m["number"] for m in front)
    assert report["numbers"]["pareto_front"] == sorted(m["number"] for m in front)


@pytest.mark.slow
def test_constraints_keep_infeasible_trials_off_the_front_the_best_and_pick(make_space, tmp_path):
    bound = params_of(16)
    space = make_space(f"sampler: grid\ntrials: 6\n{TWO}  - latency_ms: min\nconstraints: ['params <= {bound}']\n",
                       params=WIDTHS)
    out = tmp_path / "search"
    best = json.loads(run_dlx("search", space, "--out", out, "--json", check=0).stdout)
    rows = json.loads((out / "leaderboard.json").read_text())
    wide = [r for r in rows if r["params"]["model.vars.width"] == 32]
    assert wide and all(r["feasible"] is False and r["pareto_rank"] is None for r in wide)
    assert all(r["feasible"] for r in rows if r["params"]["model.vars.width"] < 32)
    assert all(r["values"]["latency_ms"] > 0 for r in rows)  # measured, batch 1
    front = json.loads((out / "pareto.json").read_text())["front"]
    assert front and all(m["values"]["params"] <= bound for m in front)
    assert best["values"]["params"] <= bound and best["infeasible"] == len(wide)
    picked = json.loads(run_dlx("search", out, "--pick", "params <= 100000", "--json", check=0).stdout)
    assert picked["values"]["params"] <= bound  # the loose pick still never returns an infeasible trial
    narrow = [m for m in front if m["values"]["params"] == params_of(8)]
    picked = json.loads(run_dlx("search", out, "--pick", f"params <= {params_of(8)}", "--json", check=0).stdout)
    assert picked["number"] == max(narrow, key=lambda m: m["values"]["val_accuracy"])["number"]
    assert json.loads((out / "picked.json").read_text())["number"] == picked["number"]
    assert_user_error(run_dlx("search", out, "--pick", "params <= 10"), "at '--pick'",
                      "no trial on the Pareto front meets 'params <= 10'", f"reaches {params_of(8)} at best")
    assert_user_error(run_dlx("search", out, "--pick", "parms <= 10"), "unknown metric 'parms'",
                      "Did you mean 'params'?")


def test_a_constrained_single_objective_search_never_reports_an_infeasible_best(make_space, tmp_path):
    space = make_space(f"sampler: grid\ntrials: 2\nconstraints: ['params <= {params_of(8)}']\n",
                       params="params:\n  model.vars.width: {choice: [8, 32]}\n")
    out = tmp_path / "search"
    best = json.loads(run_dlx("search", space, "--out", out, "--json", check=0).stdout)
    assert best["params"]["model.vars.width"] == 8 and best["infeasible"] == 1
    rows = json.loads((out / "leaderboard.json").read_text())
    assert [r["feasible"] for r in rows] == [True, False]  # feasible first, whatever its accuracy
    assert not (out / "pareto.json").exists()


def test_a_multi_objective_search_prunes(make_space, tmp_path):
    space = make_space(f"sampler: random\npruner: median\npruner_args: {{n_startup_trials: 1, n_warmup_steps: 0}}\n"
                       f"trials: 5\nseed: 0\noverrides: {{train.epochs: 3}}\n{TWO}",
                       params="params:\n  train.optimizer.lr: {choice: [0.03, 1.0e-5]}\n")
    out = tmp_path / "search"
    run_dlx("search", space, "--out", out, "--quiet", check=0)
    trials = load_trials(out)
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and all(t.user_attrs["epochs"] < 3 for t in pruned)
    assert all(t.params["train.optimizer.lr"] == 1.0e-5 for t in pruned)
    for trial in pruned:  # recorded as pruned, with its curve and its values when it stopped
        curve = dict(trial.user_attrs["curve"])
        assert sorted(curve) == list(range(1, trial.user_attrs["epochs"] + 1))
        assert trial.user_attrs["values"] == [pytest.approx(curve[trial.user_attrs["epochs"]]), params_of(16)]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert all([e for e, _ in t.user_attrs["curve"]] == [1, 2, 3] for t in complete)
    rows = json.loads((out / "leaderboard.json").read_text())
    assert {r["number"] for r in rows if r["state"] == "PRUNED"} == {t.number for t in pruned}
    front = json.loads((out / "pareto.json").read_text())["front"]
    assert {m["number"] for m in front} <= {t.number for t in complete}  # pruned trials never join the front


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_model_based_samplers_learn_from_pruned_multi_objective_trials(make_space, tmp_path, sampler):
    """TPE once failed every trial after the first pruned one: it ranked pruned trials by `study.direction`."""
    args = "n_startup_trials: 3" if sampler == "tpe" else "population_size: 3"
    space = make_space(f"sampler: {sampler}\nsampler_args: {{{args}}}\npruner: median\n"
                       f"pruner_args: {{n_startup_trials: 1, n_warmup_steps: 0}}\ntrials: 6\nseed: 0\n"
                       f"overrides: {{train.epochs: 2}}\n{TWO}",
                       params="params:\n  train.optimizer.lr: {float: [1.0e-6, 0.03], log: true}\n"
                              "  model.vars.width: {choice: [8, 16]}\n")
    out = tmp_path / "search"
    run_dlx("search", space, "--out", out, "--quiet", check=0)
    states = [t.state.name for t in load_trials(out)]
    assert "FAIL" not in states and "PRUNED" in states and states.count("COMPLETE") >= 1


@pytest.mark.parametrize("header, fragments", [
    ("objectives:\n  - params: min\n  - val_accuracy: max\n", ["at 'objectives.0'", "must be val_accuracy"]),
    ("objectives:\n  - val_accuracy: max\n  - parms: min\n", ["at 'objectives.1'", "Did you mean 'params'?"]),
    ("objectives:\n  - val_accuracy: up\n", ["at 'objectives.0.val_accuracy'", "max or min, but got 'up'"]),
    ("sampler: cmaes\n" + TWO, ["at 'sampler'", "optimises one objective only"]),
    ("constraints: ['params =< 5']\n", ["at 'constraints.0'", "`metric <= number`"]),
])
def test_bad_objectives_and_constraints(make_space, tmp_path, header, fragments):
    assert_user_error(run_dlx("search", make_space("trials: 1\n" + header), "--out", tmp_path / "s"), *fragments)


def test_pick_needs_several_objectives(make_space, tmp_path):
    result = run_dlx("search", make_space("trials: 1\n"), "--out", tmp_path / "s", "--pick", "params <= 5")
    assert_user_error(result, "at '--pick'", "has one objective")
