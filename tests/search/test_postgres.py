"""A real PostgreSQL server (started here, on a free port) hosts one study that two `dlx search` processes fill."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from tests.conftest import ROOT

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _as_postgres(args, **kwargs):
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, check=True, capture_output=True, text=True, **kwargs)


@pytest.fixture
def postgres_url():
    if not BIN:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    pytest.importorskip("psycopg2")
    bin_dir = BIN[-1]
    folder = tempfile.mkdtemp(prefix="dlx-pg-")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = os.path.join(folder, "data")
    _as_postgres([f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "postgres"])
    _as_postgres([f"{bin_dir}/pg_ctl", "-D", data, "-l", os.path.join(folder, "log"), "-w", "start", "-o",
                  f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"])
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_postgres([f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


def test_two_processes_fill_one_postgres_study(postgres_url, make_space, tmp_path):
    import optuna
    space = make_space("sampler: random\ntrials: 6\noverrides: {train.epochs: 2}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [subprocess.Popen([sys.executable, "-m", "cli.main", "search", str(space), "--storage", postgres_url,
                                   "--name", "shared", "--out", str(tmp_path / f"machine{i}"), "--quiet"],
                                  cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for process in processes:
        assert process.wait(timeout=400) == 0, process.stderr.read()
    trials = optuna.load_study(study_name="shared", storage=postgres_url.replace("postgresql:", "postgresql+psycopg2:")).get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert 6 <= len(complete) <= 7
    assert len({t.user_attrs["pid"] for t in complete}) == 2  # both processes ran trials of the one study
    assert (tmp_path / "machine0" / "best.json").is_file() and (tmp_path / "machine1" / "best.json").is_file()
