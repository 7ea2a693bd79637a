"""A search's SQLite storage is created whole or not at all: a process killed while Optuna creates its tables
must not leave a `studies` table without its unique index, or a resumed search stores its study twice and every
worker then fails with "Multiple rows were found"."""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest

from dlx.search.study import open_storage
from tests.conftest import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
OPEN = """
import sys
import optuna.storages
from dlx.search.study import open_storage
print("ready", flush=True)
open_storage(sys.argv[1], heartbeat=False)
"""


def schema(path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")
def test_a_kill_while_the_storage_is_created_leaves_it_whole_or_absent(tmp_path):
    open_storage(f"sqlite:///{tmp_path / 'reference.db'}", heartbeat=False).engine.dispose()
    whole = schema(tmp_path / "reference.db")
    assert "ix_studies_study_name" in whole
    draw, outcomes = random.Random(0), set()
    for attempt in range(12):
        path = tmp_path / f"study{attempt}.db"
        child = subprocess.Popen([sys.executable, "-c", OPEN, f"sqlite:///{path}"], cwd=ROOT, env=ENV,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "ready\n"
        time.sleep(draw.uniform(0.0, 1.0))  # creating Optuna's tables takes a few tenths of a second
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        outcomes.add(path.exists())
        hidden = list(tmp_path.glob(f".{path.name}*"))
        assert all(f.name.endswith(".tmp") for f in hidden), hidden  # only a hidden temporary file, no journal
        if path.exists():
            assert schema(path) == whole, f"attempt {attempt}: a partial schema"
        storage = open_storage(f"sqlite:///{path}", heartbeat=False)  # what a resumed search does
        for _ in range(2):
            optuna.create_study(storage=storage, study_name="space", load_if_exists=True)
        assert len(optuna.get_all_study_summaries(storage)) == 1
        assert not list(tmp_path.glob(f".{path.name}*"))  # the killed process's temporary file is cleaned up
        storage.engine.dispose()
    assert outcomes == {False, True}  # kills landed both before and after the storage appeared
