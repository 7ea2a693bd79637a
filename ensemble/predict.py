"""`dlx predict`: read an image, a folder of images or an .npz, hold it to the input contract recorded in the
model's checkpoint (train/inputs.py: dtype, value range, channels, height×width), converting only where that is
unambiguous and saying so, and predict. Each member then applies its own mean/std."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np

from dlx.core.errors import DlxError
from dlx.ensemble.folder import load_model
from dlx.train.data.formats import IMAGE_SUFFIXES, open_image, read_npz
from dlx.train.data.sources import channels_first
from dlx.train.inputs import InputContract, conform
from dlx.train.prediction_file import collect_predictions

NPZ_KEYS = ("x", "x_test")
CHUNK = 256  # images of a folder decoded and predicted at a time
DEEP_MODES = ("I", "F")  # 32-bit integer and float images (and I;16*): no 0–255 meaning to rely on
MODE_NAMES = {"L": "grayscale", "LA": "grayscale+alpha", "P": "palette", "PA": "palette+alpha"}


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _read_npz(path: Path, contract: InputContract, resize: bool, notices: list[str]) -> tuple[list[str], np.ndarray]:
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
    x = channels_first(raw, key, path) if raw.ndim > 1 else raw
    return [f"{path.name}[{i}]" for i in range(len(x))], conform(x, contract, path, resize, notices)


def read_image(file: Path, channels: int, notices: list[str]) -> np.ndarray:
    """(C, H, W) uint8 at its own size, with the model's channel count where a plain mode conversion gives it
    (RGB → grayscale, grayscale/palette/RGBA → RGB), noted; 16- and 32-bit images are refused."""
    with open_image(file) as image:
        mode, bands = image.mode, len(image.getbands())
        if mode.startswith(DEEP_MODES):
            raise DlxError(f"a {mode} image (more than 8 bits per channel); save it as an 8-bit image.", file=file)
        target = mode if bands == channels and mode != "P" else {1: "L", 3: "RGB"}.get(channels)
        if target is None:
            raise DlxError(f"the model takes {channels} channels; this is a {mode} image with {bands}.", file=file)
        if target != mode and mode != "1":
            notices.append(f"{MODE_NAMES.get(mode, mode)} image converted to {MODE_NAMES.get(target, target)}: "
                           f"the model takes {channels} channel{'s' if channels != 1 else ''}.")
        array = np.asarray(image.convert(target), dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _read_images(files: list[Path], contract: InputContract, resize: bool, notices: list[str]) -> np.ndarray:
    if len(contract.shape) != 3:
        raise DlxError(f"the model takes flat features ({contract.describe()}), not images; give an .npz.")
    return np.concatenate([conform(read_image(f, contract.shape[0], notices)[None], contract, f, resize, notices)
                           for f in files])


def input_chunks(path: str | Path, contract: InputContract, resize: bool = False,
                 notices: Optional[list[str]] = None, size: int = CHUNK):
    """(names, inputs) `size` images at a time for a folder, so that a folder of any size is never held whole;
    an image or an .npz comes as one chunk."""
    path, notices = Path(path), [] if notices is None else notices
    if not path.is_dir():
        yield read_inputs(path, contract, resize, notices)
        return
    files = _image_files(path)
    if not files:
        raise DlxError("no images in this folder (png, jpg, ...).", file=path)
    for start in range(0, len(files), size):
        chunk = files[start:start + size]
        yield [str(f.relative_to(path)) for f in chunk], _read_images(chunk, contract, resize, notices)


def read_inputs(path: str | Path, contract: InputContract, resize: bool = False,
                notices: Optional[list[str]] = None) -> tuple[list[str], np.ndarray]:
    """(names, inputs as the model's normalisation takes them) from an image, a folder of images or an .npz;
    conversions made are appended to `notices` (one entry per converted input)."""
    path, notices = Path(path), [] if notices is None else notices
    if path.is_dir():
        files = _image_files(path)
        if not files:
            raise DlxError("no images in this folder (png, jpg, ...).", file=path)
        return [str(f.relative_to(path)) for f in files], _read_images(files, contract, resize, notices)
    if not path.is_file():
        raise DlxError("input not found.", file=path)
    if path.suffix.lower() == ".npz":
        return _read_npz(path, contract, resize, notices)
    return [path.name], _read_images([path], contract, resize, notices)


def summarise_notices(notices: list[str]) -> list[str]:
    """One line per kind of conversion, with how many inputs it touched when more than one."""
    return [f"{text} ({count} inputs)" if count > 1 else text for text, count in Counter(notices).items()]


def predict(model_dir: str | Path, input_path: str | Path, out: Optional[str | Path] = None,
            resize: bool = False) -> dict:
    """Predicted class and probabilities of every input; written as CSV to `out` when given. `notices` lists
    the conversions made to fit the model's input contract."""
    model = load_model(model_dir)
    contract = InputContract.from_record(model.members[0].record, model.members[0].checkpoint)
    notices: list[str] = []
    classes = model.class_names
    chunks = ((names, model.predict(unit)) for names, unit in input_chunks(input_path, contract, resize, notices))
    rows = collect_predictions(chunks, classes, None if out is None else Path(out))
    result = {"model": str(model_dir), "members": len(model.active()), "class_names": classes,
              "input_contract": contract.as_dict(), "notices": summarise_notices(notices), "predictions": rows}
    if out is not None:
        result["out"] = str(out)
    return result
