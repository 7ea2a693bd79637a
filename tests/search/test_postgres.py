"""A real PostgreSQL server (tests/postgres_server.py, on a free port) hosts one study that two `dlx search`
processes fill."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.postgres_server import postgres_url  # noqa: F401 - the shared PostgreSQL server fixture


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")  # kill and multi-process tests: never two at once under `--dist loadgroup`
def test_two_processes_fill_one_postgres_study(postgres_url, make_space, tmp_path):
    import optuna
    space = make_space("sampler: random\ntrials: 6\noverrides: {train.epochs: 2}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [subprocess.Popen([sys.executable, "-m", "dlx", "search", str(space), "--storage", postgres_url,
                                   "--name", "shared", "--out", str(tmp_path / f"machine{i}"), "--quiet"],
                                  cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for process in processes:
        assert process.wait(timeout=400) == 0, process.stderr.read()
    trials = optuna.load_study(study_name="shared", storage=postgres_url.replace("postgresql:", "postgresql+psycopg2:")).get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert 6 <= len(complete) <= 7
    assert len({t.user_attrs["pid"] for t in complete}) == 2  # both processes ran trials of the one study
    assert (tmp_path / "machine0" / "best.json").is_file() and (tmp_path / "machine1" / "best.json").is_file()
