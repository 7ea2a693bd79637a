"""Registries of layer types and activations: YAML names → classes, with did-you-mean on a miss."""
from __future__ import annotations

from core.errors import unknown_name

LAYERS: dict[str, type] = {}
ACTIVATIONS = ("relu", "gelu", "silu", "swish", "elu", "selu", "tanh", "sigmoid", "leaky_relu", "softmax", "linear")


def register_layer(cls: type) -> type:
    """Class decorator: make a layer available in YAML under its Keras class name."""
    LAYERS[cls.__name__] = cls
    return cls


def layer_class(name: str, key: str) -> type:
    if name in LAYERS:
        return LAYERS[name]
    folded = {n.lower(): c for n, c in LAYERS.items()}
    if str(name).lower() in folded:
        return folded[str(name).lower()]
    raise unknown_name("layer type", name, LAYERS, key=key)
