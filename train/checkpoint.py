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
    check_entries(state, path)
    _check_finite_weights(state.get("model"), path)
    return state


REQUIRED = {"model": dict, "spec": dict, "data": dict}  # every checkpoint dlx train writes has these


def check_entries(state: dict, path: Path) -> None:
    """The entries a checkpoint is used through (weights, spec, preprocessing record) are present and well
    typed: a damaged or hand-made checkpoint is refused here, naming the entry, not deep inside a model build."""
    for key, kind in REQUIRED.items():
        if not isinstance(state.get(key), kind):
            found = "missing" if key not in state else f"a {type(state[key]).__name__}, not a mapping"
            raise DlxError(f"the checkpoint's '{key}' entry is {found}; it is damaged or was not written by dlx "
                           "train.", file=path, key=key)
    problem = data_record_problem(state["data"])
    if problem:
        key, why = problem
        raise DlxError(f"{why}; the checkpoint is damaged or was not written by dlx train.", file=path,
                       key=f"data.{key}")


def _numbers(value, positive: bool = False) -> bool:
    """A non-empty list of finite numbers (> 0 when `positive`), as mean and std are stored."""
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 or not positive)
        for v in value)


def data_record_problem(record: dict) -> tuple[str, str] | None:
    """(key, why) for the first bad entry of a checkpoint's preprocessing record (train.run.data_record), or None."""
    shape = record.get("input_shape")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        return "input_shape", f"must be a list of 1 to 3 positive integers, but is {shape!r}"[:200]
    for key in ("mean", "std"):
        if not _numbers(record.get(key), positive=key == "std"):
            rule = "positive" if key == "std" else "finite"
            return key, f"must be a non-empty list of {rule} numbers, but is {record.get(key)!r}"[:200]
        if len(record[key]) not in (1, shape[0]):
            return key, f"must hold 1 or {shape[0]} values (one per channel), but holds {len(record[key])}"
    scale = record.get("scale")
    if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and 0 < scale < float("inf")):
        return "scale", f"must be a positive number, but is {scale!r}"[:200]
    names = record.get("class_names")
    if not (isinstance(names, list) and names and all(isinstance(n, (str, int)) for n in names)):
        return "class_names", f"must be a non-empty list of names, but is {names!r}"[:200]
    seen = record.get("input", {})
    if not isinstance(seen, (dict, type(None))):
        return "input", f"must be a mapping, but is {seen!r}"[:200]
    for key in ("min", "max"):
        value = (seen or {}).get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            return f"input.{key}", f"must be a number, but is {value!r}"[:200]
    if (seen or {}).get("dtype") is not None and not isinstance(seen["dtype"], str):
        return "input.dtype", f"must be a string, but is {seen['dtype']!r}"[:200]
    return None


def _check_finite_weights(weights, path: Path) -> None:
    """Training stops at the first non-finite loss, so NaN or inf weights mean a damaged or tampered file; a model
    built from them would print `nan` probabilities as if they were predictions."""
    if not isinstance(weights, dict):
        return
    for name, tensor in weights.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise DlxError(f"the weights '{name}' hold NaN or infinite values; this checkpoint is damaged. Restore it "
                           "or train the model again.", file=path)
