"""End of a search: leaderboard.csv/json, best.json + best.yaml, the best trial scored once on test data,
and checkpoints of trials outside the top `keep` deleted (their metrics stay).

With several objectives the leaderboard has each objective's column and `pareto_rank`, pareto.json lists the
front, and the best is the front member best in the first objective. With constraints, a trial that breaks one
(`feasible` false) ranks after every feasible one and is never the best."""
from __future__ import annotations

import csv
import io
import math
import shutil
from pathlib import Path
from typing import Optional

from dlx.core.files import atomic_write_json, atomic_write_text, read_json
from dlx.core.lazy import lazy_module
from dlx.experiment.yamlio import dump_yaml
from dlx.search.folder import belongs
from dlx.search.objectives import feasible
from dlx.search.pareto import rank_rows, write_front
from dlx.search.study import STUDY_ID_ATTR, requeued
from dlx.train.rundir import write_summary

optuna = lazy_module("optuna")

COLUMNS = ["number", "state", "value", "epochs", "seconds", "run_dir", "reason"]


def leaderboard(study, space) -> list[dict]:
    """Every finished trial, best first (COMPLETE by value, then PRUNED, then FAIL, then REQUEUED: a FAIL trial
    that ran again as another, interrupted or killed, is no failure)."""
    TrialState = optuna.trial.TrialState
    sign = -1 if space.direction == "maximize" else 1
    rows = []
    trials = study.get_trials(deepcopy=False)
    retried = requeued(trials)
    for trial in trials:
        if trial.state in (TrialState.RUNNING, TrialState.WAITING):
            continue
        if space.multi:
            values = trial.values if trial.state == TrialState.COMPLETE else trial.user_attrs.get("values")
            value = values[0] if values else _last_report(trial)
        else:
            value = trial.value if trial.state == TrialState.COMPLETE else _last_report(trial)
        state = "REQUEUED" if trial.number in retried else trial.state.name
        row = {"number": trial.number, "state": state, "value": value,
               "metric": space.metric, "params": dict(trial.params),
               "epochs": trial.user_attrs.get("epochs"), "seconds": trial.user_attrs.get("seconds"),
               "run_dir": trial.user_attrs.get("run_dir"), "reason": trial.user_attrs.get("fail_reason")}
        if measures(space):
            row.update(_measured(trial, space, values if space.multi else [value]))
        rows.append(row)
    if space.multi:
        rank_rows(rows, space.goals)
    order = {"COMPLETE": 0, "PRUNED": 1, "FAIL": 2, "REQUEUED": 3}

    def key(row):
        value = row["value"]
        return (order.get(row["state"], 4), row.get("feasible") is False, row.get("pareto_rank") or 0,
                sign * value if value is not None and math.isfinite(value) else math.inf, row["number"])
    return sorted(rows, key=key)


def measures(space) -> bool:
    """Whether trials record objective values, costs and feasibility (several objectives, or constraints)."""
    return space.multi or bool(space.constraints)


def _measured(trial, space, values) -> dict:
    """A row's objective values (by metric), its measured metrics and whether it meets every constraint (None
    for a trial that failed before its constraints were measured)."""
    measured = len(trial.constraints) == len(space.constraints)
    met = feasible(trial) if measured else None
    return {"values": {g.metric: v for g, v in zip(space.goals, values or [])},
            "metrics": trial.user_attrs.get("metrics") or {}, "feasible": met}


def _cell(value):
    return "" if value is None else value


def _last_report(trial) -> Optional[float]:
    values = trial.intermediate_values
    return values[max(values)] if values else None


def write_leaderboard(rows: list[dict], space, search_dir: Path) -> None:
    atomic_write_json(search_dir / "leaderboard.json", rows)
    names = [p.path for p in space.params]
    extra = [g.metric for g in space.goals[1:]] + (["feasible"] if space.constraints else []) \
        + (["pareto_rank"] if space.multi else [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS[:3] + extra + names + COLUMNS[3:])
    for row in rows:
        found = {**(row.get("values") or {}), "feasible": row.get("feasible"), "pareto_rank": row.get("pareto_rank")}
        writer.writerow([row["number"], row["state"], row["value"]] + [_cell(found.get(c)) for c in extra]
                        + [row["params"].get(n, "") for n in names] + [row[c] for c in COLUMNS[3:]])
    atomic_write_text(search_dir / "leaderboard.csv", buffer.getvalue())


def write_results(study, space, search_dir: Path) -> Optional[dict]:
    """Write the leaderboard and, if any trial completed, best.json and best.yaml. Returns best.json's data."""
    search_dir = Path(search_dir)
    rows = leaderboard(study, space)
    write_leaderboard(rows, space, search_dir)
    complete = [r for r in rows if r["state"] == "COMPLETE" and r.get("feasible") is not False]
    front = write_front(rows, space, search_dir) if space.multi else []
    fronts = [r for r in complete if r.get("pareto_rank") == 1]
    study_id = study.user_attrs.get(STUDY_ID_ATTR)
    prune_checkpoints(rows, (complete[: space.keep] if space.keep else complete) + fronts, study_id)
    if not complete:
        return None
    top = complete[0]
    trial = study.trials[top["number"]]
    previous = read_json(search_dir / "best.json", {}) or {}
    if previous.get("trial") == top["number"] and previous.get("test"):
        test = previous["test"]  # the best trial was already scored on test data: don't look again
    else:
        test = _score_on_test(top["run_dir"]) if _own(top, study_id) else None
    best_spec = space.apply(trial.params)
    atomic_write_text(search_dir / "best.yaml", "# the best configuration of this search, ready for `dlx train`\n"
                      + dump_yaml(best_spec))
    best = {"trial": top["number"], "metric": space.metric, "direction": space.direction, "value": top["value"],
            "params": top["params"], "validation": {"val_accuracy": trial.user_attrs.get("val_accuracy"),
                                                     "val_loss": trial.user_attrs.get("val_loss")},
            "test": test, "epochs": top["epochs"], "best_epoch": trial.user_attrs.get("best_epoch"),
            "run_dir": top["run_dir"], "spec": str((search_dir / "best.yaml").resolve()),
            "trials": {s.lower(): sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL",
                                                                                "REQUEUED")}}
    if measures(space):
        best.update(values=top.get("values"), metrics=top.get("metrics"),
                    infeasible=sum(r.get("feasible") is False for r in rows))
    if space.multi:
        best["pareto"] = {"size": len(front), "file": str((search_dir / "pareto.json").resolve())}
    atomic_write_json(search_dir / "best.json", best)
    return best


def _score_on_test(run_dir: Optional[str]) -> Optional[dict]:
    if not run_dir or not (Path(run_dir) / "checkpoints" / "best.pt").is_file():
        return None  # the best trial ran on another machine; score it there with `dlx evaluate`
    from dlx.train.evaluate import evaluate_run  # torch: imported only when a trial is scored here
    result = evaluate_run(run_dir, "test")
    test = {"accuracy": result["accuracy"], "loss": result["loss"], "samples": result["samples"]}
    summary = read_json(Path(run_dir) / "summary.json")
    if summary is not None:
        write_summary(Path(run_dir), {**summary, "test_accuracy": test["accuracy"], "test_loss": test["loss"]})
    return test


def _own(row: dict, study_id: Optional[str]) -> bool:
    """Whether `row`'s trial folder is this study's trial's, which the end of the search may change."""
    return bool(row["run_dir"]) and belongs(Path(row["run_dir"]), study_id, row["number"],
                                            ran=row["state"] in ("COMPLETE", "PRUNED"))


def prune_checkpoints(rows: list[dict], keep: list[dict], study_id: Optional[str] = None) -> None:
    """Delete checkpoints of finished trials outside `keep`, in folders of this study's trials only; config,
    metrics and summary stay."""
    kept = {r["number"] for r in keep}
    for row in rows:
        if row["number"] in kept or not _own(row, study_id):
            continue
        folder = Path(row["run_dir"]) / "checkpoints"
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
