"""Hostile study storages: a journal file with garbage, cut, binary, huge or deeply nested lines, JSON that is no
journal record, or records of the wrong types, either opens (and every study and trial in it reads) or is refused
with one DlxError naming the file, quickly, never a traceback; a journal or SQLite target that is not a regular
file (a device, a FIFO, a folder), an SQLite database in memory, and a read-only filesystem are refused with a
clear reason, before anything is read from or created beside them."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlx.core.errors import DlxError
from dlx.search.study import open_storage
from tests.conftest import ROOT, assert_user_error, run_dlx

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
MAX_SECONDS = 20  # per input: a hang guard


@pytest.fixture(scope="module")
def journal_lines(tmp_path_factory) -> list[bytes]:
    """The lines of a real journal: a study with a space attribute, trials complete, failed and running."""
    path = tmp_path_factory.mktemp("journal") / "search.journal"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=open_storage(f"journal://{path}"), study_name="space", direction="maximize")
    study.set_user_attr("dlx_space", {"params": {"lr": {"float": [0.001, 0.1]}}})
    for number in range(3):
        trial = study.ask()
        trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        trial.set_user_attr("pid", 1000 + number)
        if number < 2:
            study.tell(trial, 0.5 + number / 10 if number == 0 else None,
                       state=None if number == 0 else optuna.trial.TrialState.FAIL)
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) > 10
    return lines


def answer(path: Path):
    """Open the journal as dlx does and read every study and trial: the storage, or the one DlxError."""
    started = time.monotonic()
    try:
        storage = open_storage(f"journal://{path}", heartbeat=False)
        for frozen in storage.get_all_studies():
            study = optuna.load_study(study_name=frozen.study_name, storage=storage)
            study.get_trials(deepcopy=False)
            study.user_attrs  # noqa: B018 - read as open_study does
        return storage
    except DlxError as error:
        assert str(path) in error.render(), error.render()
        return error
    finally:
        assert time.monotonic() - started < MAX_SECONDS


def write(tmp_path: Path, lines: list[bytes], name: str = "damaged.journal") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(lines))
    return path


def nested(depth: int) -> bytes:
    return b'{"op_code":0,"worker_id":"w","study_name":' + b"[" * depth + b"]" * depth + b"}\n"


DAMAGE = {  # kind of damage → what it does to the journal's lines (the refused ones)
    "garbage text": lambda lines: lines[:3] + [b"this is not json\n"] + lines[3:],
    "line cut in the middle": lambda lines: lines[:3] + [lines[3][: len(lines[3]) // 2] + b"\n"] + lines[4:],
    "binary": lambda lines: lines[:2] + [bytes(range(256)) + b"\n"] + lines[2:],
    "nul bytes": lambda lines: lines[:2] + [b"\0" * 4096 + b"\n"] + lines[2:],
    "invalid utf-8": lambda lines: lines[:2] + [b'{"op_code":0,"worker_id":"\xff\xfe"}\n'] + lines[2:],
    "a list, not a record": lambda lines: lines + [b"[1, 2, 3]\n"],
    "no op_code": lambda lines: lines + [b'{"worker_id": "w"}\n'],
    "unknown op_code": lambda lines: lines + [b'{"op_code": 99, "worker_id": "w"}\n'],
    "op_code a string": lambda lines: lines + [b'{"op_code": "0", "worker_id": "w"}\n'],
    "op_code true": lambda lines: lines + [b'{"op_code": true, "worker_id": "w"}\n'],
    "missing fields": lambda lines: lines + [b'{"op_code": 0, "worker_id": "w"}\n'],
    "wrong types": lambda lines: lines + [b'{"op_code": 4, "worker_id": "w", "trial_id": "x", "state": 1}\n'],
    "deep json": lambda lines: lines + [nested(100_000)],
    "5000-digit integer": lambda lines: lines + [b'{"op_code": 0, "worker_id": "w", "n": ' + b"9" * 5000 + b"}\n"],
    "huge line": lambda lines: lines + [b'{"op_code": 0, "worker_id": "' + b"x" * (17 * 2**20) + b'"}\n'],
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_each_kind_of_journal_damage_is_refused_naming_the_file(kind, journal_lines, tmp_path):
    path = write(tmp_path, DAMAGE[kind](list(journal_lines)))
    before = path.read_bytes()
    result = answer(path)
    assert isinstance(result, DlxError), f"{kind}: opened"
    assert "damaged" in result.message
    assert path.read_bytes() == before  # left unchanged


def test_a_last_line_still_being_written_is_skipped_as_optuna_does(journal_lines, tmp_path):
    path = write(tmp_path, list(journal_lines) + [b'{"op_code": 0, "worker_id": "w", "study_na'])
    storage = answer(path)
    assert not isinstance(storage, DlxError), storage.render()
    assert [s.study_name for s in storage.get_all_studies()] == ["space"]


def test_an_empty_journal_opens(tmp_path):
    storage = answer(write(tmp_path, []))
    assert not isinstance(storage, DlxError) and storage.get_all_studies() == []


@st.composite
def mutated_journal(draw, lines: list[bytes]) -> list[bytes]:
    """The real journal, cut, spliced with garbage, nested or grown at a random place."""
    lines = list(lines)
    at = draw(st.integers(0, len(lines)))
    how = draw(st.sampled_from(["bytes", "cut", "nest", "swap", "duplicate", "json"]))
    if how == "bytes":
        lines.insert(at, draw(st.binary(max_size=300)) + b"\n")
    elif how == "cut" and at < len(lines):
        lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))] + draw(st.sampled_from([b"", b"\n"]))
    elif how == "nest":
        lines.insert(at, nested(draw(st.sampled_from([10, 900, 1100, 5000, 200_000]))))
    elif how == "swap" and len(lines) > 1:
        other = draw(st.integers(0, len(lines) - 1))
        lines[at % len(lines)], lines[other] = lines[other], lines[at % len(lines)]
    elif how == "duplicate" and at < len(lines):
        lines.insert(at, lines[at])
    else:
        record = draw(st.dictionaries(st.sampled_from(["op_code", "worker_id", "trial_id", "study_id", "state",
                                                       "study_name", "directions", "values", "user_attr", "param_name",
                                                       "datetime_start", "datetime_complete", "distribution"]),
                                      st.one_of(st.integers(-3, 20), st.text(max_size=8), st.none(),
                                                st.lists(st.integers(-1, 3), max_size=3), st.floats()),
                                      max_size=7))
        lines.insert(at, json.dumps(record).encode() + b"\n")
    return lines


@settings(max_examples=int(os.environ.get("DLX_PROPERTY_EXAMPLES", "120")), **SETTINGS)
@given(data=st.data())
def test_property_any_damaged_journal_opens_or_is_refused_with_one_dlx_error(data, journal_lines, tmp_path_factory):
    folder = tmp_path_factory.mktemp("property")
    answer(write(folder, data.draw(mutated_journal(journal_lines))))  # anything but a DlxError fails the test
    shutil.rmtree(folder)


def test_a_damaged_journal_is_one_user_error_from_the_cli(journal_lines, make_space, tmp_path):
    path = write(tmp_path, DAMAGE["garbage text"](list(journal_lines)))
    result = run_dlx("search", make_space("trials: 1\n"), "--storage", f"journal://{path}", "--out", tmp_path / "s",
                     "--quiet")
    assert_user_error(result, str(path), "damaged", "line 4")


@pytest.fixture
def make_space(tmp_path):
    from tests.search.conftest import PARAMS, TINY_SPEC
    (tmp_path / "tiny.yaml").write_text(TINY_SPEC)

    def make(header: str) -> Path:
        path = tmp_path / "space.yaml"
        path.write_text("base: tiny.yaml\n" + header + PARAMS)
        return path
    return make


# -- storage targets that are not regular files -----------------------------------------------------------

def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


TARGETS = {"a device": lambda tmp_path: Path("/dev/zero"), "a FIFO": fifo, "a folder": lambda tmp_path: tmp_path}


@pytest.mark.parametrize("scheme", ["journal://", "sqlite:///"])
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_storage_that_is_not_a_regular_file_is_refused_untouched(scheme, target, tmp_path):
    path = TARGETS[target](tmp_path)
    beside = {p.name for p in path.parent.iterdir()}
    started = time.monotonic()
    with pytest.raises(DlxError, match=target.split()[-1]) as refused:
        open_storage(f"{scheme}{path}", heartbeat=False)
    assert time.monotonic() - started < 5  # no endless read of /dev/zero, no wait on the FIFO
    assert str(refused.value.file) == str(path)
    assert {p.name for p in path.parent.iterdir()} == beside  # SQLite made no `-journal` or `-wal` beside it


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "sqlite:///file:x?mode=memory&uri=true"])
def test_a_database_in_memory_is_refused(url, make_space, tmp_path):
    result = run_dlx("search", make_space("trials: 1\n"), "--storage", url, "--out", tmp_path / "s", "--quiet")
    assert_user_error(result, "in memory", "--storage")


def read_only(folder: Path, command: list[str]) -> subprocess.CompletedProcess:
    """Run `command` with `folder` mounted read-only (a bind mount in a private user and mount namespace): as root
    a chmod stops no write, but a read-only filesystem does."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("no user namespaces here to mount a read-only filesystem")
    mount = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && exec \"$@\""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(["unshare", "-rm", "sh", "-c", mount, "sh", *command], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("exists", [False, True], ids=["new", "existing"])
def test_a_study_db_on_a_read_only_filesystem_is_called_read_only(exists, make_space, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if exists:
        optuna.create_study(storage=open_storage(f"sqlite:///{folder / 'study.db'}", heartbeat=False),
                            study_name="space", direction="maximize")
    before = sorted(p.name for p in folder.iterdir())
    result = read_only(folder, [sys.executable, "-m", "dlx", "search", str(make_space("trials: 1\n")), "--storage",
                                f"sqlite:///{folder / 'study.db'}", "--out", str(tmp_path / "s"), "--quiet"])
    message = assert_user_error(result, str(folder / "study.db"), "read-only")
    assert "credentials" not in message
    assert sorted(p.name for p in folder.iterdir()) == before
