"""Readers for the standard on-disk dataset formats, without executing code from the files.

MNIST-style IDX files (optionally .gz), CIFAR python pickle batches (through an unpickler that
only admits numpy arrays and plain containers), SVHN .mat files, image folders and .npz files.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import pickle
import stat
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from dlx.core.errors import DlxError
from dlx.core.lazy import lazy_module
from dlx.core.reading import file_kind

Image = lazy_module("PIL.Image")  # image folders and `dlx predict` only: keeps other start-ups light
ImageMode = lazy_module("PIL.ImageMode")
scipy_io = lazy_module("scipy.io")  # SVHN only

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


MAX_IDX_BYTES = 1 << 34  # 16 GiB: MNIST-like files are megabytes; a gzip bomb would decompress without end


def _read_idx_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed if .gz, reading no more than its header promises (plus one byte, to tell a
    file longer than promised): a small .gz can expand to terabytes."""
    regular_file_size(path, "IDX file", key="data.root")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        head = handle.read(4)
        ndim = head[3] if len(head) == 4 else 0
        head += handle.read(4 * ndim)
        if len(head) < 4 + 4 * ndim or ndim == 0:
            return head
        promised = int(np.prod(np.frombuffer(head, ">u4", ndim, 4).astype(np.int64)))
        if promised > MAX_IDX_BYTES:
            raise DlxError(f"the IDX header promises {promised} bytes of images, over the limit of {MAX_IDX_BYTES} "
                           "(MAX_IDX_BYTES); the file is damaged.", file=path)
        return head + handle.read(promised + 1)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format): magic 0x0000 + dtype byte + ndim byte, big-endian sizes, data."""
    try:
        raw = _read_idx_bytes(path)
    except (OSError, EOFError, zlib.error) as exc:
        raise DlxError(f"can't read this IDX file ({exc}); is the .gz file complete?", file=path) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DlxError("not an unsigned-byte IDX file (bad magic number).", file=path)
    ndim = raw[3]
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise DlxError(f"IDX header is cut short ({len(raw)} bytes); is the file truncated?", file=path)
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(raw) != expected:
        found = f"{len(raw)} bytes" if len(raw) < expected else "more bytes"
        raise DlxError(f"IDX file holds {found} but its header promises {expected}; is it truncated?", file=path)
    return np.frombuffer(bytearray(raw), dtype=np.uint8, offset=4 + 4 * ndim).reshape(tuple(dims))  # writable


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits only what CIFAR batches hold (numpy arrays, dicts, lists, bytes); anything else is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
               # pickle protocol 5 stores array data as a buffer; _frombuffer refuses object dtypes
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load '{module}.{name}': a dataset file may hold only arrays, "
                                     "lists, dicts, strings and numbers, and dlx never runs code from one")


def read_cifar_batch(path: Path, label_key: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32) uint8, labels (N,)) from one CIFAR python batch."""
    batch = read_cifar_batch_dict(path)
    if not isinstance(batch, dict) or "data" not in batch or label_key not in batch:
        found = ", ".join(map(str, batch)) if isinstance(batch, dict) else type(batch).__name__
        raise DlxError(f"not a CIFAR batch: expected a dict with 'data' and '{label_key}', found {found}.", file=path)
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DlxError(f"CIFAR 'data' must be uint8 of shape (N, 3072), got {data.dtype} {data.shape}.", file=path)
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DlxError(f"CIFAR '{label_key}' must hold one integer per image ({len(data)}), got {labels.dtype} "
                       f"{labels.shape}.", file=path)
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        mat = scipy_io.loadmat(str(path))
    except (ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise DlxError(f"can't read this .mat file ({exc}).", file=path) from None
    if "X" not in mat or "y" not in mat:
        raise DlxError(f"an SVHN .mat file holds 'X' and 'y'; this one holds "
                       f"{', '.join(k for k in mat if not k.startswith('__')) or 'neither'}.", file=path)
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"])
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
        raise DlxError(f"SVHN 'X' must be (32, 32, 3, N) with one label per image in 'y'; got X {x.shape}, "
                       f"y {y.shape}.", file=path)
    x = np.transpose(x, (3, 2, 0, 1)).astype(np.uint8)  # (32, 32, 3, N) → (N, 3, 32, 32)
    y = y.astype(np.int64).reshape(-1)
    y[y == 10] = 0  # SVHN labels the digit 0 as 10
    return np.ascontiguousarray(x), y


def regular_file_size(path: Path, noun: str, key: str = "data.path") -> int:
    """The size of `path`, which must be a regular file: reading a FIFO waits for a writer forever, and a device
    such as /dev/zero never ends, so neither is opened. Empty files are refused too: no format dlx reads is."""
    try:
        status = os.stat(path)  # follows symbolic links: a link to /dev/zero is a device
    except FileNotFoundError:
        raise DlxError(f"{noun} not found.", file=path, key=key) from None
    except OSError as exc:
        raise DlxError(f"can't read this {noun}: {exc.strerror}.", file=path, key=key) from None
    if not stat.S_ISREG(status.st_mode):
        raise DlxError(f"expected an {noun}, but this is {file_kind(status.st_mode)}, not a regular file; dlx reads "
                       "data only from regular files.", file=path, key=key)
    if status.st_size == 0:
        raise DlxError(f"expected an {noun}, but the file is empty (0 bytes).", file=path, key=key)
    return status.st_size


def read_npz(path: Path) -> dict[str, np.ndarray]:
    regular_file_size(path, "npz file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except HEADER_ERRORS as exc:
        raise DlxError(f"can't read the .npz file: {exc}.", file=path, key="data.path") from None
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray):  # numpy hands back the raw bytes of a member that is no .npy
            raise DlxError(f"the member '{name}' of the .npz is not an .npy array ({len(value)} bytes without the "
                           ".npy header).", file=path, key="data.path")
    return arrays


# what numpy's .npy header parser raises for damaged headers (it tokenizes a Python literal)
HEADER_ERRORS = (ValueError, OSError, EOFError, SyntaxError, TypeError, OverflowError, struct.error,
                 tokenize.TokenError, zipfile.BadZipFile, zlib.error)


def _npy_header(handle) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran order, dtype) from an .npy header, the handle left at the first data byte."""
    version = np.lib.format.read_magic(handle)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = reader(handle)
    if any(not isinstance(side, int) or side < 0 for side in shape):
        raise ValueError(f"the shape {shape} has negative sides")
    return shape, fortran, dtype


def map_npy(file: Path) -> np.ndarray:
    """An .npy file memory-mapped, after checking that it is a regular file whose size is what its header
    promises: mapping a file cut short reads zeros, or kills the process with SIGBUS, past its end."""
    size = regular_file_size(file, ".npy file")
    try:
        with file.open("rb") as handle:
            shape, fortran, dtype = _npy_header(handle)
            offset = handle.tell()
    except HEADER_ERRORS as exc:
        raise DlxError(f"not an .npy file: its header can't be read ({exc}).", file=file, key="data.path") from None
    if dtype.hasobject:
        raise DlxError(f"the .npy file holds Python objects (dtype {dtype}), which would have to be unpickled; dlx "
                       "reads only arrays of numbers.", file=file, key="data.path")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < expected:
        raise DlxError(f"the .npy file holds {size} bytes, but its header promises {expected} (a {shape} {dtype} "
                       "array); is it cut short?", file=file, key="data.path")
    if 0 in shape:
        return np.zeros(shape, dtype)
    mapped = np.memmap(file, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
    return np.ascontiguousarray(mapped) if fortran else mapped  # samples are read as rows: C order only


def map_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, or of a folder of .npy files, memory-mapped (`mmap_mode='r'`) wherever the
    bytes lie uncompressed on disk, so that an array larger than memory is never read whole. A compressed .npz
    member cannot be mapped and is read into memory as before."""
    if path.is_dir():
        return {file.stem: map_npy(file) for file in sorted(path.glob("*.npy"))}
    regular_file_size(path, "npz file")
    arrays = read_npz_lazily(path)
    return arrays if arrays is not None else read_npz(path)


def read_npz_lazily(path: Path) -> dict[str, np.ndarray] | None:
    """Stored (uncompressed) members mapped in place, compressed ones read; None when the file is not a
    readable zip (read_npz then says why)."""
    if not path.is_file():
        return None
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive, path.open("rb") as handle:
            for info in archive.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                mapped = _mapped_member(path, handle, info) if info.compress_type == zipfile.ZIP_STORED else None
                if mapped is None:
                    with archive.open(info) as member:
                        mapped = np.lib.format.read_array(member, allow_pickle=False)
                arrays[name] = mapped
    except HEADER_ERRORS:
        return None
    return arrays


def _mapped_member(path: Path, handle, info: zipfile.ZipInfo) -> np.ndarray | None:
    """A stored .npy member as an np.memmap into the .npz file (None for Fortran order or object dtypes)."""
    handle.seek(info.header_offset)
    local = handle.read(30)  # the zip local file header: its name and extra-field lengths end it
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    handle.seek(start)
    shape, fortran, dtype = _npy_header(handle)
    if fortran or dtype.hasobject or not shape or 0 in shape:
        return None
    if handle.tell() - start + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.file_size:
        return None  # the member is shorter than its header says: read_npz reports it
    return np.memmap(path, dtype=dtype, mode="r", offset=handle.tell(), shape=shape)


@contextlib.contextmanager
def open_image(path: Path):
    """PIL's Image.open, with unreadable files and decompression bombs (a few KB that decode to gigabytes)
    turned into one-paragraph errors naming the file."""
    try:
        with Image.open(path) as image:
            yield image
    except Image.DecompressionBombError as exc:
        raise DlxError(f"the image is too large to decode safely ({exc}); it is refused as a possible "
                       "decompression bomb.", file=path) from None
    except OSError as exc:
        raise DlxError(f"can't read image: {exc}.", file=path) from None
    except (SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:  # what PIL raises for bad chunks
        raise DlxError(f"the image is damaged ({exc}); replace or remove the file.", file=path) from None


def single_channel(path: Path) -> bool:
    """Whether the image is grayscale (PIL modes 1, L, LA, I, I;16, F: one channel once alpha is dropped), from its
    header alone: no pixel is decoded. Palette and colour modes are not."""
    with open_image(path) as image:
        return ImageMode.getmode(image.mode).basemode == "L"


def read_image(path: Path, size: tuple[int, int] | None, grayscale: bool) -> np.ndarray:
    with open_image(path) as image:
        image = image.convert("L" if grayscale else "RGB")
        if size is not None and image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if grayscale else array.transpose(2, 0, 1)


def list_images(folder: Path) -> dict[str, list[Path]]:
    """Class name → sorted image files, from one level of class sub-folders."""
    classes = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(f for f in sub.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if files:
            classes[sub.name] = files
    return classes


def read_cifar_batch_meta(path: Path, key: str) -> list[str]:
    meta = read_cifar_batch_dict(path)
    names = meta.get(key) if isinstance(meta, dict) else None
    if not isinstance(names, (list, tuple)) or not names:
        raise DlxError(f"the CIFAR meta file has no '{key}' list.", file=path)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def read_cifar_batch_dict(path: Path):
    """Unpickle a CIFAR file through the array-only unpickler; bytes keys (Python 2 pickles) become str."""
    try:
        with path.open("rb") as handle:
            loaded = _ArrayOnlyUnpickler(handle, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise DlxError(f"not a readable CIFAR file: {exc}.", file=path) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OSError) as exc:
        raise DlxError(f"not a readable CIFAR file ({type(exc).__name__}: {exc}); is it truncated?", file=path) from None
    if isinstance(loaded, dict):
        loaded = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in loaded.items()}
    return loaded
