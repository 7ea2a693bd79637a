"""`dlx train --nproc` ends cleanly: a finished run exits 0 with no traceback even on a loaded machine (a rank
used to abort at exit now and then, train.distributed.exit_rank); signals are tests/train/test_ddp_signals.py's."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

DIGITS = ROOT / "configs" / "digits.yaml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("heavy")]  # several processes at once


def test_finished_runs_beside_a_busy_process_all_end_cleanly():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ddp_exit_loop.py"), "--runs", "4", "--busy",
                           "1"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0 and "0 of 4 runs not clean" in done.stdout, done.stdout + done.stderr
