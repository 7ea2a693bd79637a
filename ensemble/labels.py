"""How members are told apart in tables: a short identifier that is complete and unique (the path below the
members' common folder, e.g. a trial's number), and what differs between their specs (the keys a search varied,
the layers that are not shared), instead of what every member has in common."""
from __future__ import annotations

import os
from pathlib import Path

from dlx.experiment.overrides import key_paths

IGNORED = ("name", "output", "device", "data")  # data is shared by construction; the rest doesn't change the model


def identifiers(paths: list[str | Path]) -> tuple[str, list[str]]:
    """(column title, one identifier per path): paths relative to their common parent, as the user named them
    (links not followed); 'trial' when they are all trials of one search."""
    resolved = [Path(os.path.abspath(p)) for p in paths]
    if len(resolved) == 1:
        return "run", [resolved[0].name]
    common = Path(os.path.commonpath(resolved))
    if common in resolved:  # one member's folder holds another's
        common = common.parent
    names = [str(p.relative_to(common)) for p in resolved]
    title = "trial" if common.name == "trials" and all(n.isdigit() for n in names) else "run"
    return title, names


def _short_keys(keys: list[str]) -> dict[str, str]:
    """Each key path by its last part (`train.optimizer.lr` → `lr`), or whole where that part is ambiguous."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (tail if last.count(tail) == 1 else k) for k, tail in zip(keys, last)}


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)


def _layer(layer) -> str:
    """A layer as Name(arg, key=value), compact: `{Dense: {units: 64, activation: relu}}` → Dense(64,relu)."""
    if not isinstance(layer, dict):
        return str(layer)
    name, args = next(iter(layer.items()))
    if isinstance(args, dict):
        inner = ",".join(_show(v) for k, v in args.items() if k not in ("padding",))
    elif isinstance(args, (list, tuple)):
        inner = ",".join(_show(v) for v in args)
    else:
        inner = "" if args is None else _show(args)
    return f"{name}({inner})" if inner else str(name)


def _layer_differences(stacks: list[list[str]]) -> list[str]:
    """Each member's layers with the prefix and suffix that all members share removed."""
    if all(s == stacks[0] for s in stacks):
        return [""] * len(stacks)
    shortest = min(len(s) for s in stacks)
    head = 0
    while head < shortest and all(s[head] == stacks[0][head] for s in stacks):
        head += 1
    tail = 0
    while tail < shortest - head and all(s[-1 - tail] == stacks[0][-1 - tail] for s in stacks):
        tail += 1
    return [" ".join(s[head:len(s) - tail]) or "(fewer layers)" for s in stacks]


def differences(specs: list[dict]) -> list[str]:
    """Per member, the spec settings in which members differ (`width=16 lr=0.01`, differing layers), '' if none."""
    flat = []
    for spec in specs:
        trimmed = {k: v for k, v in spec.items() if k not in IGNORED}
        model = dict(trimmed.get("model") or {})
        layers = model.pop("layers", None) or []
        flat.append((key_paths({**trimmed, "model": model}), [_layer(layer) for layer in layers]))
    keys = sorted({k for f, _ in flat for k in f})
    varying = [k for k in keys if len({repr(f.get(k)) for f, _ in flat}) > 1]
    layers = _layer_differences([stack for _, stack in flat])
    short = _short_keys(varying)
    return [" ".join([f"{short[k]}={_show(f.get(k, '-'))}" for k in varying] + ([extra] if extra else []))
            for (f, _), extra in zip(flat, layers)]
