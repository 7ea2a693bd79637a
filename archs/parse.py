"""Layer lists (YAML) → validated layer nodes, torch-free.

Accepted item forms, as in Keras: `- Flatten`, `- BatchNormalization: {}`, `- Dropout: 0.5`,
`- Conv2D: [32, 3]` (positional), `- Conv2D: {filters: 32, kernel_size: 3, activation: relu}`.
`${name}` references `model.vars`; `when: <bool>` (in the arguments or beside the layer) drops a
layer when false; `Repeat` is expanded here, so nodes hold only concrete layers and `Residual`s.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

import archs.vocabulary as vocabulary  # noqa: PLR0402 - registers the layers; `from archs` would loop via __init__
from archs.expressions import referenced_names, substitute
from archs.registry import LAYERS, PRESETS
from core.errors import DlxError, did_you_mean
from experiment.yamlio import load_yaml_mapping

MAX_LAYERS = 10_000


@dataclass
class LayerNode:
    layer: vocabulary.Layer
    key: str  # where it came from, e.g. "model.layers[3].Conv2D"
    children: list[LayerNode] = field(default_factory=list)  # Residual's body

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
    return preset["layers"], {**preset.get("vars", {}), **model.vars}, f"preset:{name}.layers"


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


def _split_item(item: Any, key: str) -> tuple[str, Any, Any]:
    """(layer name, raw arguments, raw `when`) of one list item."""
    if isinstance(item, str):
        return item, None, True
    if isinstance(item, dict):
        names = [k for k in item if k != "when"]
        if len(names) == 1:
            return names[0], item[names[0]], item.get("when", True)
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
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
        if error["type"] == "extra_forbidden":
            known = [n for n in cls.model_fields]
            message = f"{cls.__name__} has no argument '{where}'; its arguments are: {', '.join(known)}.{did_you_mean(where, known)}"
        elif error["type"] == "missing":
            message = f"{cls.__name__} needs '{where}'."
        else:
            message = error["msg"].removeprefix("Value error, ") + f" (got {error.get('input')!r})."
        raise DlxError(message, key=f"{key}.{where}" if where else key) from None


def parse_item(item: Any, context: _Context, key: str) -> list[LayerNode]:
    context.count += 1
    if context.count > MAX_LAYERS:
        raise DlxError(f"the model has more than {MAX_LAYERS} layers; refusing to build it.", key=key)
    name, raw, when = _split_item(item, key)
    cls = LAYERS.get(name, key=key)
    key = f"{key}.{cls.__name__}"
    args = substitute(_arguments(cls, raw, key), context.variables, key)
    when = substitute(args.pop("when", when), context.variables, f"{key}.when")
    if not isinstance(when, bool):
        raise DlxError(f"'when' must be true or false, got {when!r}.", key=f"{key}.when")
    if not when:
        return []
    layer = _validate(cls, args, key)
    if isinstance(layer, vocabulary.Repeat):
        return [node for _ in range(layer.times) for node in parse_layers(layer.layers, context, f"{key}.layers")]
    node = LayerNode(layer if context.classes is None else layer.with_classes(context.classes), key)
    if isinstance(layer, vocabulary.Residual):
        node.children = parse_layers(layer.layers, context, f"{key}.layers")
        if not node.children:
            raise DlxError("Residual needs at least one layer in 'layers' (all were removed by 'when').", key=key)
    return [node]
