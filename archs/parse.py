"""Layer lists (YAML) → validated layer nodes, torch-free.

Accepted item forms, as in Keras: `- Flatten`, `- BatchNormalization: {}`, `- Dropout: 0.5`,
`- Conv2D: [32, 3]` (positional), `- Conv2D: {filters: 32, kernel_size: 3, activation: relu}`.
`${name}` references `model.vars`; `when: <bool>` (in the arguments or beside the layer) drops a
layer when false; `Repeat` is expanded here, so nodes hold only concrete layers and `Residual`s.

Graphs: any item may carry `name:` (unique) and `inputs:` (a name, or a list for merge layers), in its arguments
or beside the layer; `archs.graph` wires them. Names inside a `Repeat` get the copy's number as a suffix
(`a` → `a_1`, `a_2`, ...), and references to them inside the copy follow.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

import dlx.archs.keras_layers  # registers ZeroPadding2D, ReLU, Reshape, Conv2DTranspose, ...
import dlx.archs.merge  # noqa: F401 - registers the merge layers
import dlx.archs.vocabulary as vocabulary  # noqa: PLR0402 - registers the layers; `from archs` would loop via __init__
from dlx.archs.expressions import referenced_names, substitute
from dlx.archs.registry import LAYERS, PRESETS
from dlx.core.errors import DlxError, did_you_mean
from dlx.experiment.load import choice_hint, key_path
from dlx.experiment.yamlio import load_yaml_mapping

MAX_LAYERS = 10_000
INPUT = "input"  # the model input's name in `inputs:`
WIRING = ("when", "name", "inputs")  # keys that may sit beside a layer's arguments
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


@dataclass
class LayerNode:
    layer: vocabulary.Layer
    key: str  # where it came from, e.g. "model.layers[3].Conv2D"
    children: list[LayerNode] = field(default_factory=list)  # Residual's body
    name: str | None = None  # `name:`, unique in the model
    inputs: list[str] | None = None  # `inputs:`; None takes the previous entry's output
    shortcut: list[LayerNode] | None = None  # Residual's `shortcut:` layers ([] is the identity)

    @property
    def type(self) -> str:
        return type(self.layer).__name__


@dataclass
class _Context:
    """What every item of one model's layer list is parsed with."""

    variables: dict  # model.vars, for ${...}
    classes: int | None  # the dataset's number of classes; None keeps `units: classes` symbolic
    count: int = 0  # layers parsed so far, against MAX_LAYERS


def resolve_model(model) -> tuple[list, dict, str]:
    """(raw layer list, vars, key prefix) from a ModelSpec, loading a preset when named."""
    if model.preset is None:
        return model.layers, dict(model.vars), "model.layers"
    name = PRESETS.canonical(model.preset, key="model.preset")
    preset = load_yaml_mapping(PRESETS.get(name), "preset")
    variables = {**preset.get("vars", {}), **model.vars}
    check_limits(preset.get("limits", {}), variables, name)
    return preset["layers"], variables, f"preset:{name}.layers"


_KINDS = {"int": "a whole number", "number": "a number"}
_BOUNDS = {"gt": ("above", lambda v, b: v > b), "ge": ("at least", lambda v, b: v >= b),
           "lt": ("below", lambda v, b: v < b), "le": ("at most", lambda v, b: v <= b)}


def check_limits(limits: dict, variables: dict, preset: str) -> None:
    """Each var a preset limits is of its type (true/false is no number) and within its bounds: a value that
    would still build (make_divisible turns alpha -1 into 8 channels) builds some other model than the preset's."""
    for name, rule in limits.items():
        value = variables.get(name)
        kind = rule.get("type", "number")
        fits = isinstance(value, (int, float) if kind == "number" else int) and not isinstance(value, bool)
        if fits and all(test(value, rule[bound]) for bound, (_, test) in _BOUNDS.items() if bound in rule):
            continue
        wanted = " ".join([_KINDS[kind], " and ".join(f"{word} {rule[bound]}" for bound, (word, _) in
                                                        _BOUNDS.items() if bound in rule)]).strip()
        raise DlxError(f"the preset {preset}'s var '{name}' must be {wanted}, but got {value!r}.",
                       key=f"model.vars.{name}")


def parse_model(model, classes: int | None = None) -> list[LayerNode]:
    """The model's layer nodes; with `classes`, `units: classes` becomes that number (the builder's nodes)."""
    layers, variables, prefix = resolve_model(model)
    return parse_layers(layers, _Context(variables, classes), prefix)


def check_vars_referenced(names, model, key: str = "model.vars") -> None:
    """A var that no layer references (a misspelling, say) would change nothing, silently: refuse it. References
    count wherever they sit: in the preset's layers, and in layers a `when` drops or a Repeat repeats 0 times."""
    used = referenced_names(resolve_model(model)[0])
    for name in names:
        if name not in used:
            raise DlxError(f"no layer references the var '{name}' (as ${{{name}}}), so setting or varying it would "
                           f"change nothing; the layers reference: {', '.join(sorted(used)) or 'no vars'}."
                           f"{did_you_mean(name, used)}", key=f"{key}.{name}")


def parse_layers(items: Any, context: _Context, key: str) -> list[LayerNode]:
    if not isinstance(items, list):
        raise DlxError(f"expected a list of layers, got {type(items).__name__}.", key=key)
    nodes: list[LayerNode] = []
    for index, item in enumerate(items):
        nodes.extend(parse_item(item, context, f"{key}[{index}]"))
    return nodes


def _split_item(item: Any, key: str) -> tuple[str, Any, dict]:
    """(layer name, raw arguments, the `when`/`name`/`inputs` written beside the layer) of one list item."""
    if isinstance(item, str):
        return item, None, {}
    if isinstance(item, dict):
        names = [k for k in item if k not in WIRING]
        if len(names) == 1:
            return names[0], item[names[0]], {k: item[k] for k in WIRING if k in item}
        raise DlxError(f"each layer item is one 'LayerName: arguments' pair, got keys {list(item)}.", key=key)
    raise DlxError(f"expected a layer such as 'Conv2D: [32, 3]', got {item!r}.", key=key)


def _arguments(cls, raw: Any, key: str) -> dict:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return dict(raw)
    values = raw if isinstance(raw, list) else [raw]
    names = cls.positional
    if len(values) > len(names):
        raise DlxError(f"{cls.__name__} takes at most {len(names)} positional argument(s) "
                       f"({', '.join(names) or 'none'}), got {len(values)}: {values!r}.", key=key)
    return dict(zip(names, values))


def _validate(cls, args: dict, key: str) -> vocabulary.Layer:
    """The layer from its arguments; pydantic's first complaint becomes one DlxError at the argument's key."""
    try:
        return cls.model_validate(args)
    except ValidationError as exc:
        error = max(exc.errors(), key=lambda e: len(e["loc"]))  # the most specific: kernel_size.1 of [3, -1]
        where = ".".join(str(p) for p in key_path(error["loc"]))
        if error["type"] == "extra_forbidden":
            known = [n for n in cls.model_fields]
            message = f"{cls.__name__} has no argument '{where}'; its arguments are: {', '.join(known)}.{did_you_mean(where, known)}"
        elif error["type"] == "missing":
            message = f"{cls.__name__} needs '{where}'."
        else:
            message = error["msg"].removeprefix("Value error, ")
            message = message[0].lower() + message[1:] + f" (got {error.get('input')!r})." + choice_hint(error)
        raise DlxError(message, key=f"{key}.{where}" if where else key) from None


def parse_item(item: Any, context: _Context, key: str) -> list[LayerNode]:
    context.count += 1
    if context.count > MAX_LAYERS:
        raise DlxError(f"the model has more than {MAX_LAYERS} layers; refusing to build it.", key=key)
    name, raw, beside = _split_item(item, key)
    cls = LAYERS.get(name, key=key)
    key = f"{key}.{cls.__name__}"
    args = {**substitute(beside, context.variables, key),
            **substitute(_arguments(cls, raw, key), context.variables, key)}
    when = args.pop("when", True)
    if not isinstance(when, bool):
        raise DlxError(f"'when' must be true or false, got {when!r}.", key=f"{key}.when")
    if not when:
        return []
    wiring = _wiring(args.pop("name", None), args.pop("inputs", None), key)
    layer = _validate(cls, args, key)
    if isinstance(layer, vocabulary.Repeat):
        if any(wiring.values()):
            raise DlxError("a Repeat takes no 'name' or 'inputs'; give them to the layers inside it.", key=key)
        return [node for copy in range(layer.times)
                for node in _suffixed(parse_layers(layer.layers, context, f"{key}.layers"), f"_{copy + 1}")]
    node = LayerNode(layer if context.classes is None else layer.with_classes(context.classes), key, **wiring)
    if isinstance(layer, vocabulary.Residual):
        node.children = parse_layers(layer.layers, context, f"{key}.layers")
        if not node.children:
            raise DlxError("Residual needs at least one layer in 'layers' (all were removed by 'when').", key=key)
        if layer.shortcut is not None:
            node.shortcut = parse_layers(layer.shortcut, context, f"{key}.shortcut")
    return [node]


def _wiring(name: Any, inputs: Any, key: str) -> dict:
    """`name` and `inputs` checked: names are identifiers (`input` is the model's own)."""
    if name is not None and (not isinstance(name, str) or not _NAME.fullmatch(name) or name == INPUT):
        raise DlxError(f"a layer name must be a word of letters, digits, '_', '.' or '-' starting with a letter "
                       f"or '_', and not '{INPUT}' (the model's input), but got {name!r}.", key=f"{key}.name")
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
            raise DlxError(f"'inputs' must be a layer name or a list of them (the model's input is '{INPUT}'), "
                           f"but got {inputs!r}.", key=f"{key}.inputs")
    return {"name": name, "inputs": inputs}


def _defined(nodes: list[LayerNode]) -> set[str]:
    """The names the nodes define, inside Residuals too."""
    names = set()
    for node in nodes:
        names |= {node.name} if node.name else set()
        names |= _defined(node.children) | _defined(node.shortcut or [])
    return names


def _suffixed(nodes: list[LayerNode], suffix: str, names: set[str] | None = None) -> list[LayerNode]:
    """One Repeat copy: the names it defines, and the references to them, get the copy's suffix."""
    names = _defined(nodes) if names is None else names

    def rename(name):
        return f"{name}{suffix}" if name in names else name
    return [replace(node, name=node.name and rename(node.name),
                    inputs=node.inputs and [rename(i) for i in node.inputs],
                    children=_suffixed(node.children, suffix, names),
                    shortcut=node.shortcut and _suffixed(node.shortcut, suffix, names)) for node in nodes]
