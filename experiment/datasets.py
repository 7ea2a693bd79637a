"""Every dataset dlx knows, one entry each: name, input shape and classes (where fixed), and its loader.

The loader is named as "module:function" and resolved on first use (core.lazy.resolve): the spec, one layer
below `train`, validates dataset names and knows their shapes without importing the loaders or numpy."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from dlx.core.lazy import resolve
from dlx.core.registry import Registry


@dataclass(frozen=True)
class Dataset:
    name: str
    loader: str  # "dlx.train.data.sources:load_digits": (DataSpec) → RawData
    input_shape: Optional[tuple] = None  # (C, H, W); None: read from the files
    classes: Optional[int] = None  # None: read from the files
    path: Optional[str] = None  # what `data.path` names, for datasets that need one

    def load_function(self) -> Callable:
        return resolve(self.loader)


DATASETS: Registry[Dataset] = Registry("dataset", key="data.dataset")


def _add(name: str, function: str, **fields) -> None:
    DATASETS.register(name, Dataset(name, f"dlx.train.data.sources:{function}", **fields))


_add("digits", "load_digits", input_shape=(1, 8, 8), classes=10)
for _name in ("mnist", "fashion_mnist", "kmnist"):
    _add(_name, "load_mnist_like", input_shape=(1, 28, 28), classes=10)
_add("cifar10", "load_cifar10", input_shape=(3, 32, 32), classes=10)
_add("cifar100", "load_cifar100", input_shape=(3, 32, 32), classes=100)
_add("svhn", "load_svhn", input_shape=(3, 32, 32), classes=10)
_add("image_folder", "load_image_folder", path="folder of class folders")
_add("npz", "load_npz", path=".npz file")
