"""The checkpoint format: only tensors and plain Python values, so `torch.load(weights_only=True)`
reads it; written atomically (temporary file, fsync, rename) so a kill never leaves half a file."""
from __future__ import annotations

import json
import math
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

from spec.errors import DlxError

FORMAT = "dlx-checkpoint-1"


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


def atomic_write(path: str | Path, write) -> None:
    """Call write(file_object) on a temporary file beside `path`, fsync it, then rename over `path`."""
    path = Path(path)
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
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


def save_checkpoint(path: str | Path, state: dict) -> None:
    try:
        atomic_write(path, lambda handle: torch.save({"format": FORMAT, **state}, handle))
    except OSError as exc:
        raise DlxError(f"could not write the checkpoint ({exc.strerror}); the previous checkpoint is intact.",
                       file=path) from None


def _unpickling_reason(exc: Exception) -> str:
    """The line of torch's weights-only refusal that names what was refused (its first line is boilerplate)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (named or lines or ["unsupported content"])[0][:200]


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load with weights_only=True: a checkpoint carrying code is refused, and the code never runs."""
    path = Path(path)
    if not path.is_file():
        raise DlxError("checkpoint not found.", file=path)
    if not zipfile.is_zipfile(path):  # torch.save always writes a zip archive
        raise DlxError(f"the checkpoint is corrupt or truncated (not a torch.save archive, {path.stat().st_size} "
                       "bytes); restore it or start a new run.", file=path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise DlxError(f"refusing to load this checkpoint: it holds something other than tensors and plain values "
                       f"({_unpickling_reason(exc)}). dlx never unpickles code.", file=path) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DlxError(f"the checkpoint is corrupt or truncated ({first[:200]}); restore it or start a new run.",
                       file=path) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DlxError(f"not a dlx checkpoint (expected format '{FORMAT}').", file=path)
    _check_finite_weights(state.get("model"), path)
    return state


def _check_finite_weights(weights, path: Path) -> None:
    """Training stops at the first non-finite loss, so NaN or inf weights mean a damaged or tampered file; a model
    built from them would print `nan` probabilities as if they were predictions."""
    if not isinstance(weights, dict):
        return
    for name, tensor in weights.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise DlxError(f"the weights '{name}' hold NaN or infinite values; this checkpoint is damaged. Restore it "
                           "or train the model again.", file=path)
