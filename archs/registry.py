"""What YAML names resolve to: layer types, activations and presets, each a `core.registry.Registry`, so names
match case-insensitively and a miss raises the one did-you-mean error. Torch-free."""
from __future__ import annotations

from pathlib import Path

from dlx.core.registry import Registry

LAYERS: Registry[type] = Registry("layer type", key="model.layers")  # filled by archs.vocabulary

# Activation name → (torch.nn class name or None for no module, its arguments). The one list of activations:
# the vocabulary validates names against it and archs.modules builds from it.
ACTIVATIONS: Registry[tuple[str | None, dict]] = Registry("activation")
for _name, _module in [("relu", ("ReLU", {})), ("gelu", ("GELU", {})), ("silu", ("SiLU", {})),
                       ("swish", ("SiLU", {})), ("elu", ("ELU", {})), ("selu", ("SELU", {})), ("tanh", ("Tanh", {})),
                       ("sigmoid", ("Sigmoid", {})),
                       ("leaky_relu", ("LeakyReLU", {"negative_slope": 0.2})),  # Keras 3's default slope
                       ("softmax", ("Softmax", {"dim": 1})), ("linear", (None, {}))]:
    ACTIVATIONS.register(_name, _module)

PRESET_DIR = Path(__file__).parent / "presets"
PRESETS: Registry[Path] = Registry("preset", key="model.preset")  # name → YAML file of layers and vars
for _path in sorted(PRESET_DIR.glob("*.yaml")):
    PRESETS.register(_path.stem, _path)
