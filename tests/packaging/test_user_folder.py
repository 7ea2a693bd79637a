"""dlx run from a user's project folder that holds its own train.py, search.py, core.py, ...: every way of starting
dlx (the command, `python -m dlx`, torchrun's `-m dlx` on every rank, search workers and `nproc:` trials) imports
dlx's modules, never the user's. Nothing here puts the checkout on PYTHONPATH: dlx comes from its install."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.user_folder import assert_dlx_ran, user_folder

DLX = str(Path(sys.executable).with_name("dlx"))


def run(command: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(command, cwd=cwd, env={**env, "COLUMNS": "200", "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def folder(tmp_path):
    return user_folder(tmp_path / "project")


def test_python_m_dlx_help_and_train(folder):
    assert_dlx_ran(result := run([sys.executable, "-m", "dlx", "--help"], folder))
    assert "train" in result.stdout
    assert_dlx_ran(run([sys.executable, "-m", "dlx", "train", "spec.yaml", "--out", "run", "--quiet"], folder))
    assert (folder / "run" / "checkpoints" / "best.pt").is_file()


@pytest.mark.slow
@pytest.mark.xdist_group("heavy")
def test_distributed_training_and_a_distributed_search(folder):
    assert_dlx_ran(run([DLX, "train", "spec.yaml", "--nproc", "2", "--out", "ddp", "--quiet"], folder))
    assert '"world_size": 2' in (folder / "ddp" / "summary.json").read_text()
    (folder / "space.yaml").write_text((folder / "space.yaml").read_text() + "nproc: 2\n")
    assert_dlx_ran(run([DLX, "search", "space.yaml", "--workers", "2", "--out", "search", "--quiet"], folder))
    assert (folder / "search" / "best.json").is_file()
