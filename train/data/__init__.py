"""Datasets split into train / validation / test, decoded into memory or left on disk (data.cache).

The test set is never used for training, early stopping or selection. Normalisation statistics
come from the training split only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from dlx.core.errors import DlxError
from dlx.experiment.datasets import DATASETS
from dlx.train.data.cache import CacheChoice, choose_cache
from dlx.train.data.lazy import is_lazy
from dlx.train.data.split import fingerprint, stratified_split
from dlx.train.data.stats import CHUNK, Stats, array_chunks, channel_stats

__all__ = ["DatasetInfo", "Splits", "check_split_compatible", "dataset_info", "load_splits"]


@dataclass
class DatasetInfo:
    input_shape: tuple
    classes: int


@dataclass
class Splits:
    """Raw samples of each split, the class names and the normalisation to apply per batch."""

    x: dict  # split name → numpy array (N, C, H, W) or (N, F), or a train.data.lazy.LazyArray when streamed
    y: dict
    class_names: list[str]
    scale: float
    mean: np.ndarray
    std: np.ndarray
    split_record: dict = field(default_factory=dict)
    cache: Optional[CacheChoice] = None  # memory or stream, and why
    workers: Optional[int] = None  # data.workers: decoding processes when streamed

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x["train"].shape[1:])

    @property
    def classes(self) -> int:
        return len(self.class_names)


def dataset_info(data) -> DatasetInfo:
    """Input shape and class count, without loading the data where they are known."""
    entry = DATASETS.get(data.dataset)
    if entry.input_shape is not None:
        return DatasetInfo(entry.input_shape, entry.classes)
    splits = load_splits(data)
    return DatasetInfo(splits.input_shape, splits.classes)


def _training_stats(x, scale: float, workers: Optional[int]) -> Optional[Stats]:
    """One pass over the training samples, in CHUNK-sized chunks whether in memory or streamed."""
    if is_lazy(x):
        from dlx.train.data.loader import raw_chunks  # torch's DataLoader: only when streaming
        return channel_stats(raw_chunks(x, CHUNK, workers), scale)
    return channel_stats(array_chunks(x), scale)


def _fingerprint(x, y: np.ndarray) -> str:
    """Image files: names, sizes, mtimes and sampled bytes (train.data.lazy); arrays: the first 512 samples."""
    content = x.content_fingerprint() if is_lazy(x) else None
    if content is not None:
        return fingerprint(np.frombuffer(content.encode(), np.uint8), y)
    return fingerprint(np.asarray(x[: min(len(x), 512)]), y)


_CACHE: dict[str, Splits] = {}


def load_splits(data) -> Splits:
    """Load a dataset and carve validation (and, where the source has none, test) splits."""
    key = data.model_dump_json()
    if key not in _CACHE:
        _CACHE.clear()  # keep at most one dataset in memory
        _CACHE[key] = splits = _load_splits(data)
        chosen = splits.split_record.get("channels")
        if chosen and data.channels == "auto":  # what a run records it was trained on (train.run) finds it too
            _CACHE[data.model_copy(update={"channels": chosen["count"]}).model_dump_json()] = splits
    return _CACHE[key]


def _load_splits(data) -> Splits:
    raw = DATASETS.get(data.dataset).load_function()(data)
    if len(raw.x_train) < 4:
        raise DlxError(f"the training set has only {len(raw.x_train)} samples; at least 4 are needed.", key="data")
    classes = len(raw.class_names)
    for name, labels in (("training", raw.y_train), ("validation", raw.y_val), ("test", raw.y_test)):
        if labels is not None and len(labels) and (labels.min() < 0 or labels.max() >= classes):
            raise DlxError(f"{data.dataset} {name} labels range over {labels.min()}..{labels.max()}, but the dataset "
                           f"has {classes} classes, so labels must lie in 0..{classes - 1}.", key="data")
    record = {"dataset": data.dataset, "val_split": data.val_split, "split_seed": data.split_seed}
    if raw.channels is not None:
        record["channels"] = raw.channels  # image_folder: 1 or 3, and why (data.channels)
    choice = choose_cache(data, [raw.x_train, raw.x_val, raw.x_test])
    x_pool, y_pool = raw.x_train, raw.y_train
    if raw.x_test is None:
        kept, test_idx = stratified_split(y_pool, data.test_split, data.split_seed + 7919)
        x_test, y_test = x_pool[test_idx], y_pool[test_idx]
        x_pool, y_pool = x_pool[kept], y_pool[kept]
        record["test_indices"] = test_idx.tolist()
        record["test_split"] = data.test_split
    else:
        x_test, y_test = raw.x_test, raw.y_test
    if raw.x_val is None:
        train_idx, val_idx = stratified_split(y_pool, data.val_split, data.split_seed)
        record["val_indices"] = val_idx.tolist()  # positions in the training pool (after any test carve-out)
        x_train, y_train, x_val, y_val = x_pool[train_idx], y_pool[train_idx], x_pool[val_idx], y_pool[val_idx]
    else:  # the source ships its own validation set (an image folder's val/)
        record["val_source"] = "folder"
        x_train, y_train, x_val, y_val = x_pool, y_pool, raw.x_val, raw.y_val
        record["val_fingerprint"] = _fingerprint(x_val, y_val)
    record["fingerprint"] = _fingerprint(raw.x_train, raw.y_train)
    record["sizes"] = {"train": len(y_train), "val": len(y_val), "test": len(y_test)}
    _check_held_out(data, {"validation": y_val, "test": y_test}, record, raw)
    x = {"train": x_train, "val": x_val, "test": x_test}
    y = {"train": y_train, "val": y_val, "test": y_test}
    files = {name: part.files() for name, part in x.items() if is_lazy(part) and part.files() is not None}
    if files:
        record["files"] = files  # relative to data.path: the split survives moving the data
    if choice.mode == "memory":
        x = {name: np.asarray(part) for name, part in x.items()}  # decoded here, once
    record["cache"] = choice.record()
    return Splits(x, y, raw.class_names, raw.scale, *_normalisation(data, x["train"], raw.scale), record, choice,
                  data.workers)


def _normalisation(data, x_train, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of the training split, or (0, 1) with normalize off; a streamed split also learns its value
    range (for the checkpoint's input record) in the same pass."""
    stats = _training_stats(x_train, scale, data.workers) if data.normalize or is_lazy(x_train) else None
    if is_lazy(x_train) and stats is not None:
        x_train.value_range = (stats.low, stats.high)
    if data.normalize and stats is not None:
        return stats.mean, stats.std
    channels = x_train.shape[1]
    return np.zeros(channels, np.float32), np.ones(channels, np.float32)


def _check_held_out(data, held: dict, record: dict, raw) -> None:
    """An empty or one-class validation or test split can't pick a best epoch or score a model: training on
    it would report "finished" with a NaN metric and no best checkpoint, so it is refused before training."""
    sizes = record["sizes"]
    counts = f"train {sizes['train']}, validation {sizes['val']}, test {sizes['test']} samples"
    if len(np.unique(np.concatenate([y for y in held.values()] + [raw.y_train]))) < 2:
        return  # one class in all the data: nothing to compare a split with
    for name, labels in held.items():
        from_file = raw.x_val is not None if name == "validation" else raw.x_test is not None
        key = "data.path" if from_file else ("data.val_split" if name == "validation" else "data.test_split")
        fix = (f"add samples to the {name} data" if from_file else
               f"adjust data.test_split (now {data.test_split}) or data.val_split (now {data.val_split}) so that "
               "every split keeps samples of each class")
        if len(labels) == 0:
            raise DlxError(f"the {name} split is empty ({counts}); {fix}.", key=key)
        present = np.unique(labels)
        if len(present) < 2:
            raise DlxError(f"the {name} split holds only class {raw.class_names[int(present[0])]!r} ({counts}); "
                           f"accuracy on one class says nothing; {fix}.", key=key)


def check_split_compatible(saved: dict, current: dict) -> Optional[str]:
    """Why two split records differ (None when they describe the same data and split)."""
    for key in ("dataset", "fingerprint", "val_indices", "test_indices", "val_fingerprint"):
        if saved.get(key) != current.get(key):
            return f"'{key}' differs"
    return None
