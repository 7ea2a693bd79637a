"""Optuna's journal file storage: processes that share only a filesystem (no database server) fill one study."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, assert_user_error, run_dlx


def journal_trials(journal, name: str = "shared"):
    import optuna
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")  # multi-process: never two at once under `--dist loadgroup`
def test_three_processes_fill_one_journal_study(make_space, tmp_path):
    space = make_space("sampler: random\ntrials: 6\n")
    journal = tmp_path / "shared" / "search.journal"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen([sys.executable, "-m", "dlx", "search", str(space), "--storage",
                                   f"journal://{journal}", "--name", "shared", "--out", str(tmp_path / f"machine{i}"),
                                   "--quiet"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
                 for i in range(3)]
    for process in processes:
        assert process.wait(timeout=400) == 0, process.stderr.read()
    trials = journal_trials(journal)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert 6 <= len(complete) <= 8  # each process stops once 6 are done (or running elsewhere)
    assert len({t.user_attrs["pid"] for t in complete}) >= 2  # the processes shared the study's trials
    for i in range(3):
        assert (tmp_path / f"machine{i}" / "best.json").is_file()
    # the search folder recorded the journal: it resumes from the folder alone
    resumed = run_dlx("search", "--resume", tmp_path / "machine0", "--trials", str(len(complete) + 1), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert sum(t.state.name == "COMPLETE" for t in journal_trials(journal)) == len(complete) + 1


def test_a_journal_url_without_an_absolute_path_is_refused(make_space, tmp_path):
    space = make_space("sampler: random\ntrials: 1\n")
    result = run_dlx("search", space, "--storage", "journal://relative/search.journal", "--out", tmp_path / "s",
                     "--quiet")
    assert_user_error(result, "journal:///absolute/path")


def test_a_trial_of_a_dead_machine_is_requeued_by_its_stale_heartbeat(tmp_path):
    """Journal storage keeps no heartbeat: dlx's own (search.worker.heartbeat) tells a live trial of another
    machine from one whose machine died, which would otherwise stay RUNNING and hold the search's end forever."""
    import time

    import optuna
    from dlx.search.study import BEAT_ATTR, GRACE_SECONDS, fail_dead_trials, open_storage
    study = optuna.create_study(storage=open_storage(f"journal://{tmp_path / 'search.journal'}"), study_name="s")
    alive, dead = study.ask(), study.ask()
    for trial, beat in ((alive, time.time()), (dead, time.time() - GRACE_SECONDS - 5)):
        trial.set_user_attr("host", "another-machine")
        trial.set_user_attr("pid", 1)
        trial.set_user_attr(BEAT_ATTR, beat)
    assert fail_dead_trials(study) == [dead.number]
    states = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    assert states[alive.number] == "RUNNING" and states[dead.number] == "FAIL"
    assert "WAITING" in states.values()  # re-queued with its parameters
