"""`data.cache`: whether a dataset is decoded into memory or streamed from disk, and why.

`auto` decodes into memory when every split's decoded bytes fit `data.memory_budget` and streams otherwise.
Only data read lazily (image folders, memory-mapped arrays) can stream; the other formats are read whole."""
from __future__ import annotations

import os
from dataclasses import dataclass

from dlx.experiment.schema import budget_bytes
from dlx.train.data.lazy import is_lazy


@dataclass(frozen=True)
class CacheChoice:
    mode: str  # "memory" or "stream"
    reason: str  # one line, printed at the start of training
    decoded_bytes: int
    budget_bytes: int

    def record(self) -> dict:
        return {"mode": self.mode, "reason": self.reason, "decoded_bytes": self.decoded_bytes,
                "budget_bytes": self.budget_bytes}


def ram_bytes() -> int:
    """The machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def choose_cache(data, arrays: list) -> CacheChoice:
    """Memory or stream for `data` (a DataSpec) whose samples are `arrays` (numpy or lazy, None skipped)."""
    arrays = [x for x in arrays if x is not None]
    decoded = sum(int(x.nbytes) for x in arrays)
    budget = budget_bytes(data.memory_budget, ram_bytes())
    size = f"{decoded / 2**20:,.1f} MiB decoded"
    if not any(is_lazy(x) for x in arrays):
        why = " (this format is read whole)" if data.cache == "stream" else ""
        return CacheChoice("memory", f"in memory{why}: {size}", decoded, budget)
    if data.cache != "auto":
        return CacheChoice(data.cache, f"{data.cache} (data.cache: {data.cache}): {size}", decoded, budget)
    fits = decoded <= budget
    mode = "memory" if fits else "stream"
    relation = "fit within" if fits else "exceed"
    return CacheChoice(mode, f"{mode} (data.cache: auto): {size} {relation} data.memory_budget "
                             f"{budget / 2**20:,.1f} MiB", decoded, budget)


def default_workers() -> int:
    """Decoding processes when data.workers is not set: the cores but one (for the training process), at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores - 1))
