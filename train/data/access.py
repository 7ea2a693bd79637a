"""One split as the training loop reads it: tensors on the device, or streamed from disk (data.cache)."""
from __future__ import annotations

import torch

from train.data import Splits
from train.data.lazy import is_lazy
from train.data.tensors import TensorData


def open_split(splits: Splits, split: str, device: torch.device, seed: int = 0):
    """`TensorData` for data decoded into memory, `StreamData` for data left on disk; both batch alike."""
    if is_lazy(splits.x[split]):
        from train.data.stream import StreamData  # DataLoader machinery only when streaming
        return StreamData(splits, split, device, seed, splits.workers)
    return TensorData(splits, split, device, seed)
