"""`dlx predict MODEL.onnx INPUT`: an exported ONNX model run by onnxruntime on decoded image pixels, as a service
without PyTorch would run it. Imports neither torch nor any dlx module that does."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import DlxError
from core.files import read_json
from core.lazy import lazy_module
from train import IMAGE_SUFFIXES, open_image, write_predictions_csv

ort = lazy_module("onnxruntime")

FORMAT_NAMES = ["onnx", "torchscript", "pt2"]  # export.formats.FORMATS, named here without importing torch


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
    images = np.stack([read_pixels(f, height, width, channels) for f in files])
    try:
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        probs = session.run([document["output"]["name"]], {document["input"]["name"]: images})[0]
    except Exception as exc:  # onnxruntime raises its own types; all mean the file is not a working model
        raise DlxError(f"onnxruntime could not run this model ({str(exc).splitlines()[0][:300]}); export it again.",
                       file=model) from None
    classes = list(document["class_names"])
    names = [str(f.relative_to(input_path)) if input_path.is_dir() else f.name for f in files]
    rows = [{"input": name, "predicted": int(p.argmax()), "class": classes[int(p.argmax())],
             "probabilities": [float(v) for v in p]} for name, p in zip(names, probs)]
    result = {"model": str(model), "members": len(document["source"]["members"]), "class_names": classes,
              "input_contract": {"description": f"float32 pixels in 0–255, {height}×{width}×{channels} (NHWC)"},
              "notices": [], "predictions": rows}
    if out is not None:
        write_predictions_csv(Path(out), rows, classes)
        result["out"] = str(out)
    return result
