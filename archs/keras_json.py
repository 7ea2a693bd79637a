"""A Keras model config's JSON, parsed and checked for the layout `archs.keras_import` reads, before it reads it:
a value nested too deep, an integer too long for a size, a NaN, or a part of the wrong JSON type is one DlxError
naming the file and the JSON path (`config.layers[3].config.filters`), never a RecursionError or a TypeError."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from dlx.core.errors import DlxError
from dlx.core.reading import MAX_JSON_DEPTH

MAX_DIGITS = 100  # longer is no layer size (and Python refuses to parse integers past 4,300 digits)
_TYPES = {dict: "object", list: "list", str: "string"}


class _LongInteger(str):
    """An integer too long to be a size, kept as its digits until its JSON path is known."""


class _NotFinite(str):
    """NaN or ±Infinity (Python's JSON extension), kept as its token until its JSON path is known."""


def parse_config(text: str, path: Path) -> Any:
    """The JSON value of `text`; refused with its JSON path where it nests past MAX_JSON_DEPTH or holds an
    integer of over MAX_DIGITS digits, NaN or Infinity."""
    try:
        data = json.loads(text, parse_int=_integer, parse_constant=_NotFinite)
    except RecursionError:
        raise _too_deep("", path) from None
    except ValueError as exc:
        raise DlxError(f"not a Keras model: expected a .keras file or model.to_json() JSON ({exc}).",
                       file=path) from None
    _check_values(data, path)
    return data


def _integer(digits: str) -> int | _LongInteger:
    return int(digits) if len(digits.lstrip("-")) <= MAX_DIGITS else _LongInteger(digits)


def _too_deep(key: str, path: Path) -> DlxError:
    return DlxError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels; a Keras model config nests about "
                    "ten.", file=path, key=key or None)


def _check_values(data: Any, path: Path) -> None:
    """Depth, long integers and non-finite numbers, walked without recursion."""
    stack = [(data, "", 0)]
    while stack:
        value, key, depth = stack.pop()
        if isinstance(value, _LongInteger):
            raise DlxError(f"a number of {len(value.lstrip('-'))} digits; a layer's sizes have a few.", file=path,
                           key=key)
        if isinstance(value, (_NotFinite, float)) and not (isinstance(value, float) and math.isfinite(value)):
            raise DlxError(f"the number {value} is not finite (NaN or Infinity); a layer's arguments are finite.",
                           file=path, key=key)
        if isinstance(value, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                raise _too_deep(key, path)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((child, _child_key(key, name), depth + 1) for name, child in items)


def _child_key(key: str, name: str | int) -> str:
    return f"{key}[{name}]" if isinstance(name, int) else f"{key}.{name}" if key else str(name)


def _typed(value: Any, kind: type, key: str, path: Path, optional: bool = False) -> Any:
    """`value` if it is of JSON type `kind` (or absent, when `optional`); else a DlxError at `key`."""
    if value is None and optional:
        return kind()
    if not isinstance(value, kind):
        got = "null" if value is None else _TYPES.get(type(value), type(value).__name__)
        raise DlxError(f"expected a JSON {_TYPES[kind]} here, got {got}: {_short(value)}.", file=path, key=key)
    return value


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def checked_layout(config: dict, path: Path) -> tuple[dict, list[dict]]:
    """(config's body, its layers), each part `keras_import` reads checked for its JSON type at its path."""
    body = _typed(config.get("config"), dict, "config", path)
    layers = _typed(body.get("layers"), list, "config.layers", path)
    if not layers:
        raise DlxError("the model config lists no layers.", file=path, key="config.layers")
    for end in ("input_layers", "output_layers"):
        _check_ends(body.get(end), f"config.{end}", path)
    for index, layer in enumerate(layers):
        _check_layer(layer, f"config.layers[{index}]", path)
    return body, layers


def _check_ends(value: Any, key: str, path: Path) -> None:
    """Keras writes a model's inputs and outputs as [[name, 0, 0], ...], or one [name, 0, 0]."""
    entries = _typed(value, list, key, path, optional=True)
    if entries and not isinstance(entries[0], list):
        entries = [entries]
        key = f"{key}[]"
    for index, entry in enumerate(entries):
        entry = _typed(entry, list, f"{key}[{index}]", path)
        if not entry:
            raise DlxError("expected [layer name, node, tensor], got [].", file=path, key=f"{key}[{index}]")
        _typed(entry[0], str, f"{key}[{index}][0]", path)


def _check_layer(layer: Any, key: str, path: Path) -> None:
    layer = _typed(layer, dict, key, path)
    _typed(layer.get("class_name"), str, f"{key}.class_name", path)
    _typed(layer.get("config"), dict, f"{key}.config", path, optional=True)
    if "name" in layer:
        _typed(layer["name"], str, f"{key}.name", path)
    for number, node in enumerate(_typed(layer.get("inbound_nodes"), list, f"{key}.inbound_nodes", path,
                                         optional=True)):
        node_key = f"{key}.inbound_nodes[{number}]"
        arguments = _typed(_typed(node, dict, node_key, path).get("args"), list, f"{node_key}.args", path,
                           optional=True)
        tensors, tensors_key = (arguments[0], f"{node_key}.args[0]") if arguments and isinstance(
            arguments[0], list) else (arguments, f"{node_key}.args")
        for position, tensor in enumerate(tensors):
            _check_tensor(tensor, f"{tensors_key}[{position}]", path)


def _check_tensor(tensor: Any, key: str, path: Path) -> None:
    """A serialised Keras tensor names its producing layer as config.keras_history[0]; other arguments pass."""
    if not isinstance(tensor, dict) or tensor.get("class_name") != "__keras_tensor__":
        return
    config = _typed(tensor.get("config"), dict, f"{key}.config", path)
    history = _typed(config.get("keras_history"), list, f"{key}.config.keras_history", path)
    if not history:
        raise DlxError("expected [layer name, node, tensor], got [].", file=path, key=f"{key}.config.keras_history")
    _typed(history[0], str, f"{key}.config.keras_history[0]", path)
