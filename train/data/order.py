"""The order of batches: one place, shared by in-memory and streamed data (and, later, by rank sharding).

The permutation of an epoch depends only on (seed, epoch), never on other random draws, so every process of a
run, a resumed run and a streamed run see the same batches as an in-memory run of the same spec."""
from __future__ import annotations

from typing import Iterator, Optional

import torch

ORDER_STREAM = 0x5EED_0D  # mixed into the seed: the order is its own random stream, not the model's init


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """A seeded permutation of range(n) for `epoch` (int64, on the CPU), the same on every process."""
    generator = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch) * 7_919 + ORDER_STREAM) % 2**63)
    return torch.randperm(n, generator=generator)


def batch_indices(n: int, batch_size: int, order: Optional[torch.Tensor] = None,
                  shard: Optional[tuple[int, int]] = None) -> Iterator[torch.Tensor]:
    """Each batch's index tensor: `order` cut into batches (shuffled training), or 0..n-1 in order (evaluation).
    A last batch of 1 is dropped when shuffling, since batch norm cannot train on a single sample.

    `shard=(rank, size)` (distributed training): `batch_size` is the global batch, and each batch's indices are
    this rank's contiguous share of it; a last batch too small to give every rank two samples is dropped."""
    index = order if order is not None else torch.arange(n)
    rank, size = shard or (0, 1)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if order is not None and stop - start < 2 * size and n > 1:
            break
        count = stop - start
        yield index[start + count * rank // size:start + count * (rank + 1) // size]


def batch_count(n: int, batch_size: int, shuffle: bool) -> int:
    """How many batches `batch_indices` yields."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 or (rest and (not shuffle or n == 1)) else 0)
