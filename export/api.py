"""`dlx export`: a run or an ensemble folder as one ONNX, TorchScript or torch.export graph from image pixels to
class probabilities, with `export.json` beside it, verified in the format's own runtime on the run's test split."""
from __future__ import annotations

import hashlib
import os
from importlib import metadata
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from dlx.core.errors import DlxError
from dlx.core.files import (atomic_write_json, fsync_dir, read_json, refuse_unless_replaceable,
                            temporary_beside)
from dlx.ensemble import load_model
from dlx.export import formats
from dlx.export.graph import ExportGraph, byte_factor
from dlx.train import InputContract, load_run_model, load_splits
from dlx.train.outdir import MARKER, claim, write_marker

TOLERANCE = 1e-4  # largest |exported − eager| probability accepted


def _version(package: str) -> Optional[str]:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def build_graph(source: str | Path) -> tuple[ExportGraph, object, float]:
    """(graph, the EnsembleModel it reproduces, the pixel → raw-value factor of its inputs)."""
    model = load_model(source)
    active = model.active()
    members = [model.members[i] for i in active]
    factors = [byte_factor(InputContract.from_record(m.record, m.checkpoint), m.checkpoint) for m in members]
    networks = [load_run_model(m.run_dir)[0].float() for m in members]
    combination = model.combination
    weights = None if combination.combiner is not None else combination.weights[active]
    graph = ExportGraph(networks, [m.record for m in members], factors, [model.temperatures[i] for i in active],
                        weights, combination.combiner, combination.temperature)
    return graph.eval(), model, factors[0]


VERIFY_CHUNK = 1024  # test images converted and compared at a time: a large test split is never held whole


def split_chunks(model, factor: float, size: int = VERIFY_CHUNK):
    """The test split, `size` samples at a time, as (N×H×W×C pixels in 0–255, the same as the raw × scale values
    `model.predict` takes)."""
    raw_split = load_splits(model.members[0].spec.data).x["test"]
    scale = np.float32(model.members[0].record["scale"])
    for start in range(0, len(raw_split), size):
        raw = np.asarray(raw_split[start:start + size], dtype=np.float32)
        yield np.ascontiguousarray((raw / np.float32(factor)).transpose(0, 2, 3, 1)), raw * scale


def verify(fmt: str, path: Path, model, factor: float, shown: Optional[Path] = None) -> dict:
    """Exported probabilities, from the format's runtime, against eager PyTorch (`dlx predict`'s path), chunk by
    chunk over the test split."""
    difference, agree, samples = 0.0, 0, 0
    for images, unit in split_chunks(model, factor):
        with torch.inference_mode():
            eager = model.predict(unit)
        exported = formats.run(fmt, path, images)
        difference = max(difference, float(np.abs(exported - eager).max()))
        agree += int((exported.argmax(1) == eager.argmax(1)).sum())
        samples += len(eager)
    result = {"split": "test", "samples": samples, "max_abs_difference": difference, "tolerance": TOLERANCE,
              "same_class": agree}
    if difference > TOLERANCE or agree != samples:
        raise DlxError(f"the exported {fmt} model disagrees with PyTorch on the test split: probabilities differ by "
                       f"up to {difference:.3g} (allowed {TOLERANCE}) and {samples - agree} of {samples} "
                       "predicted classes differ. Try another format.", file=shown or path)
    return result


def describe(fmt: str, model, source: Path, file: str) -> dict:
    """export.json's content, less the verification."""
    channels, height, width = model.input_shape
    members = [{"run": str(m.run_dir), "checkpoint_sha256": m.sha256, "weight": float(w), "temperature": float(t)}
               for m, w, t in zip(model.members, model.combination.weights, model.temperatures)]
    single = model.method == "single"
    exporter = formats.FORMATS.get(fmt).exporter
    return {"format": fmt, "file": file,
            "input": {"name": formats.INPUT, "shape": ["batch", height, width, channels], "layout": "NHWC",
                      "dtype": "float32", "range": [0, 255], "description": "pixel values as decoded from image "
                      "files; preprocessing (scaling, mean/std) is inside the graph"},
            "output": {"name": formats.OUTPUT, "shape": ["batch", len(model.class_names)], "dtype": "float32"},
            "class_names": model.class_names,
            "source": {"kind": "run" if single else "ensemble", "path": str(source), "method": model.method,
                       "members": members,
                       "output_temperature": model.combination.temperature},
            "checkpoint_sha256": members[0]["checkpoint_sha256"] if single else [m["checkpoint_sha256"]
                                                                                   for m in members],
            "opset": formats.OPSET if fmt == "onnx" else None,
            "versions": {"dlx": _version("dlx"), "torch": torch.__version__, exporter: _version(exporter)}}


RECORD = "export.json"


def export_model(source: str | Path, fmt: str = "onnx", out: Optional[str | Path] = None) -> dict:
    """Write SOURCE (a run or ensemble folder) as `fmt` into `out` (default SOURCE/export/FORMAT) with export.json;
    returns export.json's content. Raises DlxError when the model can't be exported or fails verification.

    The folder is an output folder of kind "export" (train.outdir: refused if it holds anything else, locked while
    written). The model is written under a temporary name and verified there; only then does it replace the old
    one, and export.json, recording its sha256, comes last, so `dlx predict` never trusts a model its record does
    not describe."""
    fmt = formats.FORMATS.canonical(fmt, key="--format")
    source = Path(source)
    graph, model, factor = build_graph(source)
    folder = Path(out) if out is not None else source / "export" / fmt
    file = formats.FORMATS.get(fmt).file
    adopt_unmarked_export(folder)
    with claim(folder, "export") as held:
        held.mark()
        for leftover in folder.glob(f".{file}.*.tmp"):  # a killed export's: none is running, the folder is locked
            leftover.unlink(missing_ok=True)
        for target in (folder / file, folder / RECORD):
            refuse_unless_replaceable(target)
        document = describe(fmt, model, source, file)
        staged = stage(folder / file)
        try:
            document["model_sha256"], document["verification"] = write_verified(fmt, graph, model, factor, staged,
                                                                                folder / file)
            publish(staged, folder / file, document)
        finally:
            staged.unlink(missing_ok=True)
    return {**document, "out": str(folder)}


def stage(target: Path) -> Path:
    """A new temporary file beside `target` (a hidden `.tmp` name no reader takes for a model) to export into."""
    fd, name = temporary_beside(target)
    os.close(fd)
    return Path(name)


def write_verified(fmt: str, graph, model, factor: float, staged: Path, target: Path) -> tuple[str, dict]:
    """(sha256, verification) of the model written to `staged`, on disk for good (fsync) and checked in its
    runtime; errors name `target`, the file it becomes."""
    channels, height, width = model.input_shape
    example = torch.rand(2, height, width, channels) * 255
    formats.write(fmt, graph, example, staged)
    try:
        digest = sync_and_hash(staged)
    except OSError as exc:
        raise formats.disk_error(exc, staged.parent) from None
    return digest, verify(fmt, staged, model, factor, shown=target)


def sync_and_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
        os.fsync(handle.fileno())
    return digest.hexdigest()


def publish(staged: Path, target: Path, document: dict) -> None:
    """The verified model in place, then its record: the old record goes first, so no moment holds a record
    beside a model it does not describe."""
    record = target.parent / RECORD
    try:
        record.unlink(missing_ok=True)
        os.replace(staged, target)
        fsync_dir(target.parent)
        atomic_write_json(record, document)
    except OSError as exc:
        raise formats.disk_error(exc, target.parent) from None


def is_export_record(document) -> bool:
    """Whether `document` is an export.json that `dlx export` wrote (its format, file and dlx version)."""
    return isinstance(document, dict) and document.get("format") in formats.FORMATS.names() \
        and document.get("file") == formats.FORMATS.get(document["format"]).file \
        and isinstance(document.get("versions"), dict) and "dlx" in document["versions"]


def adopt_unmarked_export(folder: Path) -> None:
    """An export folder written before folders carried markers (export.json as `dlx export` writes it, beside
    nothing but model files) becomes an "export" folder; anything else is left for `claim` to judge."""
    try:
        names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    except OSError:
        return
    models = {formats.FORMATS.get(name).file for name in formats.FORMATS.names()}
    if MARKER in names or RECORD not in names or not names <= {RECORD, *models}:
        return
    try:
        document = read_json(folder / RECORD)
    except DlxError:
        return
    if is_export_record(document):
        write_marker(folder, "export")
