"""`dlx search` stopped for real by Ctrl-C (SIGINT) or a scheduler's SIGTERM: the trial it was running is re-queued
with its parameters and runs again when the search resumes, and is never counted as failed. Real `python -m dlx`
processes with piped output, which also show that a search says where it is (and that it resumed) at once."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy.exc import OperationalError

from tests.conftest import ROOT
from tests.search.conftest import load_trials

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("heavy")]  # real signals, several processes

INTERRUPTED = "interrupted (Ctrl-C or SIGTERM)"


def start_search(*args, new_session: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "dlx", "search", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=new_session,
                            preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """Ctrl-C reaches dlx even where pytest itself runs with SIGINT ignored (a background job of a script)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_epochs(process, out, running: int = 1, timeout: float = 240) -> list:
    """The RUNNING trials, once `running` of them have each finished an epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"dlx search ended early: {process.communicate()}"
        time.sleep(0.1)
        try:
            trials = [t for t in load_trials(out) if t.state.name == "RUNNING"]
        except (KeyError, OperationalError):  # study.db is still being created
            continue
        if len(trials) >= running and all((out / "trials" / str(t.number) / "metrics.jsonl").exists()
                                          for t in trials):
            return trials
    process.kill()
    pytest.fail(f"no {running} running trials within {timeout} s")


@pytest.mark.parametrize("signum, again", [(signal.SIGINT, "same command"), (signal.SIGTERM, "--resume")])
def test_an_interrupted_trial_runs_again_on_resume_and_is_no_failure(make_space, tmp_path, signum, again):
    space = make_space("sampler: random\ntrials: 2\noverrides: {train.epochs: 20}\n")
    out = tmp_path / "search"
    process = start_search(space, "--out", out)
    assert process.stdout.readline().rstrip("\n") == f"search folder: {out}"  # piped, and before any trial ended
    [running] = wait_for_epochs(process, out)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    assert f"dlx search --resume {out}" in " ".join(stderr.split()), stderr

    trials = load_trials(out)
    stopped = trials[running.number]
    assert stopped.state.name == "FAIL" and stopped.user_attrs["fail_reason"].startswith(INTERRUPTED)
    assert json.loads((out / "trials" / str(running.number) / "summary.json").read_text())["status"] == "interrupted"
    [retry] = [t for t in trials if t.user_attrs.get("retry_of") == running.number]
    assert retry.state.name == "WAITING"

    resumed = start_search(*([space, "--out", out] if again == "same command" else ["--resume", out]))
    assert resumed.stdout.readline().rstrip("\n") == f"search folder: {out}"
    assert resumed.stdout.readline().startswith(f"resumed: {running.number} trials done, 1 re-queued to run again")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert "trials: 2 complete, 0 pruned, 0 failed, 1 re-queued;" in stdout, stdout

    after = {t.number: t for t in load_trials(out)}
    assert after[retry.number].state.name == "COMPLETE" and after[retry.number].params == stopped.params
    rows = json.loads((out / "leaderboard.json").read_text())
    assert [r["state"] for r in rows].count("FAIL") == 0
    assert [r for r in rows if r["number"] == running.number][0]["state"] == "REQUEUED"
    assert json.loads((out / "best.json").read_text())["trials"]["fail"] == 0


def test_ctrl_c_on_a_search_with_workers_requeues_every_running_trial(make_space, tmp_path):
    """Ctrl-C reaches the workers and their parent together (one process group), and the parent then terminates
    the workers: each running trial is re-queued all the same, and no worker leaves a traceback."""
    # long trials: both workers must be in one at once, however late the second starts on a busy machine
    space = make_space("sampler: random\ntrials: 2\noverrides: {train.epochs: 2000}\n")
    out = tmp_path / "search"
    process = start_search(space, "--out", out, "--workers", "2", new_session=True)
    running = wait_for_epochs(process, out, running=2)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    logs = "".join(p.read_text() for p in (out / "logs").glob("*.log"))
    assert "Traceback" not in logs, logs
    trials = load_trials(out)
    for trial in running:
        assert trials[trial.number].user_attrs["fail_reason"].startswith(INTERRUPTED)
        [retry] = [t for t in trials if t.user_attrs.get("retry_of") == trial.number]
        assert retry.state.name == "WAITING"
