"""Safe YAML reading with size and alias limits, and key-path → line lookup for error messages."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from spec.errors import DlxError

MAX_YAML_BYTES = 1_000_000  # specs are small; anything bigger is a mistake or an attack
MAX_ALIASES = 100  # alias bombs ("billion laughs") expand exponentially through aliases
MAX_DEPTH = 50


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses alias bombs and absurd nesting."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases_seen = 0
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases_seen += 1
            if self._aliases_seen > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases (line {mark.line + 1}); refusing a possible alias bomb")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"nesting deeper than {MAX_DEPTH} levels (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_text(path: str | Path, what: str = "file") -> str:
    path = Path(path)
    if not path.exists():
        raise DlxError(f"{what} not found (looked for {path.resolve()}).", file=path)
    if path.is_dir():
        raise DlxError(f"expected a YAML {what}, but this is a folder.", file=path)
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise DlxError(f"file is {size} bytes; YAML specs are limited to {MAX_YAML_BYTES} bytes.", file=path)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DlxError(f"file is not valid UTF-8 text (byte {exc.start}); save it as UTF-8.", file=path) from None


def parse_yaml(text: str, file: str | Path | None = None) -> Any:
    """Parse YAML text safely; malformed YAML becomes a DlxError with line and column."""
    try:
        return yaml.load(text, Loader=_LimitedLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise DlxError(f"malformed YAML{where}: {problem}.", file=file, line=mark.line + 1 if mark else None) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise DlxError(f"malformed YAML: {exc}.", file=file) from None


def load_yaml_mapping(path: str | Path, what: str = "spec") -> dict:
    path = Path(path)
    data = parse_yaml(read_text(path, what), path)
    if data is None:
        raise DlxError(f"the {what} file is empty; expected a YAML mapping of sections.", file=path)
    if not isinstance(data, dict):
        raise DlxError(f"expected a YAML mapping at the top level, got {type(data).__name__}.", file=path)
    return data


def line_of(text: str, key_path: list) -> int | None:
    """1-based line of the deepest node along key_path in the YAML text (None if not found)."""
    try:
        node = yaml.compose(text, Loader=_LimitedLoader)
    except Exception:  # noqa: BLE001 - best effort only: the text already parsed once
        return None
    line = None
    for part in key_path:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
