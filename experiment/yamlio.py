"""Safe YAML reading with size and alias limits, and key-path → line lookup for error messages."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from dlx.core.errors import DlxError

MAX_YAML_BYTES = 1_000_000  # specs are small; anything bigger is a mistake or an attack
MAX_ALIASES = 100  # alias bombs ("billion laughs") expand exponentially through aliases
MAX_DEPTH = 50
MAX_NODES = 20_000  # values in one document, counting every expansion of an alias; real specs have a few hundred


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses alias bombs, absurd nesting or size, and keys written twice."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases_seen = 0
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases_seen += 1
            if self._aliases_seen > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases (line {mark.line + 1}); refusing a possible alias bomb")
        self._nodes += 1
        if self._nodes > MAX_NODES:  # checked while parsing: pure-Python YAML takes seconds per 100k values
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(f"more than {MAX_NODES} values (line {mark.line + 1}); specs are small, so this "
                                 "is refused")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"nesting deeper than {MAX_DEPTH} levels (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        """A key written twice is refused (YAML requires unique keys; PyYAML would silently keep the last).
        Keys brought in by a `<<: *anchor` merge may still be overridden, as YAML intends."""
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} appears twice (first on line {seen[key]}); keep one",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _check_expanded_size(data: Any) -> None:
    """Aliases share one object, so a document under MAX_NODES can still expand to billions of values when
    copied, validated or dumped (a "billion laughs"); count values as a reader would see them."""
    count, stack = 0, [data]
    while stack:
        item = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise yaml.YAMLError(f"more than {MAX_NODES} values once aliases are expanded; refusing a possible "
                                 "alias bomb")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def read_text(path: str | Path, what: str = "file") -> str:
    """Read at most MAX_YAML_BYTES + 1 bytes of a regular file: `st_size` says nothing about /dev/zero, a FIFO
    or /proc files, so the bound is on the read itself, and anything but a regular file is refused first."""
    path = Path(path)
    try:
        if not path.exists():
            raise DlxError(f"{what} not found (looked for {path.resolve()}).", file=path)
        if path.is_dir():
            raise DlxError(f"expected a YAML {what}, but this is a folder.", file=path)
        if not path.is_file():
            raise DlxError(f"expected a YAML {what}, but this is not a regular file (a device, a pipe or a "
                           "socket); save the spec to a file.", file=path)
        # O_NONBLOCK: a FIFO swapped in after the check above must not block the open for ever
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise DlxError(f"expected a YAML {what}, but this is not a regular file.", file=path)
            raw = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:  # a name too long, a file we may not read, a FIFO that vanished, ...
        raise DlxError(f"can't read the {what} ({exc.strerror or exc}).", file=path) from None
    if len(raw) > MAX_YAML_BYTES:
        raise DlxError(f"file is over {MAX_YAML_BYTES} bytes; YAML specs are limited to {MAX_YAML_BYTES} bytes.",
                       file=path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DlxError(f"file is not valid UTF-8 text (byte {exc.start}); save it as UTF-8.", file=path) from None


def parse_yaml(text: str, file: str | Path | None = None) -> Any:
    """Parse YAML text safely; malformed YAML becomes a DlxError with line and column."""
    try:
        data = yaml.load(text, Loader=_LimitedLoader)  # noqa: S506 - SafeLoader subclass
        _check_expanded_size(data)
        return data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise DlxError(f"malformed YAML{where}: {problem}.", file=file, line=mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as exc:  # a control character such as NUL: YAML forbids them
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        raise DlxError(f"malformed YAML: character #x{code:04x} at position {exc.position} is not allowed in YAML "
                       "text; remove it.", file=file) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise DlxError(f"malformed YAML: {' '.join(str(exc).split())}.", file=file) from None


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
