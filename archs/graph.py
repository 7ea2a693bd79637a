"""Layer nodes → a plan: each step's inputs (earlier steps) and shapes, checked, torch-free.

Wiring, as in a Keras functional model: a node without `inputs:` takes the previous entry's output (the first
takes the model's input, named `input`); the last entry is the output. Refused, each with its key path: an unknown
name, a reference to a later layer (a cycle), a name used twice, shapes a merge layer can't join, and an output
that no later layer uses. The builder turns a plan into modules; a chain's plan is just consecutive steps.
"""
from __future__ import annotations

from dataclasses import dataclass

from dlx.archs.merge import MergeLayer, ShapeMismatch
from dlx.archs.parse import INPUT, LayerNode
from dlx.archs.vocabulary import Residual, describe
from dlx.core.errors import DlxError, did_you_mean

MODEL_INPUT = -1  # the source index of the model's input


@dataclass
class Step:
    node: LayerNode
    label: str  # the node's position for messages: "3", or "3.1" inside a Residual
    sources: tuple[int, ...]  # earlier steps whose outputs it takes; MODEL_INPUT is the model's input
    in_shapes: list[tuple]
    out_shape: tuple
    body: list[Step] | None = None  # a Residual's layers (a chain from the block's input)
    shortcut: list[Step] | None = None  # a Residual's shortcut: the given or the projection layers ([] identity)

    @property
    def layer_input(self):
        """What the layer's `output_shape` and `build` take: the list of input shapes for a merge layer, else the
        one shape."""
        return self.in_shapes if isinstance(self.node.layer, MergeLayer) else self.in_shapes[0]


def is_chain(steps: list[Step]) -> bool:
    """True when every step takes the one before it: a plain nn.Sequential runs it."""
    return all(step.sources == (index - 1,) for index, step in enumerate(steps))


def plan(nodes: list[LayerNode], input_shape: tuple, label_prefix: str = "", graph: bool = True) -> list[Step]:
    """The steps of `nodes` for inputs of `input_shape`. `graph=False` (inside a Residual) refuses `inputs:`."""
    sources = wire(nodes) if graph else [_chain_sources(node, index) for index, node in enumerate(nodes)]
    steps: list[Step] = []
    for index, (node, source) in enumerate(zip(nodes, sources)):
        shapes = [input_shape if s == MODEL_INPUT else steps[s].out_shape for s in source]
        steps.append(_step(node, f"{label_prefix}{index}", source, shapes))
    return steps


def _chain_sources(node: LayerNode, index: int) -> tuple[int, ...]:
    if node.inputs is not None:
        raise DlxError("the layers inside a Residual form a chain and take no 'inputs'; write a branching block "
                       "at the top level with names, 'inputs' and a merge layer such as Add.", key=f"{node.key}.inputs")
    if isinstance(node.layer, MergeLayer):
        raise DlxError(f"{node.type} merges several inputs, but the layers inside a Residual form a chain.",
                       key=node.key)
    return (index - 1,)


def wire(nodes: list[LayerNode]) -> list[tuple[int, ...]]:
    """Each node's source steps, from `name:`/`inputs:`; every output but the last must be used."""
    where: dict[str, int] = {}  # the top-level names, which `inputs:` can refer to
    seen: set[str] = set()  # and those inside Residuals, which must be unique too
    for index, node in enumerate(nodes):
        for name in _names_in(node):
            if name in seen:
                raise DlxError(f"the layer name '{name}' is used twice; names must be unique in the model.",
                               key=f"{node.key}.name")
            seen.add(name)
        if node.name:
            where[node.name] = index
    _check_chains(nodes)
    sources = [_sources(node, index, where) for index, node in enumerate(nodes)]
    used = {s for source in sources for s in source}
    for index, node in enumerate(nodes[:-1]):
        if index not in used:
            what = f"'{node.name}'" if node.name else f"{node.type} (layer {index})"
            raise DlxError(f"the output of {what} is used by no later layer and is not the model's output (the last "
                           f"layer); take it in a later layer's 'inputs', or remove the layer.", key=node.key)
    return sources


def _check_chains(nodes: list[LayerNode]) -> None:
    """Residuals' layers and shortcuts, at any depth, are chains."""
    for node in nodes:
        for chain in (node.children, node.shortcut or []):
            for index, inner in enumerate(chain):
                _chain_sources(inner, index)
            _check_chains(chain)


def _names_in(node: LayerNode) -> list[str]:
    """The names a top-level node defines: its own and those inside its Residual body and shortcut."""
    inner = [n for child in node.children + (node.shortcut or []) for n in _names_in(child)]
    return ([node.name] if node.name else []) + inner


def _sources(node: LayerNode, index: int, where: dict[str, int]) -> tuple[int, ...]:
    count = len(node.inputs) if node.inputs is not None else 1
    if isinstance(node.layer, MergeLayer):
        cls = type(node.layer)
        most = cls.max_inputs or count
        if not cls.min_inputs <= count <= most:
            wanted = f"exactly {most}" if cls.min_inputs == most else f"at least {cls.min_inputs}"
            raise DlxError(f"{node.type} merges {wanted} inputs, given as 'inputs: [a, b]', but got {count}.",
                           key=f"{node.key}.inputs")
    elif count != 1:
        raise DlxError(f"{node.type} takes one input, but 'inputs' names {count}: {node.inputs}; "
                       "join them first with a merge layer such as Add or Concatenate.", key=f"{node.key}.inputs")
    if node.inputs is None:
        return (index - 1,)
    return tuple(_source(name, node, index, where) for name in node.inputs)


def _source(name: str, node: LayerNode, index: int, where: dict[str, int]) -> int:
    if name == INPUT:
        return MODEL_INPUT
    if name in where and where[name] < index:
        return where[name]
    if name in where:
        raise DlxError(f"'inputs' refers to '{name}', which is this layer or comes after it (layer {where[name]}): "
                       "that would be a cycle; a layer can only take the outputs of layers before it.",
                       key=f"{node.key}.inputs")
    known = [INPUT, *(n for n, i in where.items() if i < index)]
    shown = known if len(known) <= 12 else [INPUT, "...", *known[-10:]]  # the nearest layers before it
    raise DlxError(f"'inputs' refers to '{name}', but no layer before this one has that name; the names "
                   f"are: {', '.join(shown)}.{did_you_mean(name, known)}", key=f"{node.key}.inputs")


def _step(node: LayerNode, label: str, sources: tuple, shapes: list[tuple]) -> Step:
    if isinstance(node.layer, Residual):
        return _residual_step(node, label, sources, shapes[0])
    if isinstance(node.layer, MergeLayer):
        try:
            out = node.layer.output_shape(shapes)
        except ShapeMismatch as exc:
            names = node.inputs
            raise DlxError(f"{exc.rule}, but its input '{names[exc.first]}' is {describe(shapes[exc.first])} and "
                           f"'{names[exc.second]}' is {describe(shapes[exc.second])}.", key=node.key) from None
    else:
        check_input(node, label, shapes[0])
        try:
            out = node.layer.output_shape(shapes[0])
        except DlxError as exc:  # a layer's own shape rule (Reshape to another size, ...): placed at the layer
            if exc.key is not None:
                raise
            raise DlxError(exc.message, file=exc.file, key=node.key) from None
    if any(size < 1 for size in out):
        raise DlxError(f"{node.type} (layer {label}) receives {describe(shapes[0])} and would output "
                       f"{describe(out)}: the spatial size shrinks below 1. Use fewer downsampling layers, "
                       "padding: same, or a larger input.", key=node.key)
    return Step(node, label, sources, shapes, out)


def _residual_step(node: LayerNode, label: str, sources: tuple, shape: tuple) -> Step:
    """The body and the shortcut, both chains from the block's input; their outputs must be equal to be added."""
    body = plan(node.children, shape, f"{label}.", graph=False)
    out = body[-1].out_shape
    if node.shortcut is None:
        projection = node.layer.projection(shape, out, node.key)
        shortcut_nodes = [LayerNode(layer, f"{node.key}.shortcut") for layer in projection]
    else:
        shortcut_nodes = node.shortcut
    shortcut = plan(shortcut_nodes, shape, f"{label}.shortcut.", graph=False)
    cut = shortcut[-1].out_shape if shortcut else shape
    if cut != out:
        raise DlxError(f"the Residual's layers output {describe(out)}, but its shortcut outputs {describe(cut)}; "
                       "Add needs equal shapes.", key=f"{node.key}.shortcut")
    return Step(node, label, sources, [shape], out, body, shortcut)


def check_input(node: LayerNode, index_label: str, shape: tuple) -> None:
    wants = type(node.layer).wants
    if wants == "image" and len(shape) != 3:
        raise DlxError(f"{node.type} (layer {index_label}) needs an image input (channels, height, width), "
                       f"but receives flat features {describe(shape)}; move it before Flatten/Dense/global pooling.",
                       key=node.key)
    if wants == "flat" and len(shape) != 1:
        raise DlxError(f"{node.type} (layer {index_label}) needs flat features, but receives an image {describe(shape)}; "
                       "put Flatten or GlobalAveragePooling2D before it.", key=node.key)
