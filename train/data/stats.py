"""Per-channel mean and std of the training split (and its value range) in one streaming pass.

The data is read in chunks of CHUNK samples, whether it lies in memory or on disk, so both give the same
numbers: 8- and 16-bit integers are summed exactly (int64), other types in float64 around a shift (the
first chunk's mean) that keeps the variance free of cancellation. Every training sample is read once; no
sample is skipped, so a streamed run normalises exactly as an in-memory run of the same data."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

CHUNK = 1024  # samples per chunk


@dataclass
class Stats:
    mean: np.ndarray  # float32 per channel (per feature for flat data), of values × scale
    std: np.ndarray
    low: float  # the raw values' minimum and maximum
    high: float


def _axes(x: np.ndarray) -> tuple:
    return (0,) + tuple(range(2, x.ndim)) if x.ndim > 2 else (0,)


def channel_stats(chunks: Iterable[np.ndarray], scale: float) -> Optional[Stats]:
    """Statistics over all chunks (None when there are no samples)."""
    total = squares = shift = None
    count, lows, highs = 0, [], []
    for chunk in chunks:
        if not len(chunk):
            continue
        axes = _axes(chunk)
        exact = chunk.dtype.kind in "biu" and chunk.dtype.itemsize <= 2
        if shift is None:
            shift = 0 if exact else chunk.astype(np.float64).mean(axis=axes, keepdims=True)
            total = squares = 0
        with np.errstate(invalid="ignore", over="ignore"):  # inf in the data: NaN statistics, a NaN loss later
            sums, sums_of_squares = (_exact_sums if exact else _shifted_sums)(chunk, axes, shift)
        total, squares = total + sums, squares + sums_of_squares
        count += chunk.size // np.prod([chunk.shape[a] for a in range(chunk.ndim) if a not in axes])
        lows.append(chunk.min())
        highs.append(chunk.max())
    if shift is None:
        return None
    with np.errstate(invalid="ignore", over="ignore"):  # inf in the data: NaN statistics, reported as a NaN loss
        centred_mean = np.asarray(total, np.float64) / count
        variance = np.maximum(np.asarray(squares, np.float64) / count - centred_mean ** 2, 0.0)
        mean = (centred_mean + np.reshape(shift, -1).astype(np.float64)) * scale
        std = np.sqrt(variance) * scale
    return Stats(mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32),
                 float(np.min(lows)), float(np.max(highs)))


def _exact_sums(chunk: np.ndarray, axes: tuple, shift) -> tuple[np.ndarray, np.ndarray]:
    """Integer sums without a 64-bit copy of the chunk (numpy casts in small buffers while it reduces)."""
    wide = np.int32 if chunk.dtype.kind == "i" else (np.uint32 if chunk.dtype.itemsize == 2 else np.uint16)
    return chunk.sum(axis=axes, dtype=np.int64), np.multiply(chunk, chunk, dtype=wide).sum(axis=axes, dtype=np.int64)


def _shifted_sums(chunk: np.ndarray, axes: tuple, shift) -> tuple[np.ndarray, np.ndarray]:
    centred = chunk.astype(np.float64)
    centred -= shift
    sums = centred.sum(axis=axes)
    np.square(centred, out=centred)
    return sums, centred.sum(axis=axes)


def array_chunks(x: np.ndarray, size: int = CHUNK):
    for start in range(0, len(x), size):
        yield x[start:start + size]
