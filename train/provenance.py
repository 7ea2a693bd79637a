"""provenance.json: how an output folder (run, search, ensemble) was made, so a result can be reproduced.

Each command that writes the folder appends one session: the command line, dlx's version, the git commit (and
whether the working tree had changes) of the folder the spec came from, Python and the package versions that
change results, host, device, start and end times, the data fingerprint and the seed. `dlx train --resume` adds
a session; earlier ones are never rewritten. Reading versions costs no imports (importlib.metadata)."""
from __future__ import annotations

import fcntl
import os
import platform
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Iterator, Optional

from dlx.core.errors import DlxError
from dlx.core.files import atomic_write_json
from dlx.core.reading import load_json
from dlx.train.rundir import disk_full_refused

FILE = "provenance.json"
FORMAT = 1
PACKAGES = ("torch", "torchvision", "optuna", "numpy", "scikit-learn", "mlflow")
HINT = " Restore it, or move it away: a new one is started."


def _version(package: str) -> Optional[str]:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(folder: Path, *args: str) -> Optional[str]:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(folder: str | Path) -> Optional[dict]:
    """The commit checked out where `folder` lies and whether tracked files differ from it; None outside git."""
    folder = Path(folder)
    folder = folder if folder.is_dir() else folder.parent
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return None
    changes = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(changes) if changes is not None else None,
            "root": _git(folder, "rev-parse", "--show-toplevel")}


def accelerator_versions() -> dict:
    """CUDA and cuDNN versions torch was built with, when torch is loaded and CUDA is present (never imports it)."""
    torch = sys.modules.get("torch")
    if torch is None or not getattr(torch.version, "cuda", None) or not torch.cuda.is_available():
        return {"cuda": None, "cudnn": None}
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"cuda": torch.version.cuda, "cudnn": cudnn}


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def new_session(spec_file: Optional[str | Path] = None, seed: Optional[int] = None) -> dict:
    """What is known of this process before any work: command, code, versions, host, start time."""
    origin = Path(spec_file) if spec_file is not None else Path.cwd()
    return {"command": list(sys.argv), "cwd": os.getcwd(),
            "spec_file": str(Path(spec_file).resolve()) if spec_file is not None else None,
            "dlx_version": _version("dlx"), "git": git_state(origin), "python": platform.python_version(),
            "packages": {name: _version(name) for name in PACKAGES}, **accelerator_versions(),
            "host": socket.gethostname(), "pid": os.getpid(), "device": None, "seed": seed,
            "data_fingerprint": None, "started": stamp(), "ended": None, "status": "running"}


def read_provenance(folder: str | Path) -> Optional[dict]:
    """A folder's provenance.json ({"format", "kind", "sessions": [...]}), checked; None when there is none."""
    path = Path(folder) / FILE
    try:
        data = load_json(path)
    except FileNotFoundError:
        return None
    except DlxError as exc:
        raise DlxError(exc.message + HINT, file=path) from None
    sessions = data.get("sessions") if isinstance(data, dict) else None
    if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
        raise DlxError(f"expected an object with a list of sessions; the file is damaged.{HINT}", file=path,
                       key="sessions")
    return data


def latest_session(folder: str | Path) -> dict:
    """The newest session in a folder's provenance.json ({} when it has none)."""
    data = read_provenance(folder)
    return data["sessions"][-1] if data and data["sessions"] else {}


class Provenance:
    """The session this process appends to a folder's provenance.json; `update` and `end` rewrite it atomically."""

    def __init__(self, folder: str | Path, kind: str, session: dict):
        self.path = Path(folder) / FILE
        self.kind, self.session, self.sessions = kind, session, [session]
        self._write()

    def previous(self) -> list[dict]:
        """The sessions before this one (a resumed run's)."""
        mine = _key(self.session)
        return self.sessions[:next(i for i, s in enumerate(self.sessions) if _key(s) == mine)]

    def update(self, **fields) -> None:
        self.session.update(fields)
        self._write()

    def end(self, status: str) -> None:
        self.update(ended=stamp(), status=status)

    def _write(self) -> None:
        """Re-read and write under a lock on the folder, so processes sharing it (a search's workers, machines
        joining one search) each keep their own session and never drop another's."""
        with _folder_lock(self.path.parent):
            earlier = read_provenance(self.path.parent)
            on_disk = earlier["sessions"] if earlier else self.sessions[:-1]
            mine = _key(self.session)
            others = [s for s in on_disk if _key(s) != mine]
            at = next((i for i, s in enumerate(on_disk) if _key(s) == mine), len(others))
            self.sessions = others[:at] + [self.session] + others[at:]
            with disk_full_refused(self.path):
                atomic_write_json(self.path, {"format": FORMAT, "kind": self.kind, "sessions": self.sessions})


def _key(session: dict) -> tuple:
    return session.get("host"), session.get("pid"), session.get("started")


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive flock on the folder itself (its inode stays while provenance.json is replaced)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def recorded(folder: str | Path, kind: str, spec_file: Optional[str | Path] = None,
             seed: Optional[int] = None) -> Iterator[Provenance]:
    """Append a session to `folder`'s provenance.json for the duration of the block, ended with its outcome:
    finished, interrupted (Ctrl-C) or failed."""
    record = Provenance(folder, kind, new_session(spec_file, seed))
    try:
        yield record
    except KeyboardInterrupt:
        _end_keeping_the_error(record, "interrupted")
        raise
    except BaseException:
        _end_keeping_the_error(record, "failed")
        raise
    record.end("finished")


def _end_keeping_the_error(record: Provenance, status: str) -> None:
    """End the session on the way out of a failure; if that write fails too (the disk that stopped the command is
    full), the error that stopped it is the one to tell."""
    try:
        record.end(status)
    except DlxError:
        pass
