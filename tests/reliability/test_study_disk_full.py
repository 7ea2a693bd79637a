"""A full disk while `dlx search` writes its study (SQLite study.db): exit code 2 with a message that says the disk
is full, no traceback, and the trials completed before are intact (the study loads, their values unchanged).

The full disk is SQLite's own: a sitecustomize hook caps every connection with `PRAGMA max_page_count`, so a
write that needs a new page fails with SQLITE_FULL ("database or disk is full"), the same error a full file
system gives. No mount or root needed."""
from __future__ import annotations

import sqlite3
import textwrap

import optuna
import pytest

from tests.conftest import ROOT, assert_user_error, run_dlx
from tests.reliability.conftest import assert_intact

pytestmark = pytest.mark.slow  # the quick subset (-m "not slow") leaves this suite to CI

HOOK = textwrap.dedent("""\
    # injected by tests/reliability: every SQLite connection may grow the database by {pages} page(s) at most
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _cap(connection, record):
        if type(connection).__module__.startswith("sqlite3"):
            cursor = connection.cursor()
            pages = cursor.execute("PRAGMA page_count").fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count = {{pages + {pages}}}")
            cursor.close()
""")


def completed(out) -> dict[int, float]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="space", storage=f"sqlite:///{out / 'study.db'}")
    return {t.number: t.value for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"}


def test_a_full_disk_while_writing_the_study_stops_cleanly_and_keeps_the_trials(tiny_space, tmp_path):
    space = tiny_space("sampler: random\ntrials: 3\nkeep: 1\noverrides: {model.vars.width: 4}\n")
    out = tmp_path / "search"
    run_dlx("search", space, "--out", out, "--quiet", check=0)
    before = completed(out)
    assert len(before) == 3
    with sqlite3.connect(out / "study.db") as connection:  # fold the WAL in, so page_count is the real size
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK.format(pages=1))
    result = run_dlx("search", "--resume", out, "--trials", "40", "--quiet", env={"PYTHONPATH": f"{hook}:{ROOT}"})
    assert_user_error(result, "disk", "is full", "--resume")
    after = completed(out)
    assert {n: after[n] for n in before} == before, "a COMPLETE trial was lost or changed by the full disk"
    assert len(after) < 40
    assert_intact(out)  # study.db passes SQLite's integrity check; every JSON/YAML file parses
    resumed = run_dlx("search", "--resume", out, "--trials", "5", "--quiet")  # with room again, it carries on
    assert resumed.returncode == 0, resumed.stderr
    final = completed(out)
    assert {n: final[n] for n in before} == before and len(final) >= 5
