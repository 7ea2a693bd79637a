"""The checkpoint format: only tensors and plain Python values, so `torch.load(weights_only=True)`
reads it; written atomically (temporary file, fsync, rename) so a kill never leaves half a file."""
from __future__ import annotations

import math
import pickle
import zipfile
from pathlib import Path

import torch

from dlx.core.diskfull import full_disk_error, is_torch_write_failure
from dlx.core.errors import DlxError
from dlx.core.files import atomic_write
from dlx.core.reading import MAX_CHECKPOINT_BYTES, check_regular

FORMAT = "dlx-checkpoint-1"
INTACT = "the previous checkpoint is intact (dlx train --resume continues from it)"


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write atomically; a failed write (a full disk, however torch reports it) leaves the previous file."""
    try:
        atomic_write(path, lambda handle: torch.save({"format": FORMAT, **state}, handle))
    except (OSError, RuntimeError) as exc:
        full = full_disk_error(exc, path, "the checkpoint", INTACT)
        if full is not None:
            raise full from None
        if isinstance(exc, OSError):
            raise DlxError(f"could not write the checkpoint ({exc.strerror}); {INTACT}.", file=path) from None
        if is_torch_write_failure(exc):
            first = (str(exc).strip().splitlines() or ["write failed"])[0][:200]
            raise DlxError(f"could not write the checkpoint ({first}); {INTACT}.", file=path) from None
        raise


def _unpickling_reason(exc: Exception) -> str:
    """The line of torch's weights-only refusal that names what was refused (its first line is boilerplate)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (named or lines or ["unsupported content"])[0][:200]


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load with weights_only=True: a checkpoint carrying code is refused, and the code never runs."""
    path = Path(path)
    try:
        check_regular(path, MAX_CHECKPOINT_BYTES, "a checkpoint")  # a FIFO blocks torch.load, a device fills memory
    except FileNotFoundError:
        raise DlxError("checkpoint not found.", file=path) from None
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
