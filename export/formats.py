"""Each export format: how the graph is written (torch.onnx, torch.jit, torch.export) and how its own runtime
(onnxruntime, torch.jit.load, torch.export.load) loads it back to predict."""
from __future__ import annotations

import errno
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from dlx.core.errors import DlxError
from dlx.core.lazy import lazy_module
from dlx.core.registry import Registry

ort = lazy_module("onnxruntime")

INPUT, OUTPUT = "images", "probabilities"
OPSET = 18  # the lowest opset torch.onnx's exporter writes without converting down
FORMATS = Registry("export format")


@dataclass(frozen=True)
class Format:
    """A format's file name, writer (graph, example input, path) and loader (path → numpy function)."""

    file: str
    write: Callable
    load: Callable
    exporter: str  # the package whose version export.json records


def _batch():
    return {"images": {0: torch.export.Dim("batch", min=1, max=1 << 20)}}


def _write_onnx(graph, example, path: Path) -> None:
    program = torch.onnx.export(graph, (example,), dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
                                dynamic_shapes=_batch(), opset_version=OPSET, verbose=False)
    program.save(str(path))


def _load_onnx(path: Path):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda images: session.run([OUTPUT], {INPUT: images})[0]


def _write_torchscript(graph, example, path: Path) -> None:
    with warnings.catch_warnings():  # torch.jit is deprecated in favour of pt2, but C++ programs still load it
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.trace(graph, example), str(path))


def _load_torchscript(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    return lambda images: module(torch.from_numpy(images)).detach().numpy()


def _write_pt2(graph, example, path: Path) -> None:
    torch.export.save(torch.export.export(graph, (example,), dynamic_shapes=_batch()), str(path))


def _load_pt2(path: Path):
    module = torch.export.load(str(path)).module()
    return lambda images: module(torch.from_numpy(images)).detach().numpy()


FORMATS.register("onnx", Format("model.onnx", _write_onnx, _load_onnx, "onnx"))
FORMATS.register("torchscript", Format("model.ts", _write_torchscript, _load_torchscript, "torch"))
FORMATS.register("pt2", Format("model.pt2", _write_pt2, _load_pt2, "torch"))


def write(name: str, graph, example: torch.Tensor, path: Path) -> None:
    """Write `graph` in format `name`; an exporter's failure is a DlxError naming the layer it stopped at."""
    try:
        with torch.no_grad():
            FORMATS.get(name, key="--format").write(graph, example, path)
    except DlxError:
        raise
    except Exception as exc:  # exporters raise many types; each means "this graph can't be written so"
        failed = os_error_in(exc)
        if failed is not None:  # the disk, not the format: a full disk, a quota, a read-only folder
            raise disk_error(failed, path.parent) from None
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        others = ", ".join(n for n in FORMATS.names() if n != name)
        raise DlxError(f"the {name} exporter could not write this model: {first[:300]} (while exporting "
                       f"{_layers(graph)}). Try another format ({others}).", key="--format") from None


DISK_WORDS = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
              "Read-only file system": errno.EROFS, "file write failed": None}


def os_error_in(exc: BaseException) -> Optional[OSError]:
    """The OSError behind an exporter's failure (exporters wrap them: torch.save in a RuntimeError whose text
    alone says "No space left on device"), or None when the failure is the graph's."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError):
            return exc
        text = str(exc)
        word = next((w for w in DISK_WORDS if w in text), None)
        if word is not None:
            return OSError(DISK_WORDS[word], word)
        exc = exc.__cause__ or exc.__context__
    return None


def disk_error(exc: OSError, folder: Path) -> DlxError:
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc)
    reason = "the disk is full" if full else f"the file can't be written ({exc.strerror or exc})"
    return DlxError(f"{reason}: the exported model could not be written into this folder, and an earlier export "
                    "there was left as it was. Free some space (or choose another --out) and export again.",
                    file=folder)


def _layers(graph) -> str:
    kinds = sorted({type(m).__name__ for net in graph.networks for m in net.modules() if not list(m.children())})
    return "layers " + ", ".join(kinds)


def run(name: str, path: Path, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Probabilities from the written file, loaded back in its format's own runtime."""
    predict = FORMATS.get(name, key="--format").load(path)
    with torch.no_grad():
        parts = [predict(np.ascontiguousarray(images[i:i + batch_size])) for i in range(0, len(images), batch_size)]
    return np.concatenate(parts).astype(np.float32)
