"""Parameters whose trial kills its own process are tried again, but not for ever: after MAX_RETRY retries the
trial is failed for good, with its reason, and counted as a failure (Optuna's RetryFailedTrialCallback(max_retry)
semantics). A Ctrl-C's re-queue is the user's doing and uses none of the retries."""
from __future__ import annotations

import socket
import subprocess

import optuna
import pytest

from dlx.search.study import DEATHS_ATTR, MAX_RETRY, RETRY_ATTR, counts, fail_dead_trials, requeue_stale


SPACE = {"lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}


@pytest.fixture
def study(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="space")


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def crash(trial) -> None:
    """What a worker killed mid-trial leaves: a RUNNING trial owned by a process that no longer exists."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", dead_pid())


def test_a_trial_that_kills_its_process_every_time_ends_failed_after_max_retry_tries(study):
    trial = study.ask(SPACE)
    params, tries = trial.params, 0
    while True:
        crash(trial)
        tries += 1
        assert fail_dead_trials(study) == [trial.number]  # the next search (or resume) finds it dead
        waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        if not waiting:
            break
        assert tries <= MAX_RETRY, "re-queued past MAX_RETRY"
        trial = study.ask(SPACE)
        assert trial.params == params and trial.user_attrs[RETRY_ATTR] is not None
    assert tries == 1 + MAX_RETRY
    last = study.get_trials(deepcopy=False)[-1]
    assert last.state == optuna.trial.TrialState.FAIL
    assert f"each of its {tries} tries" in last.user_attrs["fail_reason"]
    state = counts(study)
    assert state["fail"] == 1 and state["requeued"] == MAX_RETRY  # the earlier tries have their retry


def test_interruptions_use_no_retry(study):
    trial = study.ask(SPACE)
    for _ in range(MAX_RETRY + 2):  # more interruptions than the retries a crashing trial gets
        assert requeue_stale(study, trial, died=False)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        trial = study.ask(SPACE)
        assert trial.user_attrs[DEATHS_ATTR] == 0
    crash(trial)
    fail_dead_trials(study)
    assert study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))  # still re-queued
