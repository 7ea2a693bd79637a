"""Splits streamed from disk: a torch DataLoader whose worker processes decode samples one at a time.

Batches follow train.data.order, as in-memory batches do, and leave the workers as raw values (uint8 images,
or the array's own dtype); normalisation and augmentation run per batch on the device, exactly as in
`TensorData`, so a streamed run computes on identical tensors."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from dlx.train.data import Splits
from dlx.train.data.loader import SampleLoader, release_freed_memory
from dlx.train.data.order import batch_indices, epoch_order
from dlx.train.data.tensors import Normalise



class StreamData:
    """One split read from disk batch by batch; the same interface as `TensorData` (`batches`, `take`, `y`)."""

    def __init__(self, splits: Splits, split: str, device: torch.device, seed: int = 0,
                 workers: Optional[int] = None):
        self.x, self.seed, self.device = splits.x[split], seed, torch.device(device)
        self.y = torch.as_tensor(splits.y[split]).to(device)
        self.normalise = Normalise(splits, device, len(self.x.shape))
        self.samples = SampleLoader(self.x, workers, pin=self.device.type == "cuda")

    def __len__(self) -> int:
        return len(self.y)

    def _raw(self, batches: list[torch.Tensor]):
        """Each batch's (index, raw values on the device). Batches are big allocations that glibc hands back to
        the system as soon as they are freed (loader.return_big_buffers_at_once); what small ones leave in the
        heap is trimmed once a pass."""
        for index, raw in zip(batches, self.samples.read(batches)):
            yield index, raw.to(self.device, non_blocking=True)
        if self.device.type == "cpu":
            release_freed_memory()

    def take(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows at `index`, normalised (split over the workers, so they decode in parallel)."""
        index = torch.as_tensor(index).cpu()
        parts = list(index.chunk(max(1, self.samples.workers)))
        x = torch.cat([raw for _, raw in self._raw(parts)]) if len(index) else self._raw_empty()
        return self.normalise(x), self.y[index.to(self.y.device)]

    def _raw_empty(self) -> torch.Tensor:
        return torch.zeros((0, *self.x.shape[1:]), dtype=torch.from_numpy(np.zeros(0, self.x.dtype)).dtype,
                           device=self.device)

    def batches(self, batch_size: int, generator: torch.Generator | None = None, augment=None,
                epoch: int = 0, shard: tuple[int, int] | None = None, indexed: bool = False):
        """Yield (x, y) batches, shuffled by `order.epoch_order(seed, epoch)` when a generator is given (the
        generator draws the augmentation); `shard`: this rank's share of each batch (order.batch_indices), so
        a rank decodes only the images it trains on."""
        order = epoch_order(len(self), self.seed, epoch) if generator is not None else None
        for index, raw in self._raw(list(batch_indices(len(self), batch_size, order, shard))):
            x = self.normalise(raw)
            if augment is not None and generator is not None:
                x = augment(x, generator)
            y = self.y[index.to(self.y.device)]
            yield (x, y, index) if indexed else (x, y)
