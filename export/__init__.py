"""Export a run or an ensemble as one graph from image pixels to probabilities (`export_model`: ONNX,
TorchScript, torch.export), and predict with an exported ONNX model without torch (`predict_onnx`).

Names load on first use (PEP 562), so that `dlx predict model.onnx` never imports torch."""
from __future__ import annotations

from dlx.core.lazy import lazy_attributes

_WHERE = {
    "dlx.export.api": ["export_model"],
    "dlx.export.runtime": ["FORMAT_NAMES", "predict_onnx"],
}
__getattr__, __all__ = lazy_attributes(__name__, _WHERE)
