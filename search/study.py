"""Studies: open the storage, create or join the study, check the space, fail trials of dead processes.

Default storage is SQLite `study.db` in the search folder; any Optuna RDB URL (postgresql://, mysql://)
lets processes on several machines share one study. Trials record pid and host; a RUNNING trial of this
host whose process is gone is failed and re-queued with its parameters, and so is one killed before it
recorded an owner, once `ORPHAN_SECONDS` old. The RDB heartbeat does the same for trials of other
machines, after `GRACE_SECONDS` without a beat.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import importlib.util
import json
import os
import socket
import sqlite3
import stat
import time
import uuid
import warnings
import zlib
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy import event
from sqlalchemy.exc import (ArgumentError, DatabaseError, IntegrityError, NoSuchModuleError, OperationalError,
                            ProgrammingError)

from dlx.core.errors import DlxError
from dlx.core.lazy import lazy_module
from dlx.core.processes import pid_alive
from dlx.core.urls import redact
from dlx.search.samplers import make_pruner, make_sampler

optuna = lazy_module("optuna")

SPACE_ATTR = "dlx_space"
STUDY_ID_ATTR = "dlx_study_id"  # a study's identity: set once as it is created, recorded in study.json
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 60
ORPHAN_SECONDS = GRACE_SECONDS  # a RUNNING trial that never recorded its owner is taken for dead after this
SQLITE_TIMEOUT = 60


def default_storage(search_dir: Path) -> str:
    return f"sqlite:///{(Path(search_dir) / 'study.db').resolve()}"


FULL_DISK = ("database or disk is full", "no space left on device", "could not extend file", "disk full")


def full_disk(exc: BaseException) -> Optional[DlxError]:
    """A DlxError saying the disk is full, if `exc` (an OSError, or a database error) means that; else None.
    Retrying doesn't help then, and the trials already stored are intact (SQLite rolls the write back)."""
    seen = 0
    while exc is not None and seen < 5:
        text = str(exc).lower()
        if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or any(f in text for f in FULL_DISK):
            reason = _first_line(getattr(exc, "message", None) or exc)[:200]
            return DlxError(f"the disk is full ({reason}), so the search stopped; the trials finished so far are "
                            "saved. Free some space, then continue with `dlx search --resume`.")
        exc, seen = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__, seen + 1
    return None


def retrying(call: Callable, attempts: int = 8, what: str = "the study storage"):
    """Run `call`, retrying SQLAlchemy OperationalError (busy SQLite, a dropped connection) with backoff.
    A full disk is not retried."""
    for attempt in range(attempts):
        try:
            return call()
        except OperationalError as exc:
            full = full_disk(exc)
            if full is not None:
                raise full from None
            if attempt == attempts - 1:
                reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
                raise DlxError(f"{what} kept failing ({reason}).") from None
            time.sleep(min(5.0, 0.2 * 2 ** attempt))


JOURNAL = "journal://"


def open_journal(url: str):
    """Optuna's JournalStorage on a file (`journal:///shared/path/search.journal`): an append-only log that
    processes on several machines share through a common filesystem (NFS included: the lock is an O_EXCL file),
    where no database server is at hand. Dead trials are found by dlx's owner records, as with SQLite.
    The file must be a regular one (or not exist yet), and every line a log record, or it is refused."""
    path = Path(url.removeprefix(JOURNAL))
    if not url.startswith(JOURNAL + "/") or path.name in ("", ".", ".."):
        raise DlxError(f"a journal storage is written journal:///absolute/path/search.journal (three slashes, then "
                       f"an absolute path to the file), got {url!r}.", key="--storage")
    refuse_non_regular(path, "journal")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    except OSError as exc:
        raise DlxError(f"can't create the journal file ({exc.strerror}).", file=path, key="--storage") from None
    refuse_non_regular(path, "journal")  # another process may have put something else there meanwhile
    check_journal(path)
    journal = optuna.storages.journal
    backend = journal.JournalFileBackend(str(path), journal.JournalFileOpenLock(str(path)))
    try:
        storage = optuna.storages.JournalStorage(backend)
        for study in storage.get_all_studies():  # records of the wrong types show only as they are read
            storage.get_all_trials(study._study_id, deepcopy=False)
        return storage
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError, OverflowError) as exc:
        raise _damaged_journal(path, f"its records don't replay ({type(exc).__name__}: "
                                     f"{_first_line(exc)[:120]})") from None


def refuse_non_regular(path: Path, what: str) -> None:
    """A storage file is a regular file or doesn't exist yet: a device (/dev/zero) would be read without end, a FIFO
    block, and SQLite writes its own files beside a device it is given (/dev/zero-journal)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DlxError(f"can't read the {what} storage ({exc.strerror}).", file=path, key="--storage") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
            "a device or socket, not a regular file"
        raise DlxError(f"the {what} storage must be a file, but this is {kind}; give the path of a file (it is "
                       "created if it doesn't exist).", file=path, key="--storage")


MAX_JOURNAL_LINE = 16 * 2**20  # bytes: one journal record (dlx's largest is the space's fingerprint, a few KB)


def check_journal(path: Path) -> None:
    """Refuse a damaged journal (garbage, binary, a cut line among whole ones, JSON that is not a record, a line
    without end, nesting deeper than JSON's parser goes) before Optuna replays it: Optuna raises whatever its
    parser or replay happens to meet. A last line without its newline is one still being written, as Optuna
    reads it: it is skipped, not refused."""
    codes = {int(op) for op in optuna.storages.journal._storage.JournalOperation}
    with open(path, "rb") as handle:
        number = 0
        while line := handle.readline(MAX_JOURNAL_LINE + 1):
            number += 1
            if len(line) > MAX_JOURNAL_LINE:
                raise _damaged_journal(path, f"line {number} is longer than {MAX_JOURNAL_LINE // 2**20} MiB")
            if not line.endswith(b"\n"):
                return
            problem = _record_problem(line, codes)
            if problem:
                raise _damaged_journal(path, f"line {number} {problem}")


def _record_problem(line: bytes, codes: set) -> Optional[str]:
    """Why one journal line is not a record Optuna can replay (None if it is one)."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return f"is not JSON ({_first_line(exc)[:80]})"
    if not isinstance(record, dict) or not isinstance(record.get("op_code"), int) \
            or isinstance(record["op_code"], bool) or record["op_code"] not in codes:
        return "is JSON but not a journal record (an object with a known op_code)"
    if not isinstance(record.get("worker_id"), str):
        return "is a journal record without its worker_id"
    return None


def _damaged_journal(path: Path, reason: str) -> DlxError:
    return DlxError(f"the journal storage is damaged: {reason}. It was left unchanged; restore it from a copy, or "
                    "start a new search with another --storage.", file=path, key="--storage")


def open_storage(url: str, heartbeat: bool = True):
    """An Optuna RDBStorage for `url` (or a JournalStorage for journal:///path); an unreachable or malformed URL
    is a DlxError that names it."""
    if url.startswith(JOURNAL):
        return open_journal(url)
    shown = redact(url)
    url = _with_driver(url)
    sqlite = url.startswith("sqlite")
    # isolation_level=None: pysqlite's own deferred BEGIN is off, so _serialise_sqlite can begin each transaction
    engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT, "isolation_level": None}} if sqlite else {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    beat = {"heartbeat_interval": HEARTBEAT_SECONDS, "grace_period": GRACE_SECONDS,
            "heartbeat_stale_trial_callback": requeue_stale} if heartbeat else {}
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    file = sqlite_file(url) if sqlite else None
    if file is not None and file.exists() and _read_only(file):  # SQLite would say so only at the first write
        raise _sqlite_unusable(file)
    try:
        if sqlite:
            _create_sqlite_whole(url)
        storage = _create_tables(lambda: optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **beat))
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise DlxError(f"the storage URL {shown} is not a database URL Optuna can use ({_first_line(exc)}); "
                       "give e.g. sqlite:///path/study.db or postgresql://user:pass@host/db.", key="--storage") from None
    except ImportError as exc:
        raise DlxError(f"the storage {shown} needs a database driver that is not installed"
                       f"{f' (the module {exc.name!r})' if exc.name else ''}; {_driver_advice(url)}",
                       key="--storage") from None
    except OperationalError as exc:
        if file is not None:
            raise _sqlite_unusable(file, exc) from None
        raise DlxError(f"can't reach the storage {shown}: {_first_line(exc.orig or exc)}. Check that the server "
                       "runs, the host and port, and the credentials.", key="--storage") from None
    except DatabaseError as exc:
        raise _not_a_database(url, shown, exc) from None
    if sqlite:  # WAL lets readers (the live table, other workers) proceed while one writes
        try:
            with storage.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        except OperationalError as exc:
            raise _sqlite_unusable(file, exc) from None
        except DatabaseError as exc:
            raise _not_a_database(url, shown, exc) from None
        _serialise_sqlite(storage.engine)
    return storage


def sqlite_file(url: str) -> Path:
    """The file of an SQLite URL, refused where other processes could not share it (in memory, a temporary
    database) or where it is not a regular file: checked before SQLAlchemy opens it, as SQLite creates files beside
    its target (`/dev/zero-journal`)."""
    path = url.split("://", 1)[1].removeprefix("/").split("?", 1)[0] if "://" in url else ""
    if path in ("", ":memory:") or "mode=memory" in url:
        raise DlxError(f"the storage {redact(url)} is a database in memory, which dies with this process and which "
                       "worker processes can't see; give a file, e.g. sqlite:////absolute/path/study.db (or leave "
                       "--storage out for the search folder's study.db).", key="--storage")
    refuse_non_regular(Path(path), "SQLite")
    return Path(path)


def _sqlite_unusable(file: Path, exc=None) -> DlxError:
    """An SQLite file that can't be written: read-only (file, folder or filesystem) or not openable; named, with
    SQLite's reason, instead of a word about servers and credentials."""
    reason = _first_line(getattr(exc, "orig", None) or exc) if exc is not None else "it can't be written"
    full = full_disk(exc) if exc is not None else None
    if full is not None:
        return full
    if "readonly" in reason.lower() or "read-only" in reason.lower() or _read_only(file):
        return DlxError(f"the study storage is read-only ({reason}), and a search writes every trial into it (SQLite "
                        "also writes beside it, in its folder); make the file and its folder writable, or search "
                        "with a copy of it elsewhere.", file=file, key="--storage")
    return DlxError(f"can't open the study storage ({reason}); check that its folder exists and is writable.",
                    file=file, key="--storage")


def _read_only(file: Path) -> bool:
    """Whether `file` (or its folder, where SQLite keeps its -wal and -shm files) can't be written: permissions or
    a read-only filesystem (which access(2) reports for root too)."""
    folder = file.parent if str(file.parent) else Path(".")
    return (file.exists() and not os.access(file, os.W_OK)) or (folder.is_dir() and not os.access(folder, os.W_OK))


def _not_a_database(url: str, shown: str, exc) -> DlxError:
    """A storage that opens but is not an Optuna database (a damaged or overwritten study.db): named, not a
    traceback. Deleting it loses the trials' records, so the message says to restore it first."""
    file = url.split(":///", 1)[1] if url.startswith("sqlite") and ":///" in url else None
    return DlxError(f"the study storage is damaged or is not a database ({_first_line(exc.orig or exc)}); "
                    "restore it from a copy, or start a new search in another folder.", file=file,
                    key=None if file else "--storage")


def _serialise_sqlite(engine) -> None:
    """Make every transaction BEGIN IMMEDIATE. pysqlite otherwise runs a transaction's SELECTs before taking
    any lock, so Optuna's check-then-set on a WAITING trial is not atomic: two workers starting together both
    popped the same re-queued trial, trained it into the same folder, and one then crashed on
    "Cannot tell a COMPLETE trial"."""

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened so far were made before the listener


def _create_sqlite_whole(url: str) -> None:
    """A new SQLite storage appears with all of Optuna's tables and indexes, or not at all. Optuna creates them one
    statement at a time, so a search killed meanwhile left a `studies` table without its unique index on the name,
    and the resumed search inserted the study again: workers then failed with "Multiple rows were found". So the
    tables are made in a hidden temporary file beside it (no rollback journal: a half-made one is never used), which
    is synced and then linked into place, never over a file another process linked first."""
    path = Path(url.split(":///", 1)[1]) if ":///" in url and "?" not in url else None
    if path is None or str(path) in ("", ":memory:"):
        return
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a process killed while creating
        pid = stale.name.removeprefix(f".{path.name}.").removesuffix(".tmp")
        if pid.isdigit() and not pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                stale.unlink(missing_ok=True)
    if path.exists():
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")

    def connect():
        connection = sqlite3.connect(temporary, timeout=SQLITE_TIMEOUT, isolation_level=None)
        connection.execute("PRAGMA journal_mode=OFF")
        return connection

    try:
        temporary.unlink(missing_ok=True)
        optuna.storages.RDBStorage(f"sqlite:///{temporary}", engine_kwargs={"creator": connect}).engine.dispose()
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process's storage is already in place: use that one
            os.link(temporary, path)
    except OSError as exc:
        raise _cannot_create(path, exc) from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def _cannot_create(path: Path, exc: OSError) -> DlxError:
    full = full_disk(exc)
    if full is not None:
        return full
    what = "its folder is read-only" if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else "it can't be made"
    return DlxError(f"can't create the study storage here: {what} ({exc.strerror or exc}).", file=path,
                    key="--storage")


def _create_tables(create: Callable, attempts: int = 5):
    """Two processes creating Optuna's tables in a fresh database at once: the loser retries and finds them."""
    for attempt in range(attempts):
        try:
            return create()
        except (IntegrityError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 + attempt)


def _with_driver(url: str) -> str:
    """postgresql:// → postgresql+psycopg2:// when only psycopg2 (the dlx[postgres] extra) is installed:
    SQLAlchemy 2.1 defaults to psycopg 3."""
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


DRIVER_ADVICE = {  # URL scheme → how to install the driver SQLAlchemy loads for it
    "postgresql": "for PostgreSQL run `pip install psycopg2-binary` (the dlx[postgres] extra).",
    "mysql": "for MySQL run `pip install pymysql` and write the URL as mysql+pymysql://…, or install mysqlclient "
             "for mysql://….",
    "mariadb": "for MariaDB run `pip install pymysql` and write the URL as mariadb+pymysql://….",
    "oracle": "for Oracle run `pip install oracledb`.",
    "mssql": "for SQL Server run `pip install pyodbc`.",
}


def _driver_advice(url: str) -> str:
    """The install command for the driver this URL's scheme needs (`mysql+pymysql://` → pymysql)."""
    scheme = url.split("://", 1)[0].lower()
    dialect, _, driver = scheme.partition("+")
    if driver:
        package = {"psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]", "mysqldb": "mysqlclient"}.get(driver,
                                                                                                          driver)
        return f"the URL names the driver '{driver}': run `pip install {package}`."
    return DRIVER_ADVICE.get(dialect, f"install the Python driver for '{dialect}' databases.")


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def open_study(space, storage, name: str, seed_offset: int = 0, shared: bool = False):
    """Create or join the study `name`, refusing a stored space that conflicts with `space`.

    The sampler's seed mixes in the worker index and the trials so far, so parallel workers and resumed
    searches don't replay the same random draws. On a `shared` storage (--storage: other machines may join) it
    mixes in the host and process too: jobs of an array start together, with the same worker index and no trials
    yet, and would otherwise all sample the same first points."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials: we record the reason

    def load():
        try:
            return optuna.create_study(storage=storage, study_name=name, directions=space.directions), True
        except optuna.exceptions.DuplicatedStudyError:  # it exists (another process may have created it just now)
            pass
        try:
            return optuna.load_study(study_name=name, storage=storage), False
        except KeyError:
            raise DlxError(f"the storage has no study named '{name}'.", key="--name") from None

    study, created = retrying(load)
    if created:
        retrying(lambda: study.set_user_attr(STUDY_ID_ATTR, uuid.uuid4().hex))
    fingerprint = json.loads(json.dumps(space.fingerprint()))
    stored = study.user_attrs.get(SPACE_ATTR)
    if stored is None:
        retrying(lambda: study.set_user_attr(SPACE_ATTR, fingerprint))
    else:
        conflict = _first_difference(stored, fingerprint)
        if conflict:
            key, old, new = conflict
            raise DlxError(f"the search space conflicts with the one study '{name}' was started with: '{key}' was "
                           f"{json.dumps(old)} and is now {json.dumps(new)}. Restore it, or start a new search "
                           "(another --out or --name).", file=space.file, key=key)
    stored_directions = [d.name.lower() for d in study.directions]
    if stored_directions != space.directions:
        raise DlxError(f"study '{name}' is set to {', '.join(stored_directions)}, but the space asks to "
                       f"{', '.join(space.directions)}.", file=space.file,
                       key="objectives" if space.multi else "direction")
    seed = space.seed + 7919 * seed_offset + len(retrying(lambda: study.get_trials(deepcopy=False)))
    if shared:
        seed = (seed + 104_729 * zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode())) % 2**32
    study.sampler = make_sampler(space, seed)
    study.pruner = make_pruner(space)
    return study


IDENTITY_WAIT = 5.0  # seconds a process joining a new study waits for its creator to record its identity


def study_identity(study, wait: float = IDENTITY_WAIT) -> str:
    """The identity its creator recorded (STUDY_ID_ATTR, set by `open_study` just after creating it): a study made
    again under the same name and storage, or in another storage, has another. A study of an older dlx, or one
    whose creator was killed at once, has none: it gets one here, once it has trials or `wait` has passed."""
    deadline = time.monotonic() + wait
    while True:
        found = retrying(lambda: study.user_attrs.get(STUDY_ID_ATTR))
        if isinstance(found, str) and found:
            return found
        if time.monotonic() >= deadline or retrying(lambda: study.get_trials(deepcopy=False)):
            retrying(lambda: study.set_user_attr(STUDY_ID_ATTR, uuid.uuid4().hex))
            continue  # read back what the storage holds
        time.sleep(0.05)


def _first_difference(old, new, prefix: str = ""):
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            found = _first_difference(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
            if found:
                return found
        return None
    return None if old == new else (prefix, old, new)


# -- who runs which trial ---------------------------------------------------------------------------------

def owner_attrs() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


DIED = "its process died (killed or crashed) while the trial ran; re-queued"
INTERRUPTED = "interrupted (Ctrl-C or SIGTERM) while the trial ran; re-queued"
UNRECORDED = "its end could not be recorded (the storage refused the write: a full disk?); re-queued. It stopped with"
RETRY_ATTR = "retry_of"  # on a re-queued trial: the number of the trial it runs again
DEATHS_ATTR = "deaths"  # on a re-queued trial: how many tries of these parameters so far died with their process
MAX_RETRY = 2  # parameters whose process died on 1 + MAX_RETRY tries are failed for good (Optuna's max_retry)


def deaths(trial, died: bool = True) -> int:
    """Tries of `trial`'s parameters that died with their process, counting `trial` itself if `died`: a Ctrl-C or
    SIGTERM is the user's or the scheduler's, not the configuration's, and doesn't count."""
    return int(trial.user_attrs.get(DEATHS_ATTR, 0)) + died


def gave_up(count: int) -> str:
    return (f"its process died on each of its {count} tries (killed or crashed each time, e.g. out of memory); "
            f"not re-queued again (at most {MAX_RETRY} retries)")


def requeue_stale(study, trial, died: bool = True) -> bool:
    """Re-run a trial whose process died (or that was interrupted), with the same parameters: the sampler chose
    them once already. Parameters that kill their process on every try are not re-queued past MAX_RETRY, as
    Optuna's RetryFailedTrialCallback(max_retry) does; returns whether the trial was re-queued."""
    count = deaths(trial, died)
    if count > MAX_RETRY:
        return False
    retrying(lambda: study.enqueue_trial(trial.params, user_attrs={RETRY_ATTR: trial.number, DEATHS_ATTR: count},
                                         skip_if_exists=False))
    return True


def requeued(trials) -> set[int]:
    """Numbers of the trials run again as another trial (interrupted, or their process died): not failures, as
    the configuration was never at fault, and their retry is the trial that counts."""
    return {t.user_attrs[RETRY_ATTR] for t in trials if RETRY_ATTR in t.user_attrs}


BEAT_ATTR = "heartbeat"  # time.time() of a trial's last sign of life, where the storage keeps no heartbeat itself


def beats_itself(study) -> bool:
    """Whether a trial must record its own heartbeat (BEAT_ATTR): Optuna's journal storage has none, so a trial of
    a machine that died (a preempted node, a deleted pod) would otherwise stay RUNNING, and the search wait for it
    forever. Reaches into `study._storage`, as `_fail_in_storage` does."""
    return isinstance(getattr(study, "_storage", None), optuna.storages.JournalStorage)


def _dead(trial, host: str) -> bool:
    attrs = trial.user_attrs
    if "pid" not in attrs:  # killed after Optuna created it, before the objective recorded its owner
        started = trial.datetime_start
        return started is not None and (datetime.datetime.now() - started).total_seconds() > ORPHAN_SECONDS
    if attrs.get("host") == host:
        return not pid_alive(int(attrs["pid"]))
    beat = attrs.get(BEAT_ATTR)
    return isinstance(beat, (int, float)) and time.time() - beat > GRACE_SECONDS


def fail_dead_trials(study) -> list[int]:
    """Fail RUNNING trials whose process is gone and re-queue them: those of this host whose process no
    longer exists, and those of any host that never recorded an owner within ORPHAN_SECONDS."""
    host = socket.gethostname()
    failed = []
    for trial in retrying(lambda: study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))):
        if not _dead(trial, host):
            continue
        ended = trial.user_attrs.get("fail_reason")  # it failed, but the storage took no FAIL (a full disk)
        died = ended is None
        reason = (DIED if deaths(trial) <= MAX_RETRY else gave_up(deaths(trial))) if died else \
            f"{UNRECORDED}: {ended}"
        try:
            if retrying(lambda trial=trial, reason=reason: _fail_in_storage(study, trial, reason)):
                failed.append(trial.number)
                requeue_stale(study, trial, died=died)
        except optuna.exceptions.UpdateFinishedTrialError:  # another process finished it first: nothing to do
            pass
    return failed


def _fail_in_storage(study, trial, reason: str) -> bool:
    """Mark another process's RUNNING `trial` FAIL with `reason`, in the storage itself.

    The one place dlx reaches into Optuna's internals (`study._storage`, `trial._trial_id`): Optuna's public
    `study.tell` can't do this, as it runs the sampler's `after_trial` hook (GridSampler's calls `study.stop()`,
    which raises outside `optimize`) and has no way to set a user attr on a trial this process doesn't hold."""
    storage, trial_id = study._storage, trial._trial_id
    storage.set_trial_user_attr(trial_id, "fail_reason", reason)
    return storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL)


def counts(study, since: int = 0) -> dict:
    """Trials by state, a re-queued FAIL trial under `requeued` instead of `fail`; `failed_since` counts FAIL
    trials numbered >= since (this invocation's)."""
    trials = retrying(lambda: study.get_trials(deepcopy=False))
    retried = requeued(trials)
    result = {"complete": 0, "pruned": 0, "running": 0, "fail": 0, "waiting": 0, "requeued": 0, "failed_since": 0}
    for trial in trials:
        state = trial.state.name.lower()
        if state == "fail" and trial.number in retried:
            state = "requeued"
        result[state] = result.get(state, 0) + 1
        if state == "fail" and trial.number >= since:
            result["failed_since"] += 1
    result["done"] = result["complete"] + result["pruned"]
    return result
