"""Worker processes that decode samples of a lazy array one at a time and return them in batches, in the order
given: the machinery under streamed splits (train.data.stream) and the streaming statistics pass."""
from __future__ import annotations

import ctypes
from typing import Iterable, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from dlx.core.errors import DlxError
from dlx.train.data.cache import default_workers
from dlx.train.data.lazy import LazyArray
from dlx.train.data.order import batch_indices

PREFETCH = 4  # batches each worker decodes ahead


def _glibc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, macOS): nothing to trim
        return None


LIBC = _glibc()
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 1 << 20


def return_big_buffers_at_once() -> None:
    """Serve allocations of 1 MiB and more (batches) from their own mappings, unmapped as soon as they are freed.
    glibc otherwise raises this threshold as big blocks are freed, and then keeps freed batches in the heap."""
    if LIBC is not None:
        LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release_freed_memory() -> None:
    """Give the heap's free pages back to the system, once a pass: the small buffers of the workers' messages
    leave holes there that glibc would keep (batches themselves are unmapped at once: return_big_buffers_at_once)."""
    if LIBC is not None:
        LIBC.malloc_trim(0)


class _Failure(tuple):
    """A user error raised in a worker, carried back whole so the main process raises it as one paragraph."""


class _Samples(Dataset):
    def __init__(self, x: LazyArray):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, position: int):
        try:
            return torch.from_numpy(np.ascontiguousarray(self.x[position]))  # PIL's arrays are read-only
        except DlxError as exc:
            return _Failure((exc.message, str(exc.file) if exc.file else None, exc.key))


def _collate(items: list):
    """The batch, stacked straight into shared memory (default_collate does that in a worker), or its failure."""
    failed = [item for item in items if isinstance(item, _Failure)]
    return failed[0] if failed else default_collate(items)


class _Batches(Sampler):
    """The index batches of the next pass: set before each `iter(loader)` (the sampler lives in the main process,
    so persistent workers need not restart)."""

    def __init__(self):
        self.batches: list = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class SampleLoader:
    """Decodes batches of a lazy array in `workers` processes (persistent, pinned memory on CUDA)."""

    def __init__(self, x: LazyArray, workers: Optional[int] = None, pin: bool = False):
        self.workers = default_workers() if workers is None else workers
        self.x = x
        return_big_buffers_at_once()
        self.sampler = _Batches()
        extra = {"persistent_workers": True, "prefetch_factor": PREFETCH} if self.workers else {}
        self.loader = DataLoader(_Samples(x), batch_sampler=self.sampler, num_workers=self.workers,
                                 collate_fn=_collate, pin_memory=pin, **extra)

    def read(self, batches: Iterable[torch.Tensor]):
        """Yield each batch's raw values, in order; the file is checked before each pass, and again when a worker
        dies (SIGBUS: a memory-mapped file cut short under it), so that a changed file is named as such."""
        self.x.check_unchanged()
        self.sampler.batches = [b.tolist() for b in batches]
        try:
            for raw in self.loader:
                if isinstance(raw, _Failure):
                    message, file, key = raw
                    raise DlxError(message, file=file, key=key)
                yield raw
        except RuntimeError:
            self.x.check_unchanged()
            raise


def raw_chunks(x: LazyArray, size: int, workers: Optional[int] = None):
    """The samples of `x` in order, `size` at a time, as numpy arrays (decoded in worker processes)."""
    loader = SampleLoader(x, workers)
    for raw in loader.read(batch_indices(len(x), size)):
        yield raw.numpy()
