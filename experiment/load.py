"""Load an experiment spec: YAML → overrides → pydantic validation → layer-list check."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from dlx.core.errors import DlxError, did_you_mean
from dlx.experiment.overrides import apply_overrides
from dlx.experiment.schema import ExperimentSpec
from dlx.experiment.yamlio import line_of, load_yaml_mapping, read_text


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the nested model that a validation error location points into."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        current = next((a for a in getattr(annotation, "__args__", (annotation,)) if hasattr(a, "model_fields")),
                       annotation)
    return list(getattr(current, "model_fields", {}))


def _describe(error: dict, model: type[BaseModel], hint: bool = True) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        known = _fields_at(model, loc)
        return (f"unknown key '{loc[-1]}'; expected one of: {', '.join(known)}.{did_you_mean(str(loc[-1]), known)}")
    if kind == "missing":
        return "this key is required but missing."
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    if kind != "value_error" and not isinstance(got, (dict, list)):
        message = f"{message} (got {got!r})"
    message = message[0].lower() + message[1:] + ("" if message.endswith((".", "?", "!")) else ".")  # never "?."
    return message + (choice_hint(error) if hint else "")


def choice_hint(error: dict) -> str:
    """" Did you mean 'stream'?" for a value outside a fixed set of choices (pydantic's literal_error), else ""."""
    if error["type"] != "literal_error" or not isinstance(error.get("input"), str):
        return ""
    return did_you_mean(error["input"], re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", ""))))


UNION_MEMBER = re.compile(r"^(literal\[|list\[|dict\[|tuple\[|constrained-|int$|float$|str$|bool$|none$)")


def key_path(loc) -> tuple:
    """pydantic's location less its internal labels: validator wrappers, and the member of a plain union that was
    tried (`train.precise_bn.literal['auto','off']` is the key `train.precise_bn`)."""
    return tuple(p for p in loc if not (isinstance(p, str) and (p.startswith(("function-", "tagged-union"))
                                                               or UNION_MEMBER.match(p))))


def validation_error(exc: ValidationError, model: type[BaseModel], file, text: str | None,
                     every: bool = False) -> DlxError:
    """Turn pydantic's report into one DlxError naming the first problem, and then each other one (`every`) or how
    many there are; the members of a union that all refused one value make one problem: "input should be 'auto' or
    'off'; or a valid integer"."""
    groups: dict[tuple, list] = {}
    for error in exc.errors():
        groups.setdefault(key_path(error["loc"]), []).append(error)
    (loc, same), *rest = groups.items()
    others = sum(len(errors) for _, errors in rest)
    if every:
        more = "".join(f" At '{'.'.join(map(str, at))}'{_line_note(text, at)}: {_problem(errors, at, model)}"
                       for at, errors in rest)
    else:
        more = f" ({others} more problem{'s' if others > 1 else ''} after this one.)" if others else ""
    return DlxError(_problem(same, loc, model) + more, file=file, key=".".join(str(p) for p in loc) or None,
                    line=line_of(text, list(loc)) if text else None)


def _problem(same: list[dict], loc: tuple, model: type[BaseModel]) -> str:
    """One sentence for the errors pydantic reported at one key path."""
    if len(same) == 1:
        return _describe({**same[0], "loc": loc}, model)
    described = "; or ".join(_describe({**e, "loc": loc}, model, hint=False).rstrip(".") for e in same)
    return described + "." + next((h for h in map(choice_hint, same) if h), "")


def _line_note(text: str | None, loc: tuple) -> str:
    line = line_of(text, list(loc)) if text else None
    return f" (line {line})" if line else ""


def parse_sections(data: dict, file: str | Path | None = None, text: str | None = None) -> ExperimentSpec:
    """The spec's sections, typed and checked; its layers are checked one layer up, by `archs.check`, which
    owns the layer vocabulary."""
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, ExperimentSpec, file, text) from None


def split_key(key: str) -> list:
    parts: list = []
    for part in key.replace("[", ".").replace("]", "").split("."):
        parts.append(int(part) if part.isdigit() else part)
    return parts


def expand_shorthands(data: dict) -> dict:
    """`device: cpu` → `device: {type: cpu}`, so that `--set device.threads=2` can still be applied."""
    if isinstance(data.get("device"), str):
        data = {**data, "device": {"type": data["device"]}}
    return data


def read_spec_file(path: str | Path, overrides: list[str] | None = None) -> tuple[dict, str | None]:
    """The spec file's mapping with `--set` overrides applied, and its text for line numbers (None once
    overridden: lines would point at values the user did not write there)."""
    path = Path(path)
    data = expand_shorthands(load_yaml_mapping(path, "spec"))
    return apply_overrides(data, overrides), (read_text(path) if not overrides else None)


def spec_to_dict(spec: ExperimentSpec) -> dict:
    return spec.model_dump(mode="json")
