"""Tiny datasets written in the real on-disk formats (IDX, CIFAR pickles, SVHN .mat, PNG folders, npz).

Images carry a class-dependent brightness so that a tiny model can learn something in one epoch.
"""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

TINY_CNN = """
model:
  layers:
    - Conv2D: {filters: 4, kernel_size: 3, padding: same, activation: relu}
    - GlobalAveragePooling2D
    - Dense: {units: classes}
"""

# a small CNN with batch norm: streamed and in-memory runs must agree on it to the bit
BN_CNN = """
model:
  layers:
    - Conv2D: {filters: 4, kernel_size: 3, padding: same, activation: relu}
    - BatchNormalization
    - GlobalAveragePooling2D
    - Dense: {units: classes}
"""

TINY_DENSE = """
model:
  layers:
    - Dense: {units: 8, activation: relu}
    - Dense: {units: classes}
"""


def images(n: int, shape: tuple, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images of `shape` per sample, labels cycling over all classes)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    base = (labels * (200 // max(1, classes - 1)))[:, None]
    pixels = np.clip(base + rng.integers(0, 40, (n, int(np.prod(shape)))), 0, 255).astype(np.uint8)
    return pixels.reshape((n, *shape)), labels.astype(np.uint8 if classes <= 256 else np.int64)


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    raw = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + \
        np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = 60, n_test: int = 20, gz: bool = False,
                train_labels: np.ndarray | None = None) -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    x_train, y_train = images(n_train, (28, 28), 10, seed=1)
    x_test, y_test = images(n_test, (28, 28), 10, seed=2)
    if train_labels is not None:
        y_train = train_labels
    for name, array in (("train-images-idx3-ubyte", x_train), ("train-labels-idx1-ubyte", y_train),
                        ("t10k-images-idx3-ubyte", x_test), ("t10k-labels-idx1-ubyte", y_test)):
        write_idx(raw / name, array, gz)
    return raw


def _pickle(path: Path, obj) -> None:
    with path.open("wb") as handle:
        pickle.dump(obj, handle)


def write_cifar10(root: Path, per_batch: int = 20, n_test: int = 20) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        x, y = images(per_batch, (3 * 32 * 32,), 10, seed=i)
        _pickle(folder / f"data_batch_{i}", {"batch_label": f"training batch {i} of 5", "labels": y.tolist(),
                                             "data": x, "filenames": [f"img{j}.png" for j in range(per_batch)]})
    x, y = images(n_test, (3 * 32 * 32,), 10, seed=9)
    _pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": y.tolist(), "data": x})
    _pickle(folder / "batches.meta", {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                      "horse", "ship", "truck"], "num_vis": 3072})
    return folder


def write_cifar100(root: Path, n_train: int = 400, n_test: int = 100) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        x, y = images(n, (3 * 32 * 32,), 100, seed=seed)
        _pickle(folder / name, {"data": x, "fine_labels": y.tolist(), "coarse_labels": (y // 5).tolist()})
    _pickle(folder / "meta", {"fine_label_names": [f"class{i}" for i in range(100)],
                              "coarse_label_names": [f"super{i}" for i in range(20)]})
    return folder


def write_svhn(root: Path, n_train: int = 60, n_test: int = 20, labels: np.ndarray | None = None) -> Path:
    from scipy.io import savemat
    root.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train_32x32.mat", n_train, 1), ("test_32x32.mat", n_test, 2)):
        x, y = images(n, (32, 32, 3), 10, seed=seed)
        y = np.where(y == 0, 10, y).astype(np.uint8)  # SVHN stores the digit 0 as label 10
        if labels is not None and name.startswith("train"):
            y = labels
        savemat(root / name, {"X": np.ascontiguousarray(x.transpose(1, 2, 3, 0)), "y": y.reshape(-1, 1)})
    return root


def write_png_folder(folder: Path, classes=("cat", "dog", "fox"), per_class: int = 6, size=(12, 10),
                     seed: int = 0, mode: str = "RGB") -> Path:
    """PNG files of PIL `mode` (RGB, or L for single-channel grayscale) in one folder per class."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(c * 90 + rng.integers(0, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).convert(mode).save(folder / name / f"{i:03d}.png")
    return folder


def write_npz(path: Path, n_train: int = 60, n_test: int = 20, shape=(8, 8, 1), classes: int = 3, **replace) -> Path:
    x_train, y_train = images(n_train, shape, classes, seed=1)
    x_test, y_test = images(n_test, shape, classes, seed=2)
    arrays = {"x_train": x_train, "y_train": y_train.astype(np.int64), "x_test": x_test,
              "y_test": y_test.astype(np.int64), **replace}
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def spec_text(data: str, model: str = TINY_CNN, epochs: int = 1, extra: str = "") -> str:
    """A whole spec: the `data:` block given as YAML text, a tiny model, CPU, quiet-sized training."""
    return (f"name: t\nseed: 0\ndata:\n{data}\n{model}\ntrain:\n  epochs: {epochs}\n  batch_size: 16\n"
            f"  optimizer: {{name: adam, lr: 0.01}}\n{extra}\ndevice: cpu\n")
