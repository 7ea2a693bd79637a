"""Output folders: the marker that says what a folder is, and the lock of the one process writing it.

Every folder dlx writes (a run, search, ensemble or report) carries `.dlx-folder.json` ({"kind": ...}), written
before anything else in it. A command's `--out` may be a new or empty folder, or a dlx folder of the same kind
where that kind may be written again; anything else is refused before a byte in it changes. Folders written
before markers existed are recognised by the files they always hold (see LEGACY).

A writer holds an exclusive `fcntl.flock` on `.dlx-lock` inside the folder, so a second writer is refused at once,
naming the first (its pid and host are in the lock file). The kernel drops the lock when the process dies, so a
killed run never leaves a folder locked. Readers never take it.

A command that fails removes again the folders it made (`discard_unused`) while they hold only bookkeeping: the
marker, the lock and provenance.json, as a run that failed before training started leaves.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from pathlib import Path
from typing import Optional

from dlx.core.errors import DlxError
from dlx.core.files import atomic_write_text
from dlx.core.reading import NotJson, parse_json, read_text
from dlx.train.provenance import FILE as PROVENANCE
from dlx.train.rundir import disk_full_refused, ensure_writable

MARKER = ".dlx-folder.json"
LOCK = ".dlx-lock"
KINDS = ("run", "search", "ensemble", "report", "export")
ARTICLE = {"run": "a run", "search": "a search", "ensemble": "an ensemble", "report": "a report",
           "export": "an export"}
# what a folder of each kind always held before markers existed (read-compat: such folders are dlx's own)
LEGACY = {"run": ("config.yaml", "summary.json", "checkpoints"), "search": ("search.yaml", "study.json"),
          "ensemble": ("ensemble.yaml", "ensemble.json"), "report": ("report.html", "report.json")}
SHOWN = 8  # foreign files named in a refusal
MAX_MARKER_BYTES = 4096  # a marker is one short line


def marker_text(kind: str) -> str:
    return json.dumps({"dlx": "output folder", "kind": kind}) + "\n"


def _is_own(name: str) -> bool:
    """The marker, the lock, and dlx's passing files: atomic-write temporaries and ensure_writable's probe."""
    return name in (MARKER, LOCK) or (name.startswith(".") and name.endswith(".tmp")) \
        or name.startswith(".dlx-write-test-")


def inspect(folder: str | Path) -> tuple[Optional[str], list[str]]:
    """(kind, foreign): the kind `folder` holds (None for a new or empty folder), or the names of files dlx did
    not write there (kind None). Reads only; never raises for a folder that isn't there, only for a marker that
    is no regular file (read_marker)."""
    folder = Path(folder)
    try:
        names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return None, []  # unreadable: ensure_writable says why
    kind = read_marker(folder / MARKER) if MARKER in names else None
    if kind in KINDS:
        return kind, []
    for legacy, needed in LEGACY.items():
        if all(name in names for name in needed):
            return legacy, []
    return None, [name for name in names if not _is_own(name)]


def read_marker(path: Path) -> Optional[str]:
    """The kind a marker names; None when it is damaged (the folder is then known by its files, see LEGACY). A
    marker that is not a regular file, or is over the size limit, is refused (core.reading)."""
    try:
        data = parse_json(read_text(path, MAX_MARKER_BYTES, "a folder marker"), path)
    except (FileNotFoundError, NotJson):
        return None
    return data.get("kind") if isinstance(data, dict) else None


def check(folder: str | Path, kind: str) -> Optional[str]:
    """Refuse `folder` as the output of a `kind` command unless it is new, empty or a `kind` folder (whether that
    may be written again is the command's to say); returns the kind found (None: new or empty). Reads only."""
    folder = Path(folder)
    found, foreign = inspect(folder)
    if foreign:
        listed = ", ".join(foreign[:SHOWN]) + (f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else "")
        raise DlxError(f"this folder holds files that dlx did not write: {listed}. It was left unchanged; give "
                       f"--out a new or empty folder.", file=folder)
    if found is not None and found != kind:
        raise DlxError(f"this is {ARTICLE[found]} folder, not {ARTICLE[kind]}; it was left unchanged. Give --out a "
                       f"new or empty folder.", file=folder)
    return found


class OutputFolder:
    """An output folder of one kind, locked by this process: an exclusive flock on `folder/.dlx-lock`.

    `mark()` writes the marker; `release()` (or leaving the `with`) removes the lock file, then unlocks. The file
    is unlinked while still locked, so a process that opened it just before locks a file no one else sees:
    `_same_file` catches that and it tries again on the new file."""

    def __init__(self, path: Path, kind: str, fd: int):
        self.path, self.kind, self.fd = path, kind, fd

    @classmethod
    def acquire(cls, folder: str | Path, kind: str) -> "OutputFolder":
        folder = Path(folder)
        lock = folder / LOCK
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise DlxError(f"this folder is being written by another dlx process ({holder}); wait for it to "
                               "finish, or use another folder. Nothing was changed.", file=folder) from None
            except OSError as exc:  # a file system without locks (ENOLCK)
                os.close(fd)
                raise DlxError(f"this folder can't be locked ({exc.strerror}); choose a folder on a local disk.",
                               file=folder) from None
            if _same_file(fd, lock):
                break
            os.close(fd)  # its holder released it meanwhile: lock the new file instead
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode())
        except OSError:
            pass  # a full disk: the lock holds all the same, only its description is missing
        return cls(folder, kind, fd)

    def mark(self) -> None:
        write_marker(self.path, self.kind)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            (self.path / LOCK).unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self.fd)  # closing the last descriptor drops the flock
        self.fd = None

    def __enter__(self) -> "OutputFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "pid and host not yet recorded"


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def claim(folder: str | Path, kind: str) -> OutputFolder:
    """Lock `folder` as the output of a `kind` command (made if missing). Refused, untouched, if it holds anything
    but a `kind` folder (see `check`), or while another process writes it."""
    folder = Path(folder)
    check(folder, kind)  # before anything is written there, even the lock file
    ensure_writable(folder)
    held = OutputFolder.acquire(folder, kind)
    try:
        check(folder, kind)  # again, locked: a writer may have finished meanwhile
    except BaseException:
        held.release()
        raise
    return held


def write_marker(folder: str | Path, kind: str) -> None:
    """Say what `folder` is (atomically; skipped when it already says so)."""
    path = Path(folder) / MARKER
    try:
        if read_text(path, MAX_MARKER_BYTES, "a folder marker") == marker_text(kind):
            return
    except FileNotFoundError:
        pass
    with disk_full_refused(path):
        atomic_write_text(path, marker_text(kind))


def _bookkeeping(name: str) -> bool:
    """What a folder holds before a command wrote anything of value: dlx's own files, and provenance.json."""
    return _is_own(name) or name == PROVENANCE


def _unused(folder: Path, made: set) -> bool:
    """Whether `folder` holds only bookkeeping files and folders in `made` that are unused too."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    return all(_unused(Path(e.path), made) if e.is_dir(follow_symlinks=False) and Path(e.path) in made
               else e.is_file(follow_symlinks=False) and _bookkeeping(e.name) for e in entries)


def _remove(folder: Path, top: bool = True) -> None:
    """Delete the bookkeeping under `folder` (`_unused`), its sub-folders, and the top's lock last (release)."""
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            _remove(Path(entry.path), top=False)
        elif _bookkeeping(entry.name) and not (top and entry.name == LOCK):
            os.unlink(entry.path)
    if not top:
        os.rmdir(folder)


def discard_unused(made: list[Path]) -> None:
    """After a failed command, remove each folder it made (`made`: core.files.noting_made) that holds nothing of
    value, so no empty run folder is left behind. A folder inside a made folder that is kept stays with it (a
    failed search's trial folders), and so does any folder holding a file dlx didn't write; it is locked first,
    so a folder another process has taken up meanwhile is left alone."""
    made = set(made)
    for folder in sorted(made):
        if any(parent in made for parent in folder.parents) or not _unused(folder, made):
            continue
        try:
            held = OutputFolder.acquire(folder, "run")
        except DlxError:
            continue  # another dlx process writes it now
        with contextlib.suppress(OSError):
            with held:
                if not _unused(folder, made):
                    continue
                _remove(folder)
            folder.rmdir()  # after release took the lock file: fails, harmlessly, if another process made one
