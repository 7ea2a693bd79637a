"""Architectures: the Keras-style layer vocabulary, spec validation, the PyTorch model builder and summaries.

Validating a spec needs no torch, so the names that build models load torch on first use, not on `import archs`.
"""
from archs.check import load_spec, validate_spec
from archs.parse import LayerNode, check_vars_referenced, parse_model
from archs.registry import ACTIVATIONS, LAYERS, PRESETS
from core.lazy import resolve

_WITH_TORCH = {
    "DlxNet": "archs.builder:DlxNet", "LayerRow": "archs.builder:LayerRow", "MAX_PARAMS": "archs.builder:MAX_PARAMS",
    "build_model": "archs.builder:build_model", "count_params": "archs.builder:count_params",
    "keras_shape": "archs.builder:keras_shape", "summarize": "archs.summary:summarize",
    "summary_inputs": "archs.summary:summary_inputs",
}

__all__ = ["ACTIVATIONS", "LAYERS", "MAX_PARAMS", "PRESETS", "DlxNet", "LayerNode", "LayerRow", "build_model",
           "check_vars_referenced", "count_params", "keras_shape", "load_spec", "parse_model", "summarize",
           "summary_inputs", "validate_spec"]


def __getattr__(name: str):
    if name in _WITH_TORCH:
        return resolve(_WITH_TORCH[name])
    raise AttributeError(f"module 'archs' has no attribute '{name}'")
