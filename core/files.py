"""Files that matter: written atomically (temporary file beside the target, fsync, rename) with the mode a
plain open() would give, so a kill never leaves half a file; JSON written strictly (no NaN tokens)."""
from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from dlx.core.reading import NotJson, load_json


_MADE: list[list[Path]] = []  # the folders made within each open `noting_made` block, innermost last


@contextmanager
def noting_made() -> Iterator[list[Path]]:
    """The folders this process makes within the block (`note_made`, `make_folder`), so that a command that fails
    can remove those it left holding nothing of value (train.outdir.discard_unused). Costs no imports."""
    made: list[Path] = []
    _MADE.append(made)
    try:
        yield made
    finally:
        _MADE.pop()


def note_made(folder: str | Path) -> None:
    """Record that this process just made `folder` (kept only inside a `noting_made` block)."""
    if _MADE:
        _MADE[-1].append(Path(os.path.abspath(folder)))


def make_folder(folder: str | Path) -> Path:
    """`mkdir -p folder`, noting each folder it made (`note_made`)."""
    folder = Path(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for made in reversed(missing):
        note_made(made)
    return folder


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    """The process's umask: from /proc on Linux (no race with other threads), else by setting it and back."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temporary_beside(path: Path) -> tuple[int, str]:
    """(fd, name) of a new temporary file beside `path`, with the mode a plain open() would give it (0666 less
    the umask), not mkstemp's 0600: colleagues on a shared machine must be able to read the files."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


_NOT_REGULAR = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def refuse_unless_replaceable(path: str | Path) -> None:
    """A rename over `path` would replace a link, device or pipe itself (not write through it): only a regular
    file, or nothing, may stand where dlx writes."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError:
        return  # unreadable: the write itself says why
    if not stat.S_ISREG(mode):
        what = next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")
        from dlx.core.errors import DlxError
        raise DlxError(f"this is {what}; dlx writes only regular files and left it unchanged. Give a path to a "
                       "regular file or a new one.", file=path)


def atomic_write(path: str | Path, write) -> None:
    """Call write(file_object) on a temporary file beside `path`, fsync it, then rename over `path`; refused when
    something other than a regular file stands at `path` (refuse_unless_replaceable)."""
    path = Path(path)
    refuse_unless_replaceable(path)
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        refuse_unless_replaceable(path)  # again: it may have appeared while the file was written
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _finite_or_none(value):
    """NaN and ±inf have no JSON spelling (Python writes `NaN`, which strict readers refuse): a metric that
    could not be computed is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def strict_json(data, **kwargs) -> str:
    """json.dumps that never writes NaN/Infinity tokens: non-finite numbers become null."""
    return json.dumps(_finite_or_none(data), allow_nan=False, **kwargs)


def atomic_write_json(path: str | Path, data) -> None:
    atomic_write_text(path, strict_json(data, indent=2) + "\n")


def read_json(path: str | Path, default=None):
    """The JSON in `path`, or `default` when the file is missing or not valid JSON (callers that must refuse damage
    validate what they read instead). Read bounded (core.reading): a pipe, a device, a file over the size limit or
    JSON nested too deep is a DlxError naming the file, never a hang or a memory blow-up."""
    try:
        return load_json(path)
    except (FileNotFoundError, NotJson):
        return default
