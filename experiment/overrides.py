"""`--set key.path=value` overrides: values are parsed as YAML, paths may index lists."""
from __future__ import annotations

import copy
from typing import Any

from dlx.core.errors import DlxError
from dlx.experiment.yamlio import parse_yaml


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise DlxError(f"--set expects key.path=value, got {text!r}.")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise DlxError(f"--set has an empty key path in {text!r}.")
    return key.split("."), parse_yaml(raw, file="--set " + key) if raw.strip() else None


def set_path(data: dict, parts: list[str], value: Any, origin: str = "--set") -> None:
    """Set data[parts...] = value, creating mappings as needed; integer parts index lists."""
    node = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                raise DlxError(f"'{part}' is not a valid index into a list of {len(node)} items.",
                               key=".".join(parts[: i + 1]), file=origin)
            part = int(part)
        elif not isinstance(node, dict):
            raise DlxError(f"can't set a key inside a {type(node).__name__}.", key=".".join(parts[:i]), file=origin)
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and (part not in node or node[part] is None):
                node[part] = {}
            node = node[part]


def get_path(data: Any, parts: list[str]) -> Any:
    node = data
    for part in parts:
        if isinstance(node, list) and part.lstrip("-").isdigit():
            node = node[int(part)]
        else:
            node = node[part]
    return node


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    data = copy.deepcopy(data)
    for text in overrides or []:
        parts, value = parse_override(text)
        set_path(data, parts, value)
    return data


def key_paths(data, lists: bool = False, prefix: str = "") -> dict:
    """A nested spec as {key.path: value} for every leaf, the paths `--set` takes. Lists stay whole values
    (a layer list is one setting) unless `lists`, which goes into them by index (model.layers.0.Conv2D.filters);
    empty mappings and lists are leaves."""
    if isinstance(data, dict) and data:
        items = data.items()
    elif lists and isinstance(data, list) and data:
        items = enumerate(data)
    else:
        return {prefix[:-1]: data} if prefix else {}
    flat = {}
    for key, value in items:
        flat.update(key_paths(value, lists, f"{prefix}{key}."))
    return flat
