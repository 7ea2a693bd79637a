"""Property: whatever stands in a run folder's summary.json, split.json, provenance.json or .dlx-folder.json
(random bytes, valid JSON of another shape, JSON nested from 1 to 200,000 deep, a file over the size limit, a
FIFO, a link to /dev/zero or /dev/urandom), `dlx runs` lists the folder (as damaged where it can't read it) and
the folder beside it, and `dlx evaluate` (also given such a best.pt) and `dlx train --resume` work or refuse with
exit code 2 and one paragraph; none hangs.

Each example runs the real `dlx` in its own process, with a timeout, so a blocked open fails the example instead
of the suite."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import assert_user_error, run_dlx
from tests.reliability.stand_ins import put

pytestmark = pytest.mark.slow
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
FILES = ["summary.json", "split.json", "provenance.json", ".dlx-folder.json"]
HANG = 60  # seconds; each command ends in a few

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


def nested(depth: int, opener: str) -> bytes:
    """`depth` levels of lists ('[') or objects ('{"k":') around a number."""
    if opener == "[":
        return b"[" * depth + b"1" + b"]" * depth
    return b'{"k":' * depth + b"1" + b"}" * depth


STAND_INS = st.one_of(
    st.binary(max_size=300).map(lambda raw: ("bytes", raw)),
    JSON_VALUES.map(lambda value: ("bytes", json.dumps(value).encode())),
    st.tuples(st.integers(1, 200_000), st.sampled_from("[{")).map(lambda d: ("bytes", nested(*d))),
    st.sampled_from([("fifo", None), ("link", "/dev/zero"), ("link", "/dev/urandom"), ("huge", None)]))


def fresh_pair(run: Path) -> Path:
    """A new folder holding two copies of `run`: 'run' (to damage) and 'other'."""
    root = Path(tempfile.mkdtemp(prefix="pair-", dir=run.parent))
    shutil.copytree(run, root / "run")
    shutil.copytree(run, root / "other")
    return root


@given(name=st.sampled_from(FILES), stand_in=STAND_INS)
@settings(max_examples=30, **SETTINGS)
def test_runs_lists_every_folder_whatever_its_files_hold(finished_run, name, stand_in):
    root = fresh_pair(finished_run)
    put(root / "run" / name, stand_in)
    result = run_dlx("runs", root, "--json", timeout=HANG)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    rows = {Path(row["path"]).name: row for row in json.loads(result.stdout)}
    assert set(rows) == {"run", "other"} and rows["other"]["status"] == "finished", rows
    event(f"{name}: {rows['run']['status']}")
    if name == "summary.json" and rows["run"]["status"] == "damaged":
        assert "summary.json" in rows["run"]["problem"], rows["run"]


def works_or_refuses(result) -> None:
    event(f"exit {result.returncode}")
    if result.returncode != 0:
        assert_user_error(result)


@given(name=st.sampled_from(FILES + ["checkpoints/best.pt"]), stand_in=STAND_INS)
@settings(max_examples=15, **SETTINGS)
def test_evaluate_works_or_refuses_cleanly_whatever_the_folder_files_hold(finished_run, name, stand_in):
    root = fresh_pair(finished_run)
    put(root / "run" / name, stand_in)
    result = run_dlx("evaluate", root / "run", "--json", timeout=HANG)
    works_or_refuses(result)
    if result.returncode == 0:
        assert 0 <= json.loads(result.stdout)["accuracy"] <= 1


@given(name=st.sampled_from(FILES), stand_in=STAND_INS)
@settings(max_examples=15, **SETTINGS)
def test_resume_works_or_refuses_cleanly_whatever_the_folder_files_hold(finished_run, name, stand_in):
    root = fresh_pair(finished_run)
    put(root / "run" / name, stand_in)
    works_or_refuses(run_dlx("train", "--resume", root / "run", "--epochs", "2", "--quiet", timeout=HANG))
