"""`dlx predict MODEL.onnx INPUT`: an exported ONNX model run by onnxruntime on decoded image pixels, as a service
without PyTorch would run it. Imports neither torch nor any dlx module that does."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from dlx.core.errors import DlxError
from dlx.core.files import read_json
from dlx.core.lazy import lazy_module
from dlx.train import IMAGE_SUFFIXES, collect_predictions, open_image

ort = lazy_module("onnxruntime")

FORMAT_NAMES = ["onnx", "torchscript", "pt2"]  # export.formats.FORMATS, named here without importing torch
CHUNK = 256  # images read, predicted and written at a time: a folder of any size in bounded memory


def read_export(model: Path) -> dict:
    """export.json beside the model, checked for what predicting needs."""
    document = read_json(model.parent / "export.json", None)
    if not isinstance(document, dict) or document.get("format") != "onnx" \
            or not isinstance(document.get("input", {}).get("shape"), list) or not document.get("class_names"):
        raise DlxError("no usable export.json beside this model (written by `dlx export --format onnx`): it names "
                       "the input's shape and the class names. Export the model again.", file=model.parent)
    return document


def _image_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DlxError("no images in this folder (png, jpg, ...).", file=path)
        return files
    if not path.is_file():
        raise DlxError("input not found.", file=path)
    return [path]


def read_pixels(file: Path, height: int, width: int, channels: int) -> np.ndarray:
    """H×W×C float32 pixels in 0–255, converted to the model's channel count (grayscale or RGB)."""
    with open_image(file) as image:
        array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
    array = array[..., None] if array.ndim == 2 else array
    if array.shape[:2] != (height, width):
        raise DlxError(f"the model takes {height}×{width} images (height×width); this one is "
                       f"{array.shape[0]}×{array.shape[1]}. Resize it first.", file=file)
    return array


def predict_onnx(model: str | Path, input_path: str | Path, out: Optional[str | Path] = None) -> dict:
    """Predicted class and probabilities of every image, as `dlx predict` reports them for a run folder."""
    model, input_path = Path(model), Path(input_path)
    if not model.is_file():
        raise DlxError("model not found.", file=model)
    document = read_export(model)
    _, height, width, channels = document["input"]["shape"]
    files = _image_files(input_path)
    session = _session(model)
    classes = list(document["class_names"])

    def chunks():  # CHUNK images at a time: read, predicted, written, before the next are read
        for start in range(0, len(files), CHUNK):
            chunk = files[start:start + CHUNK]
            images = np.stack([read_pixels(f, height, width, channels) for f in chunk])
            names = [str(f.relative_to(input_path)) if input_path.is_dir() else f.name for f in chunk]
            yield names, _run(session, document, images, model)

    rows = collect_predictions(chunks(), classes, None if out is None else Path(out))
    result = {"model": str(model), "members": len(document["source"]["members"]), "class_names": classes,
              "input_contract": {"description": f"float32 pixels in 0–255, {height}×{width}×{channels} (NHWC)"},
              "notices": [], "predictions": rows}
    if out is not None:
        result["out"] = str(out)
    return result


def _session(model: Path):
    try:
        return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types; all mean the file is not a working model
        raise DlxError(f"onnxruntime could not run this model ({str(exc).splitlines()[0][:300]}); export it again.",
                       file=model) from None


def _run(session, document: dict, images: np.ndarray, model: Path) -> np.ndarray:
    try:
        return session.run([document["output"]["name"]], {document["input"]["name"]: images})[0]
    except Exception as exc:  # noqa: BLE001 - as in _session
        raise DlxError(f"onnxruntime could not run this model ({str(exc).splitlines()[0][:300]}); export it again.",
                       file=model) from None
