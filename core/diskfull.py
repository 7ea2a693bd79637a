"""Recognising a full disk behind a failed write, however it surfaces: an OSError with ENOSPC (or EDQUOT, a full
quota) from Python's own writes, or the RuntimeError that torch.save's zip writer raises in its place, whose text
names no errno ("PytorchStreamWriter failed writing file ...", "file write failed", "unexpected pos ...") and
whose context may hold the OSError that the file object raised."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Optional

from dlx.core.errors import DlxError

FULL = (errno.ENOSPC, errno.EDQUOT)
TORCH_WRITER = ("pytorchstreamwriter failed writing", "file write failed", "unexpected pos")
NEARLY_FULL_BYTES = 1 << 20  # free space below this, after a write failed, means the write found the disk full


def _chain(exc: BaseException):
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _free_bytes(path: Path) -> Optional[int]:
    folder = path if path.is_dir() else path.parent
    try:
        info = os.statvfs(folder)
    except OSError:
        return None
    return info.f_bavail * info.f_frsize


def is_torch_write_failure(exc: BaseException) -> bool:
    """Whether `exc` is torch.save's zip writer failing to write (which hides the errno)."""
    return isinstance(exc, RuntimeError) and any(text in str(exc).lower() for text in TORCH_WRITER)


def full_disk_reason(exc: BaseException, path: str | Path) -> Optional[str]:
    """The system's words for a full disk ('No space left on device') if `exc`, raised while writing `path`, means
    the disk (or the quota) is full; else None."""
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno in FULL:
            return link.strerror or os.strerror(link.errno)
    if is_torch_write_failure(exc):
        free = _free_bytes(Path(path))
        if free is not None and free < NEARLY_FULL_BYTES:
            return os.strerror(errno.ENOSPC)
    return None


def full_disk_error(exc: BaseException, path: str | Path, what: str, after: str = "") -> Optional[DlxError]:
    """A DlxError saying the disk is full while writing `what` to `path` (then `after`), or None if it is not."""
    reason = full_disk_reason(exc, path)
    if reason is None:
        return None
    return DlxError(f"could not write {what}: the disk is full ({reason}){after and '; ' + after}. Free some space "
                    "and run the command again.", file=path)
