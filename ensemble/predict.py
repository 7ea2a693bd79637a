"""`dlx predict`: read an image, a folder of images or an .npz, preprocess it the way the model's runs
were trained (resize, grayscale, [0, 1] scaling; each member then applies its own mean/std) and predict."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

import numpy as np

from spec.errors import DlxError

NPZ_KEYS = ("x", "x_test")


def _image_files(folder: Path) -> list[Path]:
    from train.data.formats import IMAGE_SUFFIXES
    return sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _read_npz(path: Path, shape: tuple) -> tuple[list[str], np.ndarray]:
    from train.data.formats import read_npz
    from train.data.sources import _channels_first
    try:
        arrays = read_npz(path)
    except DlxError as exc:
        raise DlxError(exc.message, file=path) from None
    key = next((k for k in NPZ_KEYS if k in arrays), None)
    if key is None:
        raise DlxError(f"the .npz has no input array: expected one of the keys {', '.join(NPZ_KEYS)}, found "
                       f"{', '.join(sorted(arrays)) or 'none'}.", file=path)
    raw = arrays[key]
    if raw.dtype.kind not in "biuf":
        raise DlxError(f"'{key}' holds {raw.dtype} values; expected numbers.", file=path)
    x = _channels_first(raw, key, path)
    if tuple(x.shape[1:]) != tuple(shape):
        raise DlxError(f"'{key}' has samples of shape {tuple(x.shape[1:])} (from {raw.shape}), but the model takes "
                       f"{tuple(shape)}.", file=path)
    unit = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return [f"{path.name}[{i}]" for i in range(len(x))], unit


def _read_images(files: list[Path], shape: tuple) -> np.ndarray:
    from train.data.formats import read_image
    if len(shape) != 3:
        raise DlxError(f"the model takes flat features of shape {tuple(shape)}, not images; give an .npz.")
    channels, height, width = shape
    images = []
    for file in files:
        image = read_image(file, (height, width), grayscale=channels == 1)
        if image.shape[0] != channels:
            raise DlxError(f"the model takes {channels} channels; this image has {image.shape[0]}.", file=file)
        images.append(image)
    return np.stack(images).astype(np.float32) / 255.0


def read_inputs(path: str | Path, shape: tuple) -> tuple[list[str], np.ndarray]:
    """(names, inputs scaled to [0, 1], channels-first) from an image, a folder of images or an .npz."""
    path = Path(path)
    if path.is_dir():
        files = _image_files(path)
        if not files:
            raise DlxError("no images in this folder (png, jpg, ...).", file=path)
        return [str(f.relative_to(path)) for f in files], _read_images(files, shape)
    if not path.is_file():
        raise DlxError("input not found.", file=path)
    if path.suffix.lower() == ".npz":
        return _read_npz(path, shape)
    return [path.name], _read_images([path], shape)


def predict(model_dir: str | Path, input_path: str | Path, out: Optional[str | Path] = None) -> dict:
    """Predicted class and probabilities of every input; written as CSV to `out` when given."""
    from ensemble.folder import load_model
    model = load_model(model_dir)
    names, unit = read_inputs(input_path, model.input_shape)
    probs = model.predict(unit)
    classes = model.class_names
    rows = [{"input": name, "predicted": int(p.argmax()), "class": classes[int(p.argmax())],
             "probabilities": [float(v) for v in p]} for name, p in zip(names, probs)]
    result = {"model": str(model_dir), "members": len(model.active()), "class_names": classes, "predictions": rows}
    if out is not None:
        write_csv(Path(out), rows, classes)
        result["out"] = str(out)
    return result


def write_csv(path: Path, rows: list[dict], classes: list[str]) -> None:
    from train.checkpoint import atomic_write_text
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["input", "predicted", "class", *(f"p_{c}" for c in classes)])
    for row in rows:
        writer.writerow([row["input"], row["predicted"], row["class"], *(f"{v:.6g}" for v in row["probabilities"])])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, buffer.getvalue())
    except OSError as exc:
        raise DlxError(f"can't write the predictions ({exc.strerror}).", file=path) from None
