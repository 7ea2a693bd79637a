"""Export a run or an ensemble as one graph from image pixels to probabilities (`export_model`: ONNX,
TorchScript, torch.export), and predict with an exported ONNX model without torch (`predict_onnx`).

Names load on first use (PEP 562), so that `dlx predict model.onnx` never imports torch."""
from __future__ import annotations

from core.lazy import lazy_attributes

_WHERE = {
    "export.api": ["export_model"],
    "export.runtime": ["FORMAT_NAMES", "predict_onnx"],
}
__getattr__, __all__ = lazy_attributes(__name__, _WHERE)
