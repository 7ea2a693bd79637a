"""`dlx predict MODEL.onnx INPUT`: an exported ONNX model run by onnxruntime on decoded image pixels, as a service
without PyTorch would run it. Imports neither torch nor any dlx module that does.

Nothing in the folder is trusted as it stands: export.json is read bounded and checked field by field, the model
must be the one it records (sha256) and hold no control flow (dlx never exports any), each batch runs under a
time limit that Ctrl-C also ends, and its output must be the class probabilities the record describes."""
from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Optional

import numpy as np

from dlx.core.errors import DlxError
from dlx.core.files import read_json
from dlx.core.lazy import lazy_module
from dlx.core.reading import read_bytes
from dlx.train import IMAGE_SUFFIXES, collect_predictions, open_image

ort = lazy_module("onnxruntime")
onnx = lazy_module("onnx")

FORMAT_NAMES = ["onnx", "torchscript", "pt2"]  # export.formats.FORMATS, named here without importing torch
CHUNK = 256  # images read, predicted and written at a time: a folder of any size in bounded memory
RUN_SECONDS = 600.0  # onnxruntime's limit for one chunk: a dlx export takes well under a second an image on a CPU
MAX_MODEL_BYTES = 2 * 2**30  # protobuf's own limit on one ONNX file
MAX_CLASSES, MAX_SIDE, MAX_NAME = 100_000, 16_384, 200
SUM_TOLERANCE = 1e-3  # |Σ probabilities − 1| accepted per image (float32 sums of up to MAX_CLASSES terms)
DEEP_MODES = ("I", "F")  # 16- and 32-bit integer and float images: refused, as `dlx predict RUN` refuses them
EXPORT_AGAIN = "Export the model again with `dlx export --format onnx`."


def _refuse(message: str, record: Path, key: Optional[str] = None) -> DlxError:
    return DlxError(f"{message} {EXPORT_AGAIN}", file=record, key=key)


def read_export(model: Path) -> dict:
    """export.json beside the model, every field predicting uses checked (types, sizes), read bounded."""
    record = model.parent / "export.json"
    document = read_json(record, None)
    if not isinstance(document, dict) or document.get("format") != "onnx":
        raise DlxError("no usable export.json beside this model (written by `dlx export --format onnx`): it names "
                       f"the input's shape and the class names. {EXPORT_AGAIN}", file=model.parent)
    for key in ("input", "output", "source"):
        if not isinstance(document.get(key), dict):
            raise _refuse(f"expected a mapping, found {_shown(document.get(key))}.", record, key)
    _check_name(document["input"].get("name"), record, "input.name")
    _check_name(document["output"].get("name"), record, "output.name")
    _check_shape(document["input"].get("shape"), record)
    _check_classes(document.get("class_names"), record)
    members = document["source"].get("members")
    if not isinstance(members, list) or not members:
        raise _refuse(f"expected a non-empty list of members, found {_shown(members)}.", record, "source.members")
    digest = document.get("model_sha256")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise _refuse(f"expected the model's sha256 (64 hex digits), found {_shown(digest)}: this record can't "
                      "vouch for the model beside it.", record, "model_sha256")
    return document


def _shown(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}" if value is not None else "nothing"


def _check_name(value, record: Path, key: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise _refuse(f"expected a tensor name (text of 1 to {MAX_NAME} characters), found {_shown(value)}.",
                      record, key)


def _is_count(value, limit: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= limit


def _check_shape(shape, record: Path) -> None:
    if not (isinstance(shape, list) and len(shape) == 4 and shape[0] == "batch" and _is_count(shape[1], MAX_SIDE)
            and _is_count(shape[2], MAX_SIDE) and shape[3] in (1, 3) and not isinstance(shape[3], bool)):
        raise _refuse(f'expected ["batch", height, width, channels] (sides 1 to {MAX_SIDE}, 1 or 3 channels), '
                      f"found {_shown(shape)}.", record, "input.shape")


def _check_classes(names, record: Path) -> None:
    if not isinstance(names, list) or not 0 < len(names) <= MAX_CLASSES:
        raise _refuse(f"expected a list of 1 to {MAX_CLASSES} class names, found {_shown(names)}.", record,
                      "class_names")
    bad = next((i for i, name in enumerate(names) if not isinstance(name, str) or len(name) > MAX_NAME), None)
    if bad is not None:
        raise _refuse(f"expected text of at most {MAX_NAME} characters, found {_shown(names[bad])}.", record,
                      f"class_names[{bad}]")


def read_model(model: Path, document: dict) -> bytes:
    """The model's bytes (a regular file, bounded), refused unless they are the ones export.json records."""
    try:
        content = read_bytes(model, MAX_MODEL_BYTES, "an ONNX model")
    except FileNotFoundError:
        raise DlxError("model not found.", file=model) from None
    if hashlib.sha256(content).hexdigest() != document["model_sha256"]:
        raise DlxError("this is not the model export.json beside it records (their sha256 differ): an export was "
                       f"interrupted, or a file was replaced. {EXPORT_AGAIN}", file=model)
    return content


def check_graph(content: bytes, model: Path) -> None:
    """Refuse control flow (Loop, If, Scan: any node holding a subgraph), which `dlx export` never writes and which
    could run for as long as its trip count says."""
    try:
        proto = onnx.load_model_from_string(content)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and others: the file is no ONNX model
        raise DlxError(f"this file is not an ONNX model ({_first_line(exc)}). {EXPORT_AGAIN}", file=model) from None
    graph_kinds = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    nodes = [*proto.graph.node, *(node for function in proto.functions for node in function.node)]
    flow = sorted({node.op_type for node in nodes if any(a.type in graph_kinds for a in node.attribute)})
    if flow:
        raise DlxError(f"the model holds control flow ({', '.join(flow)[:200]}), which `dlx export` never writes: "
                       "it is not a dlx export, and it is refused rather than run.", file=model)


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
    """H×W×C float32 pixels in 0–255, converted to the model's channel count (grayscale or RGB). Images of more
    than 8 bits are refused, as `dlx predict` on a run refuses them: 0–255 has no meaning for them."""
    with open_image(file) as image:
        if image.mode.startswith(DEEP_MODES):
            raise DlxError(f"a {image.mode} image (more than 8 bits per channel); save it as an 8-bit image.",
                           file=file)
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
    content = read_model(model, document)
    check_graph(content, model)
    session = _session(content, model)
    classes = list(document["class_names"])

    def chunks():  # CHUNK images at a time: read, predicted, written, before the next are read
        for start in range(0, len(files), CHUNK):
            chunk = files[start:start + CHUNK]
            images = np.stack([read_pixels(f, height, width, channels) for f in chunk])
            names = [str(f.relative_to(input_path)) if input_path.is_dir() else f.name for f in chunk]
            yield names, checked_output(_run(session, document, images, model), len(chunk), len(classes), model)

    rows = collect_predictions(chunks(), classes, None if out is None else Path(out))
    result = {"model": str(model), "members": len(document["source"]["members"]), "class_names": classes,
              "input_contract": {"description": f"float32 pixels in 0–255, {height}×{width}×{channels} (NHWC)"},
              "notices": [], "predictions": rows}
    if out is not None:
        result["out"] = str(out)
    return result


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _failure(exc: Exception, model: Path) -> DlxError:
    return DlxError(f"onnxruntime could not run this model ({_first_line(exc)}); export it again.", file=model)


def _session(content: bytes, model: Path):
    options = ort.SessionOptions()
    options.log_severity_level = 4  # its errors come back as exceptions, said once in dlx's own words
    try:
        return ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types; all mean the file is not a working model
        raise _failure(exc, model) from None


def _run(session, document: dict, images: np.ndarray, model: Path):
    """session.run in a worker thread, so that this one stays free to end it (RunOptions.terminate) when
    RUN_SECONDS pass or Ctrl-C comes: onnxruntime itself never looks at signals."""
    options = ort.RunOptions()
    options.log_severity_level = 4
    outcome: dict = {}

    def work():
        try:
            outcome["value"] = session.run([document["output"]["name"]], {document["input"]["name"]: images},
                                           options)[0]
        except Exception as exc:  # noqa: BLE001 - reported below, in this thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="onnxruntime", daemon=True)
    worker.start()
    try:
        worker.join(RUN_SECONDS)
    finally:
        if worker.is_alive():  # the time is up, or Ctrl-C (KeyboardInterrupt) is on its way up
            options.terminate = True
            worker.join(10)
    if "value" in outcome:
        return outcome["value"]
    if "error" in outcome and not options.terminate:
        raise _failure(outcome["error"], model) from None
    raise DlxError(f"onnxruntime did not finish {len(images)} images within {RUN_SECONDS:g} s and was stopped; a "
                   f"dlx export takes well under a second an image. {EXPORT_AGAIN}", file=model)


def checked_output(values, images: int, classes: int, model: Path) -> np.ndarray:
    """The output as export.json describes it (one probability per class and image: finite, in 0–1, summing to
    1), or a DlxError: a model changed behind its record must not give silently wrong predictions."""
    shape = getattr(values, "shape", None)
    problem = None
    if not isinstance(values, np.ndarray) or values.dtype.kind != "f":
        problem = f"values of type {getattr(values, 'dtype', type(values).__name__)}"
    elif shape != (images, classes):
        problem = f"shape {'×'.join(map(str, shape)) or 'scalar'} for {images} images"
    elif not np.isfinite(values).all():
        problem = "NaN or infinite values"
    elif values.min() < -SUM_TOLERANCE or values.max() > 1 + SUM_TOLERANCE:
        problem = f"values from {float(values.min()):.4g} to {float(values.max()):.4g}, outside 0–1"
    elif np.abs(values.sum(axis=1, dtype=np.float64) - 1).max() > SUM_TOLERANCE:
        problem = "rows that do not sum to 1"
    if problem is not None:
        raise DlxError(f"the model's output is not what export.json records ({images}×{classes} class "
                       f"probabilities): it gave {problem}. The model was changed or damaged. {EXPORT_AGAIN}",
                       file=model)
    return np.clip(values, 0.0, 1.0)
