"""A real PostgreSQL server for tests, started on a free port in a temporary folder and stopped afterwards.

Shared by tests/search/test_postgres.py and tests/reliability (import `postgres_url` into the test module or
conftest that uses it). Skips when the server binaries or psycopg2 are missing, and fails in CI (tests/services.py).
"""
from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from tests.services import require_service

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _as_postgres(args, **kwargs):
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, check=True, capture_output=True, text=True, **kwargs)


@pytest.fixture
def postgres_url():
    require_service(bool(BIN), "no PostgreSQL server binaries in /usr/lib/postgresql (apt-get install postgresql)")
    require_service(importlib.util.find_spec("psycopg2") is not None,
                    "no psycopg2, the PostgreSQL driver (pip install -e '.[test]' installs it)")
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
