"""Splits held as tensors on the training device and batched by indexing (no per-sample workers)."""
from __future__ import annotations

import numpy as np
import torch

from dlx.train.data import Splits
from dlx.train.data.order import batch_indices, epoch_order


class Normalise:
    """(x × scale − mean) / std per channel, as one fused multiply-add on the device."""

    def __init__(self, splits: Splits, device: torch.device, ndim: int):
        shape = (1, -1) + (1,) * (ndim - 2)
        std = torch.as_tensor(splits.std, device=device)
        self.gain = (splits.scale / std).view(shape)  # x * gain + offset == (x * scale - mean) / std
        self.offset = (-torch.as_tensor(splits.mean, device=device) / std).view(shape)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.offset, x.to(self.gain.dtype), self.gain)


class TensorData:
    """One split's raw values on a device; `batch()` normalises (and augments) only the rows it takes."""

    def __init__(self, splits: Splits, split: str, device: torch.device, seed: int = 0):
        self.x = torch.as_tensor(np.asarray(splits.x[split])).to(device)
        self.y = torch.as_tensor(splits.y[split]).to(device)
        self.seed = seed
        self.normalise = Normalise(splits, device, self.x.dim())

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        return self.normalise(self.x[index]), self.y[index]

    def batches(self, batch_size: int, generator: torch.Generator | None = None, augment=None, epoch: int = 0,
                shard: tuple[int, int] | None = None, indexed: bool = False):
        """Yield (x, y) batches, shuffled by `order.epoch_order(seed, epoch)` when a generator is given (the
        generator draws the augmentation); `shard`: this rank's share of each batch (order.batch_indices);
        `indexed`: (x, y, sample indices), for data kept per training image (train.distill's teacher outputs)."""
        order = epoch_order(len(self), self.seed, epoch).to(self.y.device) if generator is not None else None
        for index in batch_indices(len(self), batch_size, order, shard):
            x, y = self.take(index.to(self.y.device))
            if augment is not None and generator is not None:
                x = augment(x, generator)
            yield (x, y, index) if indexed else (x, y)


def make_augment(spec):
    """Random crop with zero padding and horizontal flip on a whole batch (vectorised), or None."""
    padding, flip = spec.random_crop_padding, spec.horizontal_flip
    if not padding and not flip:
        return None

    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        if padding:
            padded = torch.nn.functional.pad(x, (padding,) * 4)
            dy = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator).to(x.device)
            dx = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator).to(x.device)
            rows = (torch.arange(h, device=x.device) + dy)[:, None, :, None]
            cols = (torch.arange(w, device=x.device) + dx)[:, None, None, :]
            batch = torch.arange(n, device=x.device)[:, None, None, None]
            channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[batch, channel, rows, cols]
        if flip:
            mask = (torch.rand(n, generator=generator) < 0.5).to(x.device)[:, None, None, None]
            x = torch.where(mask, x.flip(3), x)
        return x

    return augment
