"""A trial whose end the storage could not record (a full disk refused Optuna's FAIL after the trial had written
its reason) is left RUNNING by the process that stopped; the resumed search must end it: FAIL with the reason it
stopped with, re-queued (its parameters were not at fault), not counted as a process death."""
from __future__ import annotations

import socket
import subprocess
import sys

import optuna

from dlx.search.study import DEATHS_ATTR, RETRY_ATTR, fail_dead_trials, open_storage


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_trial_left_running_by_a_full_disk_ends_failed_with_its_reason_and_requeued(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat=False),
                                study_name="space")
    stuck, killed = study.ask({"lr": optuna.distributions.FloatDistribution(0.001, 0.1)}), study.ask()
    for trial in (stuck, killed):
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", dead_pid())
    stuck.set_user_attr("fail_reason", "invalid configuration: could not write last.pt: the disk is full")
    assert sorted(fail_dead_trials(study)) == [stuck.number, killed.number]
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert trials[stuck.number].state.name == "FAIL"
    reason = trials[stuck.number].user_attrs["fail_reason"]
    assert "could not be recorded" in reason and "the disk is full" in reason
    retries = {t.user_attrs[RETRY_ATTR]: t for t in trials.values() if t.state.name == "WAITING"}
    assert set(retries) == {stuck.number, killed.number}
    assert retries[stuck.number].system_attrs["fixed_params"] == trials[stuck.number].params
    assert retries[stuck.number].user_attrs[DEATHS_ATTR] == 0  # no death: it failed, its record did not land
    assert retries[killed.number].user_attrs[DEATHS_ATTR] == 1
    assert "process died" in trials[killed.number].user_attrs["fail_reason"]
