"""Real file-system faults for tests: a small tmpfs mounted in the test's folder (read-only, or filled until a
write meets ENOSPC). Mounting needs root; without it the test skips, or fails under CI (see tests/services.py)."""
from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from tests.services import require_service


@contextlib.contextmanager
def tmpfs(folder: Path, size: str, read_only: bool = False):
    """`folder` (created) as a tmpfs of `size` ("64k", "2m") for the block; unmounted after it."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    require_service(mounted.returncode == 0, f"can't mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill `disk` with one file until a write fails, then free `leave` bytes of it again; the file's path."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\1" * 4096)
        except OSError:
            pass
    if leave:
        with filler.open("r+b") as handle:
            handle.truncate(max(0, filler.stat().st_size - leave))
    return filler
