"""Architectures: the Keras-style layer vocabulary, spec validation, the PyTorch model builder and summaries.

Validating a spec needs no torch, so the names that build models load torch on first use, not on `import archs`.
"""
from dlx.archs.check import load_spec, validate_spec
from dlx.archs.parse import LayerNode, check_vars_referenced, parse_model
from dlx.archs.registry import ACTIVATIONS, LAYERS, PRESETS
from dlx.core.lazy import lazy_attributes

__getattr__, _WITH_TORCH = lazy_attributes(__name__, {
    "dlx.archs.builder": ["DlxNet", "LayerRow", "MAX_PARAMS", "build_model", "count_params", "keras_shape"],
    "dlx.archs.summary": ["summarize", "summary_inputs"],
    # torch-free until keras_spec checks the spec it makes; loaded by `dlx import` only
    "dlx.archs.keras_import": ["KerasImport", "import_keras", "keras_spec", "spec_yaml", "write_spec"],
})

__all__ = ["ACTIVATIONS", "LAYERS", "PRESETS", "LayerNode", "check_vars_referenced", "load_spec", "parse_model",
           "validate_spec", *_WITH_TORCH]
