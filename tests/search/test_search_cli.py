"""`dlx search` end to end through the real CLI: samplers, pruning, failures, workers, kill + resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from tests.conftest import ROOT, run_dlx
from tests.search.conftest import load_trials

SAMPLERS = ["random", "tpe", "gp", "cmaes", "genetic", "grid", "qmc"]
MODEL_BASED = {"tpe", "gp", "cmaes"}


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_a_tiny_search(sampler, make_space, tmp_path):
    from dlx.cli.main import app
    args = "sampler_args: {n_startup_trials: 1}\n" if sampler in MODEL_BASED else ""
    params = "params:\n  train.optimizer.lr: {choice: [0.01, 0.03]}\n  model.vars.width: {int: [8, 16], step: 8}\n" \
        if sampler == "grid" else None
    space = make_space(f"sampler: {sampler}\ntrials: 2\n{args}", **({"params": params} if params else {}))
    out = tmp_path / "search"
    result = CliRunner().invoke(app, ["search", str(space), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    best = json.loads(result.stdout)
    assert best["test"]["accuracy"] > 0 and best["trials"]["complete"] == 2
    for name in ("leaderboard.csv", "leaderboard.json", "best.json", "best.yaml", "search.yaml"):
        assert (out / name).is_file(), name
    assert (out / "trials" / str(best["trial"]) / "checkpoints" / "best.pt").is_file()
    assert "ready for `dlx train`" in (out / "best.yaml").read_text()


@pytest.mark.slow
def test_pruner_stops_trials_and_trials_are_runs(make_space, tmp_path):
    space = make_space("sampler: random\npruner: median\npruner_args: {n_startup_trials: 1, n_warmup_steps: 0}\n"
                       "trials: 5\nseed: 0\noverrides: {train.epochs: 3}\n",
                       params="params:\n  train.optimizer.lr: {choice: [0.03, 1.0e-5]}\n")
    out = tmp_path / "search"
    result = run_dlx("search", space, "--out", out, check=0)
    assert "PRUNED" in result.stdout  # not a terminal: one line per trial
    pruned = [t for t in load_trials(out) if t.state.name == "PRUNED"]
    assert pruned and all(t.user_attrs["epochs"] < 3 for t in pruned)
    summary = json.loads((out / "trials" / str(pruned[0].number) / "summary.json").read_text())
    assert summary["status"] == "pruned" and "pruned at epoch" in summary["reason"]
    best = json.loads((out / "best.json").read_text())
    evaluated = run_dlx("evaluate", best["run_dir"], "--json", check=0)  # a trial is an ordinary run folder
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(best["test"]["accuracy"])
    rows = json.loads((out / "leaderboard.json").read_text())
    assert {r["state"] for r in rows} >= {"COMPLETE", "PRUNED"} and rows[0]["number"] == best["trial"]


def test_a_failing_trial_does_not_stop_the_search(make_space, tmp_path):
    space = make_space("sampler: grid\ntrials: 5\n", params="params:\n  model.vars.width: {choice: [0, 16]}\n")
    out = tmp_path / "search"
    run_dlx("search", space, "--out", out, check=0)
    states = {t.params["model.vars.width"]: t for t in load_trials(out)}
    assert states[0].state.name == "FAIL" and "invalid configuration" in states[0].user_attrs["fail_reason"]
    assert states[16].state.name == "COMPLETE"


def test_max_failures_stops_the_search(make_space, tmp_path):
    space = make_space("sampler: random\ntrials: 5\n", params="params:\n  model.vars.width: {choice: [0, -1]}\n")
    result = run_dlx("search", space, "--out", tmp_path / "search", "--max-failures", "2")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "2 trials failed" in " ".join(result.stderr.split())


def test_a_trial_that_raises_is_recorded_and_the_search_goes_on(make_space, tmp_path, monkeypatch):
    import dlx.train.run
    from dlx.search import run_search
    real, calls = dlx.train.run.train, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(*args, **kwargs)
    monkeypatch.setattr(dlx.train.run, "train", flaky)
    result = run_search(make_space("sampler: random\ntrials: 2\n"), out=tmp_path / "search")
    trials = load_trials(tmp_path / "search")
    assert trials[0].state.name == "FAIL" and trials[0].user_attrs["fail_reason"] == "RuntimeError: boom"
    assert result.counts["complete"] == 2 and result.best["trial"] in (1, 2)


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")  # kill and multi-process tests: never two at once under `--dist loadgroup`
def test_two_workers_share_sqlite_without_errors(make_space, tmp_path):
    space = make_space("sampler: tpe\ntrials: 4\noverrides: {train.epochs: 2}\n")
    out = tmp_path / "search"
    result = run_dlx("search", space, "--out", out, "--workers", "2", check=0)
    logs = "".join(p.read_text() for p in (out / "logs").glob("*.log")) + result.stderr
    assert "locked" not in logs and "Traceback" not in logs
    trials = load_trials(out)
    assert 4 <= sum(t.state.name == "COMPLETE" for t in trials) <= 5  # two workers may both start the last one
    assert len({t.user_attrs["pid"] for t in trials}) == 2


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")  # kill and multi-process tests: never two at once under `--dist loadgroup`
def test_sigkill_mid_trial_then_rerun_finishes_without_losing_trials(make_space, tmp_path):
    space = make_space("sampler: tpe\ntrials: 4\noverrides: {train.epochs: 40}\n")  # ~2 s a trial: time to catch one
    out = tmp_path / "search"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "dlx", "search", str(space), "--out", str(out), "--quiet"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = None
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
        if not (out / "study.db").exists():
            continue
        try:
            trials = load_trials(out)
        except (KeyError, OperationalError):  # study.db is still being created by the search process
            continue
        done = [t for t in trials if t.state.name == "COMPLETE"]
        running = [t for t in trials if t.state.name == "RUNNING"]
        if done and running and (out / "trials" / str(running[0].number) / "metrics.jsonl").exists():
            os.kill(process.pid, signal.SIGKILL)  # mid-trial: it has finished at least one epoch
            killed = running[0].number
            break
    process.wait()
    assert killed is not None, process.stderr.read().decode()
    before = {t.number: t.value for t in load_trials(out) if t.state.name == "COMPLETE"}
    run_dlx("search", space, "--out", out, "--quiet", check=0)
    after = load_trials(out)
    assert sum(t.state.name == "COMPLETE" for t in after) == 4
    assert all(after[n].state.name == "COMPLETE" and after[n].value == v for n, v in before.items())
    assert after[killed].state.name == "FAIL" and "process died" in after[killed].user_attrs["fail_reason"]
    retried = [t for t in after if t.user_attrs.get("retry_of") == killed]
    assert retried and retried[0].params == after[killed].params and retried[0].state.name == "COMPLETE"
    resumed = run_dlx("search", "--resume", out, "--json", check=0)  # nothing left to do: same best, no new trial
    assert json.loads(resumed.stdout)["trials"]["complete"] == 4 and len(load_trials(out)) == len(after)


@pytest.mark.slow
def test_a_trial_killed_before_recording_its_owner_is_failed_after_the_grace_period(make_space, tmp_path,
                                                                                      monkeypatch):
    """A kill between Optuna creating a trial and dlx recording its pid left it RUNNING for ever, and a resumed
    search waited on it without end. Such a trial is failed (and re-queued) once ORPHAN_SECONDS old."""
    import optuna

    import dlx.search.study
    from dlx.search.api import run_search
    space = make_space("sampler: random\ntrials: 2\n")
    out = tmp_path / "search"
    run_search(space, out=out)
    study = optuna.load_study(study_name="space", storage=f"sqlite:///{out / 'study.db'}")
    orphan = study.ask()  # RUNNING, no owner: as if killed right after Optuna created it
    monkeypatch.setattr(dlx.search.study, "ORPHAN_SECONDS", 2)
    started = time.monotonic()
    result = run_search(resume=out, trials=3)
    assert result.stopped == "done" and time.monotonic() - started < 60
    trials = load_trials(out)
    assert trials[orphan.number].state.name == "FAIL"
    assert "process died" in trials[orphan.number].user_attrs["fail_reason"]
    assert sum(t.state.name == "COMPLETE" for t in trials) == 3
    assert not [t for t in trials if t.state.name == "RUNNING"]
