"""Each member's class probabilities on the shared validation and test data, cached in its run
folder as `predictions/<sha256[:16]>.npz` (keyed by the checkpoint's hash; read with allow_pickle=False)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from dlx.ensemble.members import Member
from dlx.core.files import atomic_write
from dlx.train.data.access import ScaledInputs
from dlx.train.evaluate import SPLITS, load_run_model


def cache_path(member: Member) -> Path:
    return member.run_dir / "predictions" / f"{member.sha256[:16]}.npz"


def load_model(member: Member, device="cpu"):
    model, _, _ = load_run_model(member.run_dir, device)
    return model.to(memory_format=torch.channels_last)  # as training ran it: oneDNN/cuDNN's faster layout


@torch.inference_mode()
def member_log_probs(member: Member, unit_x, model=None, device="cpu", batch_size: int = 1024) -> np.ndarray:
    """Log-probabilities (N, classes) for inputs scaled to [0, 1] (an array or ScaledInputs), normalised with
    the member's own mean/std."""
    model = model if model is not None else load_model(member, device)
    shape = (1, -1) + (1,) * (unit_x.ndim - 2)
    mean = torch.as_tensor(member.record["mean"], dtype=torch.float32, device=device).view(shape)
    std = torch.as_tensor(member.record["std"], dtype=torch.float32, device=device).view(shape)
    outputs = []
    for start in range(0, len(unit_x), batch_size):
        x = torch.as_tensor(unit_x[start:start + batch_size], dtype=torch.float32, device=device)
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        outputs.append(torch.log_softmax(model((x - mean) / std).float(), dim=1).cpu())
    classes = len(member.record["class_names"])
    return torch.cat(outputs).numpy() if outputs else np.zeros((0, classes), np.float32)


def _read_cache(path: Path, sizes: dict[str, int], classes: int) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as archive:
            result = {s: archive[s] for s in SPLITS}
    except (OSError, ValueError, KeyError, EOFError):
        return None  # missing or corrupt: recompute
    if any(result[s].shape != (sizes[s], classes) or not np.isfinite(result[s]).all() for s in SPLITS):
        return None
    return result


def _write_cache(path: Path, arrays: dict) -> None:
    try:
        path.parent.mkdir(exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
    except OSError:
        pass  # a read-only run folder only costs the cache


def cached_log_probs(member: Member, unit: dict[str, ScaledInputs], device="cpu") -> tuple[dict, bool]:
    """({split: log-probabilities}, cache_hit) for the val and test inputs in `unit`."""
    sizes = {s: len(unit[s]) for s in SPLITS}
    classes = len(member.record["class_names"])
    path = cache_path(member)
    cached = _read_cache(path, sizes, classes)
    if cached is not None:
        return cached, True
    model = load_model(member, device)
    result = {s: member_log_probs(member, unit[s], model, device).astype(np.float32) for s in SPLITS}
    _write_cache(path, result)
    return result, False
