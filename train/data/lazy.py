"""Samples read one at a time instead of all at once: a list of image files, or a memory-mapped array.

`LazyArray` behaves enough like a numpy array for the split code (len, shape, dtype, indexing by an index array
gives a lazy subset, an integer gives one decoded sample), so the same code carves splits from data in memory
and data on disk. `np.asarray(lazy)` decodes it whole: only where the data was chosen to fit in memory."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

import numpy as np

from dlx.core.errors import DlxError
import dlx.train.data.formats as formats

SAMPLED_FILES = 16  # files whose first bytes enter a folder's fingerprint, evenly spread over the listing
SAMPLED_BYTES = 65536


class ImageFiles:
    """Image files decoded one by one to uint8 (C, H, W), resized to `size` when given."""

    def __init__(self, files: list[Path], size: Optional[tuple], grayscale: bool, root: Path):
        self.root, self.grayscale = Path(root), grayscale
        self.names = [file.relative_to(self.root).as_posix() for file in files]  # str: a third of a Path's memory
        self.fixed_size = size is not None
        self.size = tuple(size) if size is not None else self._first_size()
        self.item_shape = (1 if grayscale else 3, *self.size)
        self.dtype = np.dtype(np.uint8)

    def _first_size(self) -> tuple:
        if not self.names:
            return (0, 0)
        with formats.open_image(self.root / self.names[0]) as image:
            return (image.size[1], image.size[0])

    def read(self, i: int) -> np.ndarray:
        file = self.root / self.names[i]
        image = formats.read_image(file, self.size if self.fixed_size else None, self.grayscale)
        if image.shape[1:] != self.size:
            raise DlxError(f"image is {image.shape[2]}x{image.shape[1]} but earlier ones are "
                                   f"{self.size[1]}x{self.size[0]}; set data.image_size to resize them all.",
                                   file=file, key="data.image_size")
        return image

    def __len__(self) -> int:
        return len(self.names)

    def relative(self, index: np.ndarray) -> list[str]:
        return [self.names[i] for i in index]

    def fingerprint(self, index: np.ndarray) -> str:
        """Names (relative to the data root), sizes and mtimes of every file, plus the first bytes of a few:
        cheap for 100,000 files, and any renamed, added, removed or rewritten file changes it."""
        digest = hashlib.sha256(repr(self.item_shape).encode())
        for i in index:
            stat = os.stat(self.root / self.names[i])
            digest.update(f"{self.names[i]}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        sampled = np.linspace(0, len(index) - 1, min(len(index), SAMPLED_FILES)).astype(int) if len(index) else []
        for i in index[sampled]:
            with open(self.root / self.names[i], "rb") as handle:
                digest.update(handle.read(SAMPLED_BYTES))
        return digest.hexdigest()[:16]


class MappedArray:
    """A memory-mapped array (an .npy file, or a stored member of an .npz), read a sample at a time and made
    channels-first per sample; pickles as its path, so worker processes map it themselves."""

    def __init__(self, path: Path, offset: int, dtype, shape: tuple, layout: str):
        self.path, self.offset, self.dtype, self.shape, self.layout = Path(path), offset, np.dtype(dtype), shape, layout
        tail = shape[1:]
        self.item_shape = {"last": (tail[-1], *tail[:-1]) if len(tail) == 3 else tail,
                           "add": (1, *tail)}.get(layout, tail)
        self.file_size = os.stat(self.path).st_size  # what check_size holds the file to
        self._array = None

    def check_size(self) -> None:
        """Refuse to read on from a file whose size changed since it was opened: past the end of a file cut short,
        a mapping reads zeros, or kills the process with SIGBUS."""
        try:
            now = os.stat(self.path).st_size
        except OSError as exc:
            raise DlxError(f"the data file can no longer be read ({exc.strerror}) during training.", file=self.path,
                           key="data.path") from None
        if now != self.file_size:
            raise DlxError(f"the file changed size during training ({self.file_size} bytes when it was opened, "
                           f"{now} now); a data file must not be rewritten or cut short while a run reads it. Restore "
                           "it, then resume the run (dlx train --resume).", file=self.path, key="data.path")

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.memmap(self.path, self.dtype, "r", self.offset, self.shape)
        return self._array

    def __getstate__(self):
        return {**self.__dict__, "_array": None}

    def _first(self, rows: np.ndarray) -> np.ndarray:
        if self.layout == "last":
            return np.ascontiguousarray(np.moveaxis(rows, -1, 1))
        return rows[:, None] if self.layout == "add" else rows

    def read(self, i: int) -> np.ndarray:
        return self._first(np.array(self.array[i:i + 1]))[0]  # a copy: the mapped pages stay the kernel's

    def read_many(self, index: np.ndarray) -> np.ndarray:
        self.check_size()  # a stat a batch: cheap beside the rows it copies
        return self._first(np.asarray(self.array[index]))  # fancy indexing copies just these rows

    def __len__(self) -> int:
        return self.shape[0]


class LazyArray:
    """`reader`'s samples at positions `index` (all of them by default)."""

    def __init__(self, reader, index: Optional[np.ndarray] = None):
        self.reader = reader
        self.index = np.arange(len(reader)) if index is None else np.asarray(index, dtype=np.int64)
        self.dtype = reader.dtype
        self.value_range: Optional[tuple[float, float]] = None  # (min, max), set by the statistics pass

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple:
        return (len(self), *self.reader.item_shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.reader.read(int(self.index[key]))
        return LazyArray(self.reader, self.index[key])

    def read_many(self, positions) -> np.ndarray:
        """The samples at `positions` (of this array), stacked."""
        index = self.index[np.asarray(positions, dtype=np.int64)]
        if hasattr(self.reader, "read_many"):
            return self.reader.read_many(index)
        if not len(index):
            return np.zeros((0, *self.reader.item_shape), self.dtype)
        return np.stack([self.reader.read(int(i)) for i in index])

    def chunks(self, size: int = 1024):
        """The samples in order, `size` at a time."""
        for start in range(0, len(self), size):
            yield self.read_many(np.arange(start, min(start + size, len(self))))

    def __array__(self, dtype=None, copy=None):
        whole = self.read_many(np.arange(len(self)))
        return whole.astype(dtype) if dtype is not None else whole

    def astype(self, dtype) -> np.ndarray:
        return np.asarray(self).astype(dtype)

    def reshape(self, *shape) -> np.ndarray:
        return np.asarray(self).reshape(*shape)  # decodes it whole: for checks of split-sized data only

    def _range(self) -> tuple[float, float]:
        if self.value_range is None:
            lows, highs = zip(*((chunk.min(), chunk.max()) for chunk in self.chunks())) if len(self) else ((0,), (0,))
            self.value_range = (float(np.min(lows)), float(np.max(highs)))
        return self.value_range

    def min(self) -> float:
        return self._range()[0]

    def max(self) -> float:
        return self._range()[1]

    def head(self, count: int) -> np.ndarray:
        return self.read_many(np.arange(min(len(self), count)))

    def check_unchanged(self) -> None:
        """Refuse a memory-mapped file that changed size since it was opened (image files are checked as decoded)."""
        if hasattr(self.reader, "check_size"):
            self.reader.check_size()

    def content_fingerprint(self) -> Optional[str]:
        """A fingerprint of the files (names, sizes, mtimes, sampled bytes), or None for an array."""
        return self.reader.fingerprint(self.index) if hasattr(self.reader, "fingerprint") else None

    def files(self) -> Optional[list[str]]:
        """Paths relative to the data root, for split.json (None for an array)."""
        return self.reader.relative(self.index) if hasattr(self.reader, "relative") else None


def is_lazy(x) -> bool:
    return isinstance(x, LazyArray)
