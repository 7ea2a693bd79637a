"""Layer nodes → a PyTorch model, chaining shapes so every size is inferred (as Keras does)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archs import modules
from archs.parse import LayerNode, parse_model
from archs.vocabulary import Residual, describe
from core.errors import DlxError


@dataclass
class LayerRow:
    """One line of the summary: Keras-style name, type, output shape (channels last) and parameters.

    `params` counts all of the layer's parameters, trainable or not, as Keras's Param # does, so the rows add up
    to the model's total; a Residual's own row ("block" role) has 0: its layers, shortcut and addition follow it."""

    name: str
    type: str
    output_shape: list[int]
    params: int
    non_trainable: int
    depth: int = 0
    role: str = ""  # "block" (a Residual's heading), "shortcut" (its projection), or "" (a layer)


def keras_shape(shape: tuple) -> list[int]:
    return [shape[1], shape[2], shape[0]] if len(shape) == 3 else list(shape)


def count_params(module: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) counted as Keras does: BN moving mean/variance are non-trainable."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    stats = sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))
    return trainable, frozen + stats


class _Namer:
    """Keras's automatic names: conv2d, conv2d_1, batch_normalization, ..."""

    def __init__(self):
        self.seen: dict[str, int] = {}

    def __call__(self, type_name: str) -> str:
        base = "".join("_" + c.lower() if c.isupper() and i and not type_name[i - 1].isupper() and not type_name[i - 1].isdigit() else c.lower()
                       for i, c in enumerate(type_name))
        n = self.seen.get(base, 0)
        self.seen[base] = n + 1
        return base if n == 0 else f"{base}_{n}"


def _check_input(node: LayerNode, index_label: str, shape: tuple) -> None:
    wants = type(node.layer).wants
    if wants == "image" and len(shape) != 3:
        raise DlxError(f"{node.type} (layer {index_label}) needs an image input (channels, height, width), "
                       f"but receives flat features {describe(shape)}; move it before Flatten/Dense/global pooling.",
                       key=node.key)
    if wants == "flat" and len(shape) != 1:
        raise DlxError(f"{node.type} (layer {index_label}) needs flat features, but receives an image {describe(shape)}; "
                       "put Flatten or GlobalAveragePooling2D before it.", key=node.key)


def _output_shape(node: LayerNode, index_label: str, shape: tuple) -> tuple:
    out = node.layer.output_shape(shape)
    if any(size < 1 for size in out):
        raise DlxError(f"{node.type} (layer {index_label}) receives {describe(shape)} and would output "
                       f"{describe(out)}: the spatial size shrinks below 1. Use fewer downsampling layers, "
                       "padding: same, or a larger input.", key=node.key)
    return out


def _layer_row(name: str, type_name: str, shape: tuple, module: nn.Module | None, depth: int, role: str = "") -> LayerRow:
    trainable, non_trainable = count_params(module) if module is not None else (0, 0)
    return LayerRow(name, type_name, keras_shape(shape), trainable + non_trainable, non_trainable, depth, role)


def _build_residual(node: LayerNode, label: str, shape: tuple, namer: _Namer, rows: list[LayerRow],
                    depth: int) -> tuple[nn.Module, tuple]:
    """A Residual as a Keras functional model summarises it: a heading row, then the body's layers, the shortcut's
    projection, the addition and the activation after it, one row each."""
    block: Residual = node.layer
    heading = _layer_row(namer("Residual"), "Residual", shape, None, depth, role="block")
    rows.append(heading)
    body, out = build_layers(node.children, shape, namer, rows, depth + 1, f"{label}.")
    shortcut_nodes = [LayerNode(layer, f"{node.key}.shortcut") for layer in block.shortcut(shape, out, node.key)]
    shortcut_rows: list[LayerRow] = []
    shortcut, _ = build_layers(shortcut_nodes, shape, namer, shortcut_rows, depth + 1, f"{label}.shortcut.")
    for row in shortcut_rows:
        row.role = "shortcut"
    rows.extend(shortcut_rows)
    rows.append(_layer_row(namer("Add"), "Add", out, None, depth + 1))
    post = modules.activation(block.activation)
    if block.activation is not None:
        rows.append(_layer_row(namer("Activation"), "Activation", out, post, depth + 1))
    heading.output_shape = keras_shape(out)
    return modules.Residual(nn.Sequential(*body), modules.chain(*shortcut) if shortcut else nn.Identity(), post), out


def build_layers(nodes: list[LayerNode], shape: tuple, namer: _Namer, rows: list[LayerRow],
                 depth: int = 0, prefix: str = "") -> tuple[list[nn.Module], tuple]:
    """Each node's module for the shape the one before it outputs, and a summary row per layer."""
    built = []
    for index, node in enumerate(nodes):
        label = f"{prefix}{index}"
        if isinstance(node.layer, Residual):  # a block of nodes, not one layer: its shape comes from its body
            module, out = _build_residual(node, label, shape, namer, rows, depth)
        else:
            _check_input(node, label, shape)
            out = _output_shape(node, label, shape)
            module = node.layer.build(shape)
            rows.append(_layer_row(namer(node.type), node.type, out, module, depth))
        built.append(module)
        shape = out
    return built, shape


def as_output(nodes: list[LayerNode]) -> list[LayerNode]:
    """The nodes with the last one as the model's output layer (which emits logits: see `Layer.as_output`)."""
    if not nodes:
        return nodes
    last = nodes[-1]
    layer = last.layer.as_output()
    return nodes[:-1] + ([] if layer is None else [LayerNode(layer, last.key, last.children)])


class DlxNet(nn.Module):
    """A built layer list. `summary` rows and the input shape travel with it."""

    def __init__(self, layers: list[nn.Module], input_shape: tuple, output_shape: tuple, rows: list[LayerRow]):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.input_shape, self.output_shape, self.rows = tuple(input_shape), tuple(output_shape), rows

    def forward(self, x):
        return self.layers(x)


MAX_PARAMS = 500_000_000  # weights, gradients and Adam's two moments of this many floats already need 8 GB


def build_model(model_spec, input_shape: tuple, classes: int | None = None) -> DlxNet:
    """Build the spec's model for inputs of `input_shape` (channels first) and `classes` outputs.

    The model is first laid out on the meta device (no memory), so an absurd size is refused before
    anything is allocated."""
    nodes = as_output(parse_model(model_spec, classes))
    with torch.device("meta"):
        probe, _ = build_layers(nodes, tuple(input_shape), _Namer(), [])
    total = sum(p.numel() for module in probe for p in module.parameters())
    if total > MAX_PARAMS:
        raise DlxError(f"the model would have {total:,} parameters, more than the {MAX_PARAMS:,} dlx builds; "
                       "use fewer filters/units or more pooling.", key="model.layers")
    rows: list[LayerRow] = []
    layers, out = build_layers(nodes, tuple(input_shape), _Namer(), rows)
    if classes is not None and out != (classes,):
        raise DlxError(f"the model outputs {describe(out)}, but the dataset has {classes} classes; "
                       "end with 'Dense: {units: classes}' (after Flatten or global pooling).", key="model.layers")
    return DlxNet(layers, input_shape, out, rows)
