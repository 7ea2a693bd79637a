"""What a hostile folder puts where dlx expects one of its own files: bytes, a FIFO, a link to a device, or a
sparse file over the size limit (damaged copies of the `finished_run` fixture, tests/reliability/conftest.py)."""
from __future__ import annotations

import os
from pathlib import Path

from dlx.core.reading import MAX_JSON_BYTES

DEEP = b"[" * 100_000 + b"]" * 100_000
NAMED = {"fifo": ("fifo", None), "zero": ("link", "/dev/zero"), "urandom": ("link", "/dev/urandom"),
         "deep": ("bytes", DEEP), "huge": ("huge", None)}


def put(path: Path, stand_in: tuple | str) -> None:
    """Replace `path` with `stand_in`: (kind, payload), or one of the NAMED ones."""
    kind, payload = NAMED[stand_in] if isinstance(stand_in, str) else stand_in
    path.unlink(missing_ok=True)
    if kind == "bytes":
        path.write_bytes(payload)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "link":
        path.symlink_to(payload)
    elif kind == "huge":  # sparse: over the limit, costs no space
        with path.open("wb") as handle:
            handle.truncate(MAX_JSON_BYTES + 1)
    else:
        raise ValueError(kind)
