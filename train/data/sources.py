"""Dataset loaders, one per entry of experiment.datasets.DATASETS (which names them), returning raw arrays.

Each loader returns images channels-first as numpy arrays (uint8 0-255, or float already in [0, 1])
plus integer labels, and a test set when the source has one.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from dlx.core.errors import DlxError
from dlx.core.lazy import lazy_module
import dlx.train.data.formats as formats
from dlx.train.data.lazy import ImageFiles, LazyArray, MappedArray

tvd = lazy_module("torchvision.datasets")  # downloads only: importing torchvision costs start-up time


@dataclass
class RawData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: Optional[np.ndarray]
    y_test: Optional[np.ndarray]
    class_names: list[str]
    scale: float  # multiply raw values by this to get [0, 1]
    x_val: Optional[np.ndarray] = None  # a validation set shipped with the data (image_folder's val/)
    y_val: Optional[np.ndarray] = None
    channels: Optional[dict] = None  # image_folder: {"count": 1 or 3, "why": how data.channels chose it}


def _missing(data, folder: Path, files: list[str], missing: list[str]) -> DlxError:
    """Where the files go, in torchvision's layout below data.root (mnist: <root>/MNIST/raw/, svhn: <root>/)."""
    below = folder.relative_to(data.root).as_posix()
    holds = "them" if below == "." else f"{below}/"
    return DlxError(f"{data.dataset} files are missing: expected {', '.join(files)} in the folder {folder.resolve()} "
                    f"(missing: {', '.join(missing)}). Put them there, set data.root to the folder that holds "
                    f"{holds}, or set data.download: true where there is a network.", key="data.root")


def _download(data, torchvision_class: str, folder: Path, files: list[str], missing: list[str]):
    """Let torchvision fetch the files into its standard layout; say exactly what is missing if it can't."""
    if not data.download:
        raise _missing(data, folder, files, missing)
    try:
        for train in (True, False):
            if torchvision_class == "SVHN":
                tvd.SVHN(data.root, split="train" if train else "test", download=True)
            else:
                getattr(tvd, torchvision_class)(data.root, train=train, download=True)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise DlxError(f"downloading {data.dataset} failed ({exc}); without a network, put "
                       f"{', '.join(files)} in {folder.resolve()}.", key="data.download") from None


def load_digits(data) -> RawData:
    images, target = _read_sklearn_digits()
    x = (images.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    return RawData(x, target.astype(np.int64), None, None, [str(c) for c in range(10)], 1.0)


def _read_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits, read straight from its CSV: importing sklearn costs over a second
    per process, which every search worker and trial start would pay."""
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",", dtype=np.float64)
            if table.shape == (1797, 65):
                return table[:, :64], table[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits as sk_digits  # layout changed: take the public API
    bunch = sk_digits()
    return bunch.data, bunch.target


_IDX_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
_MNIST_LIKE = {"mnist": ("MNIST", [str(d) for d in range(10)]),
               "fashion_mnist": ("FashionMNIST", ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                                  "Shirt", "Sneaker", "Bag", "Ankle boot"]),
               "kmnist": ("KMNIST", ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"])}


def _find_idx(folder: Path, name: str) -> Optional[Path]:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_mnist_like(data) -> RawData:
    torchvision_class, names = _MNIST_LIKE[data.dataset]
    folder = Path(data.root) / torchvision_class / "raw"
    missing = [f for f in _IDX_FILES if _find_idx(folder, f) is None]
    if missing:
        _download(data, torchvision_class, folder, [f"{f}[.gz]" for f in _IDX_FILES], missing)
    x_train, y_train, x_test, y_test = (formats.read_idx(_find_idx(folder, f)) for f in _IDX_FILES)
    for images, labels, name in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DlxError(f"{name}-images must be (N, H, W) with one label per image in {name}-labels; got images "
                           f"{images.shape} and labels {labels.shape}.", file=folder, key="data.root")
    return RawData(x_train[:, None], y_train.astype(np.int64), x_test[:, None], y_test.astype(np.int64), names, 1 / 255)


def _check_files(data, torchvision_class: str, folder: Path, files: list[str]) -> None:
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        _download(data, torchvision_class, folder, files, missing)


def load_cifar10(data) -> RawData:
    folder = Path(data.root) / "cifar-10-batches-py"
    files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    _check_files(data, "CIFAR10", folder, files)
    train = [formats.read_cifar_batch(folder / f) for f in files[:5]]
    x_test, y_test = formats.read_cifar_batch(folder / "test_batch")
    names = formats.read_cifar_batch_meta(folder / "batches.meta", "label_names")
    return RawData(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test,
                   names, 1 / 255)


def load_cifar100(data) -> RawData:
    folder = Path(data.root) / "cifar-100-python"
    _check_files(data, "CIFAR100", folder, ["train", "test", "meta"])
    x_train, y_train = formats.read_cifar_batch(folder / "train", "fine_labels")
    x_test, y_test = formats.read_cifar_batch(folder / "test", "fine_labels")
    names = formats.read_cifar_batch_meta(folder / "meta", "fine_label_names")
    return RawData(x_train, y_train, x_test, y_test, names, 1 / 255)


def load_svhn(data) -> RawData:
    folder = Path(data.root)
    files = ["train_32x32.mat", "test_32x32.mat"]
    _check_files(data, "SVHN", folder, files)
    x_train, y_train = formats.read_svhn_mat(folder / files[0])
    x_test, y_test = formats.read_svhn_mat(folder / files[1])
    return RawData(x_train, y_train, x_test, y_test, [str(d) for d in range(10)], 1 / 255)


def _image_size(data) -> Optional[tuple[int, int]]:
    size = data.image_size
    size = (size, size) if isinstance(size, int) else (tuple(size) if size is not None else None)
    return size


def _list_folder(folder: Path, class_names: list[str]) -> tuple[list[Path], np.ndarray]:
    """The folder's image files, class by class, and their labels."""
    files, labels = [], []
    listing = formats.list_images(folder)
    unknown = sorted(set(listing) - set(class_names))
    if unknown:
        raise DlxError(f"class folders {', '.join(unknown)} are not among the training classes "
                       f"({', '.join(class_names)}).", file=folder, key="data.path")
    for label, name in enumerate(class_names):
        files += listing.get(name, [])
        labels += [label] * len(listing.get(name, []))
    if not files:
        raise DlxError(f"no images found in the class sub-folders of {folder.resolve()} (image types: "
                       f"{', '.join(formats.IMAGE_SUFFIXES)}).", key="data.path")
    return files, np.asarray(labels, dtype=np.int64)


def _channels(data, files: list[Path], root: Path) -> tuple[int, str]:
    """(channels, why): data.grayscale or data.channels, or for `auto` 1 when every image is single-channel. Only
    headers are read (formats.single_channel), stopping at the first colour image: a fraction of the decoding
    pass that follows, and no more memory for a folder larger than RAM, streamed or not."""
    if data.grayscale:
        return 1, "data.grayscale: true"
    if data.channels != "auto":
        return data.channels, f"data.channels: {data.channels}"
    colour = next((file for file in files if not formats.single_channel(file)), None)
    if colour is not None:
        return 3, f"data.channels auto: {colour.relative_to(root).as_posix()} is in colour"
    return 1, f"data.channels auto: all {len(files)} images are single-channel"


SPLIT_FOLDERS = ("train", "val", "test")


def load_image_folder(data) -> RawData:
    """`path/<class>/*.png`, or `path/train/<class>/...` with optional `path/val/` and `path/test/` beside it.
    A val/ folder is the validation split (nothing is carved from train); a test/ folder is the test split.
    Images are decoded lazily (train.data.lazy), with the channel count `_channels` chose for all of them."""
    root = Path(data.path)
    if not root.is_dir():
        found = "it is not a folder" if root.exists() else "it does not exist"
        raise DlxError(f"image folder not found: {root.resolve()} ({found}).", key="data.path")
    split_dirs = {name: root / name for name in SPLIT_FOLDERS if (root / name).is_dir()}
    if split_dirs and "train" not in split_dirs:
        raise DlxError(f"{root.resolve()} has {'/'.join(split_dirs)}/ but no train/ folder; put the training "
                       "class folders in train/.", key="data.path")
    train_dir = split_dirs.get("train", root)
    class_names = list(formats.list_images(train_dir))
    if not class_names:
        raise DlxError(f"no images found in class sub-folders of {train_dir.resolve()} (expected e.g. "
                       f"{train_dir}/cat/001.png; image types: {', '.join(formats.IMAGE_SUFFIXES)}).", key="data.path")
    listed = {"train": _list_folder(train_dir, class_names),
              **{name: _list_folder(split_dirs[name], class_names) for name in ("val", "test") if name in split_dirs}}
    channels, why = _channels(data, [file for files, _ in listed.values() for file in files], root)
    size = _image_size(data)
    x_train = LazyArray(ImageFiles(listed["train"][0], size, channels == 1, root))
    size = size or x_train.shape[2:]
    held = {name: (LazyArray(ImageFiles(listed[name][0], size, channels == 1, root)), listed[name][1])
            if name in listed else (None, None) for name in ("val", "test")}
    return RawData(x_train, listed["train"][1], *held["test"], class_names, 1 / 255, *held["val"],
                   channels={"count": channels, "why": why})


SAMPLE_FORMS = "(N, features), (N, H, W), (N, H, W, C) or (N, C, H, W)"
MAX_CLASSES = 100_000  # labels are class indices 0..K-1; ImageNet-21k has 21,841 classes
CHECK_ROWS = 1024  # samples checked for NaN at a time, so a memory-mapped array is never read whole


def channels_first(x: np.ndarray, name: str, file) -> np.ndarray:
    """Arrays as the model takes them, (N, C, H, W) or (N, features), from Keras's (N, H, W, C) or (N, H, W)."""
    check_rank(x, name, file)
    if x.ndim == 2:
        return x  # flat features
    if x.ndim == 3:
        return x[:, None]
    channels_last = x.shape[-1] in (1, 3, 4) and (x.shape[1] not in (1, 3, 4) or x.shape[-1] < x.shape[1])
    if channels_last:  # Keras's (N, H, W, C); (N, 4, 4, 1) too, which no one means as 4 channels of 4x1
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x


def check_rank(x: np.ndarray, name: str, file) -> None:
    if x.ndim not in (2, 3, 4):
        raise DlxError(f"'{name}' has shape {x.shape} ({x.ndim} dimensions); expected {SAMPLE_FORMS}.", file=file,
                       key="data.path")


def _layout(x: np.ndarray, name: str, file) -> str:
    """How `channels_first` turns a sample channels-first: "same", "add" (a channel axis) or "last" (move it)."""
    check_rank(x, name, file)
    if x.ndim == 4:
        return "last" if channels_first(x[:1], name, file).shape[1:] != x.shape[1:] else "same"
    return "add" if x.ndim == 3 else "same"


def _samples(x: np.ndarray, name: str, file):
    """A memory-mapped array as a lazy array of channels-first samples; an array in memory as `channels_first`."""
    if isinstance(x, np.memmap):
        return LazyArray(MappedArray(Path(x.filename), x.offset, x.dtype, x.shape, _layout(x, name, file)))
    return channels_first(x, name, file)


def load_npz(data) -> RawData:
    """An .npz file, or a folder of x_train.npy, y_train.npy (x_test.npy, y_test.npy): arrays stored
    uncompressed are memory-mapped, and become lazy arrays read a sample at a time."""
    path = Path(data.path)
    arrays = formats.map_arrays(path)
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        what = "folder" if path.is_dir() else ".npz"
        files = ".npy files " if path.is_dir() else ""
        raise DlxError(f"the {what} lacks {', '.join(missing)}; it holds {files}{', '.join(arrays) or 'nothing'} "
                       "(expected x_train, y_train and optionally x_test, y_test).", file=path, key="data.path")
    pairs = [("x_train", "y_train")] + ([("x_test", "y_test")] if "x_test" in arrays or "y_test" in arrays else [])
    for x_name, y_name in pairs:
        if x_name not in arrays or y_name not in arrays:
            raise DlxError(f"the .npz has only one of {x_name}/{y_name}; give both or neither.", file=path,
                           key="data.path")
        _check_pair(arrays, x_name, y_name, path)
    _check_labels([(name, arrays[name]) for _, name in pairs], path)
    x_train = _samples(arrays["x_train"], "x_train", path)
    x_test = _samples(arrays["x_test"], "x_test", path) if "x_test" in arrays else None
    if x_test is not None and x_test.shape[1:] != x_train.shape[1:]:
        raise DlxError(f"x_test samples have shape {x_test.shape[1:]} but x_train samples {x_train.shape[1:]}.",
                       file=path, key="data.path")
    scale = 1 / 255 if x_train.dtype == np.uint8 else 1.0
    classes = int(max(int(arrays[name].max()) for _, name in pairs if len(arrays[name])) + 1)
    return RawData(x_train, arrays["y_train"].astype(np.int64), x_test,
                   arrays["y_test"].astype(np.int64) if x_test is not None else None, [str(c) for c in range(classes)],
                   scale)


def _check_pair(arrays: dict, x_name: str, y_name: str, path: Path) -> None:
    """Samples of real numbers, finite, of a rank the models take, one integer label each (`path`: the .npz, or
    the folder of .npy files)."""
    x, y = arrays[x_name], arrays[y_name]
    x_file, y_file = (path / f"{x_name}.npy", path / f"{y_name}.npy") if path.is_dir() else (path, path)
    if x.dtype.kind not in "biuf":  # complex, timedelta, datetime, strings, records
        raise DlxError(f"{x_name} holds {x.dtype} values; samples must be real numbers (integers, floats or "
                       "booleans).", file=x_file, key="data.path")
    check_rank(x, x_name, x_file)
    if y.ndim != 1 or y.dtype.kind not in "iu" or (len(y) and y.min() < 0):
        low = f", smallest {y.min()}" if y.ndim == 1 and len(y) and y.dtype.kind in "iu" else ""
        raise DlxError(f"{y_name} must be a 1-D array of non-negative integer class indices (not one-hot), got "
                       f"dtype {y.dtype}, shape {y.shape}{low}.", file=y_file, key="data.path")
    if len(x) != len(y):
        raise DlxError(f"{x_name} has {len(x)} samples but {y_name} has {len(y)}; they must match (shapes "
                       f"{x.shape} and {y.shape}).", file=path, key="data.path")
    if not len(x) and x_name == "x_train":
        raise DlxError(f"the training set has no samples ({x_name} has shape {x.shape}).", file=x_file,
                       key="data.path")
    if len(x) and not x[0].size:
        raise DlxError(f"{x_name} samples hold no values (shape {x.shape}).", file=x_file, key="data.path")
    _check_finite(x, x_name, x_file)


def _check_finite(x: np.ndarray, name: str, path: Path) -> None:
    """NaN or inf make the loss NaN, or a test loss `null` with nothing said: refused, CHECK_ROWS at a time."""
    if x.dtype.kind != "f":
        return
    bad = np.concatenate([~np.isfinite(x[start:start + CHECK_ROWS].reshape(-1, x[0].size)).all(axis=1)
                          for start in range(0, len(x), CHECK_ROWS)]) if len(x) else np.zeros(0, bool)
    if bad.any():
        raise DlxError(f"{name} holds NaN or inf in {int(bad.sum())} of its {len(x)} samples (the first is sample "
                       f"{int(bad.argmax())}); replace or drop those samples.", file=path, key="data.path")


def _check_labels(labels: list[tuple[str, np.ndarray]], path: Path) -> None:
    """Labels are class indices 0..K-1: one label of 10⁹ would otherwise make 10⁹ class names."""
    for name, y in labels:
        if len(y) and int(y.max()) >= MAX_CLASSES:
            distinct = np.unique(np.concatenate([values for _, values in labels]))
            shown = ", ".join(map(str, distinct[:5])) + (", ..." if len(distinct) > 5 else "")
            raise DlxError(f"{name} holds the label {int(y.max())} (sample {int(y.argmax())}), but labels are class "
                           f"indices 0..K-1 and dlx takes at most {MAX_CLASSES} classes; the labels hold "
                           f"{len(distinct)} distinct labels ({shown}). Number the classes 0..K-1.",
                           file=path / f"{name}.npy" if path.is_dir() else path, key="data.path")
