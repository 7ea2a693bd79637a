"""One split as the training loop reads it: tensors on the device, or streamed from disk (data.cache); or as
inputs scaled to [0, 1], read a slice at a time, for code outside the loop."""
from __future__ import annotations

import numpy as np
import torch

from dlx.train.data import Splits
from dlx.train.data.lazy import is_lazy
from dlx.train.data.tensors import TensorData


def open_split(splits: Splits, split: str, device: torch.device, seed: int = 0):
    """`TensorData` for data decoded into memory, `StreamData` for data left on disk; both batch alike."""
    if is_lazy(splits.x[split]):
        from dlx.train.data.stream import StreamData  # DataLoader machinery only when streaming
        return StreamData(splits, split, device, seed, splits.workers)
    return TensorData(splits, split, device, seed)


class ScaledInputs:
    """A split's inputs scaled to [0, 1], converted a slice at a time: a split streamed from disk (a lazy array of
    image files or a memory-mapped .npy) is decoded batch by batch, never whole, and never held as float32."""

    def __init__(self, x, scale: float):
        self.x, self.scale = x, np.float32(scale)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def ndim(self) -> int:
        return self.x.ndim

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self.x[key], dtype=np.float32) * self.scale
