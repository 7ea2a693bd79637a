"""Layer nodes → a PyTorch model: `archs.graph` plans the wiring and every shape (as Keras infers them), this
module builds each step's module and a summary row per layer."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from dlx.archs import modules
from dlx.archs.graph import MODEL_INPUT, Step, is_chain, plan
from dlx.archs.merge import Identity
from dlx.archs.parse import INPUT, LayerNode, parse_model
from dlx.archs.vocabulary import describe
from dlx.core.errors import DlxError


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
    inputs: list[str] = field(default_factory=list)  # the rows (or "input") whose outputs it takes: "Connected to"
    flops: int = 0  # multiply-adds ×2 of its convolutions and dense layers, for one image


def keras_shape(shape: tuple) -> list[int]:
    return [shape[1], shape[2], shape[0]] if len(shape) == 3 else list(shape)


def count_params(module: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) counted as Keras does: BN moving mean/variance are non-trainable."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    stats = sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))
    return trainable, frozen + stats


def snake_case(type_name: str) -> str:
    """A layer type as Keras names its instances: Conv2D → conv2d, Conv2DTranspose → conv2d_transpose, ReLU → re_lu
    (an underscore before each capitalised word, and between a lower-case letter and a capital)."""
    words = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", type_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", words).lower()


class _Namer:
    """Keras's automatic names: conv2d, conv2d_1, batch_normalization, ...; skipping the names the spec gives."""

    def __init__(self, taken: set[str] = frozenset()):
        self.seen: dict[str, int] = {}
        self.taken = taken

    def __call__(self, type_name: str) -> str:
        base = snake_case(type_name)
        while True:
            n = self.seen.get(base, 0)
            self.seen[base] = n + 1
            name = base if n == 0 else f"{base}_{n}"
            if name not in self.taken:
                return name


def _given_names(steps: list[Step]) -> set[str]:
    inner = [step for outer in steps for step in (outer.body or []) + (outer.shortcut or [])]
    return {step.node.name for step in steps if step.node.name} | (_given_names(inner) if inner else set())


def layer_flops(module: nn.Module | None, out_shape: tuple) -> int:
    """Multiply-adds ×2 for one image of a layer's convolutions (each outputs the layer's height and width) and
    dense layers, from their weights and the inferred shape: no forward pass, so ResNet50 counts in milliseconds."""
    pixels = math.prod(out_shape[1:]) if len(out_shape) == 3 else 1
    total = 0
    for part in module.modules() if module is not None else []:
        if isinstance(part, nn.Conv2d):
            total += 2 * part.weight[0].numel() * part.out_channels * pixels
        elif isinstance(part, nn.Linear):
            total += 2 * part.in_features * part.out_features
    return total


def _layer_row(name: str, type_name: str, shape: tuple, module: nn.Module | None, depth: int, role: str = "",
               inputs: list[str] | None = None) -> LayerRow:
    trainable, non_trainable = count_params(module) if module is not None else (0, 0)
    return LayerRow(name, type_name, keras_shape(shape), trainable + non_trainable, non_trainable, depth, role,
                    inputs or [], layer_flops(module, shape))


def _build_residual(step: Step, namer: _Namer, rows: list[LayerRow], depth: int, entry: str) -> tuple[nn.Module, str]:
    """A Residual as a Keras functional model summarises it: a heading row, then the body's layers, the shortcut's
    layers, the addition and the activation after it, one row each. Returns the module and its output's row name."""
    block, out = step.node.layer, step.out_shape
    rows.append(_layer_row(step.node.name or namer("Residual"), "Residual", out, None, depth, "block", [entry]))
    body, body_names = build_steps(step.body, namer, rows, depth + 1, entry)
    shortcut_rows: list[LayerRow] = []
    shortcut, shortcut_names = build_steps(step.shortcut, namer, shortcut_rows, depth + 1, entry)
    for row in shortcut_rows:
        row.role = "shortcut"
    rows.extend(shortcut_rows)
    added = namer("Add")
    sources = [body_names[-1], (shortcut_names or [entry])[-1]]
    rows.append(_layer_row(added, "Add", out, None, depth + 1, inputs=sources))
    post = modules.activation(block.activation)
    if block.activation is not None:
        rows.append(_layer_row(namer("Activation"), "Activation", out, post, depth + 1, inputs=[added]))
    module = modules.Residual(nn.Sequential(*body), modules.chain(*shortcut) if shortcut else nn.Identity(), post)
    return module, rows[-1].name


def build_steps(steps: list[Step], namer: _Namer, rows: list[LayerRow], depth: int = 0,
                entry: str = INPUT) -> tuple[list[nn.Module], list[str]]:
    """Each step's module and, per step, the name of the row holding its output; a summary row per layer.
    `entry` names what MODEL_INPUT stands for (the model's input, or a Residual's)."""
    built, out_names = [], []
    for step in steps:
        inputs = [entry if s == MODEL_INPUT else out_names[s] for s in step.sources]
        if step.body is not None:  # a Residual: a block of layers, not one
            module, out_name = _build_residual(step, namer, rows, depth, inputs[0])
        else:
            module = step.node.layer.build(step.layer_input)
            out_name = step.node.name or namer(step.node.type)
            rows.append(_layer_row(out_name, step.node.type, step.out_shape, module, depth, inputs=inputs))
        built.append(module)
        out_names.append(out_name)
    return built, out_names


def as_output(nodes: list[LayerNode]) -> list[LayerNode]:
    """The nodes with the last one as the model's output layer (which emits logits: see `Layer.as_output`). A
    dropped last layer that takes named inputs becomes an Identity, so the graph keeps its output."""
    if not nodes:
        return nodes
    last = nodes[-1]
    layer = last.layer.as_output()
    if layer is None and last.inputs is not None:
        layer = Identity()
    return nodes[:-1] + ([] if layer is None else [replace(last, layer=layer)])


class DlxNet(nn.Module):
    """A built layer list or graph. `summary` rows and the input shape travel with it.

    Each step's module is `layers[i]`, so state-dict keys are `layers.<i>...` either way. A chain runs as the
    nn.Sequential it is; a graph runs a forward generated once from its `sources` (see `modules.compile_schedule`)."""

    def __init__(self, layers: list[nn.Module], input_shape: tuple, output_shape: tuple, rows: list[LayerRow],
                 sources: list[tuple[int, ...]] | None = None):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.input_shape, self.output_shape, self.rows = tuple(input_shape), tuple(output_shape), rows
        self.sources = None if sources is None else [tuple(s) for s in sources]
        self._compile()

    def _compile(self) -> None:
        self._run = None if self.sources is None else modules.compile_schedule(self.sources)

    def __getstate__(self):
        return {**self.__dict__, "_run": None}  # generated code does not pickle: compiled again on load

    def __setstate__(self, state):
        super().__setstate__(state)
        self._compile()

    def forward(self, x):
        if self._run is None:
            return self.layers(x)
        return self._run(list(self.layers), x)


MAX_PARAMS = 500_000_000  # weights, gradients and Adam's two moments of this many floats already need 8 GB


def build_model(model_spec, input_shape: tuple, classes: int | None = None) -> DlxNet:
    """Build the spec's model for inputs of `input_shape` (channels first) and `classes` outputs.

    The model is first laid out on the meta device (no memory), so an absurd size is refused before
    anything is allocated."""
    steps = plan(as_output(parse_model(model_spec, classes)), tuple(input_shape))
    with torch.device("meta"):
        probe, _ = build_steps(steps, _Namer(), [])
    total = sum(p.numel() for module in probe for p in module.parameters())
    if total > MAX_PARAMS:
        raise DlxError(f"the model would have {total:,} parameters, more than the {MAX_PARAMS:,} dlx builds; "
                       "use fewer filters/units or more pooling.", key="model.layers")
    rows: list[LayerRow] = []
    layers, _ = build_steps(steps, _Namer(_given_names(steps)), rows)
    out = steps[-1].out_shape if steps else tuple(input_shape)
    if classes is not None and out != (classes,):
        raise DlxError(f"the model outputs {describe(out)}, but the dataset has {classes} classes; "
                       "end with 'Dense: {units: classes}' (after Flatten or global pooling).", key="model.layers")
    return DlxNet(layers, input_shape, out, rows, None if is_chain(steps) else [s.sources for s in steps])
