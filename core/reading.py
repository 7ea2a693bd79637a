"""Bounded reading of the files dlx reads back (folder records, checkpoints): regular files only, at most a
size limit, JSON at most a nesting depth. A FIFO, a device (/dev/zero, /dev/urandom) or a file grown without
bound would otherwise block the open, or fill memory, long before any parser sees a byte.

Every refusal is a DlxError naming the file; a missing file stays FileNotFoundError, which callers that allow
it catch."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from dlx.core.errors import DlxError

MAX_JSON_BYTES = 64 * 2**20  # dlx's own JSON records are kilobytes; a search's leaderboard a few megabytes
MAX_JSON_DEPTH = 100  # dlx writes records 2 to 5 levels deep; parsers and printers recurse per level
MAX_CHECKPOINT_BYTES = 64 * 2**30


class NotJson(DlxError):
    """The file is there and readable but holds no JSON dlx reads (not UTF-8, malformed, nested too deep): damage
    that tolerant readers may pass over, unlike a file that is no regular file or over the size limit."""


KINDS = ((stat.S_ISFIFO, "a FIFO (a named pipe)"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, in words (a stat mode's file type)."""
    return next((name for test, name in KINDS if test(mode)), "not a plain file")


def _not_regular(path: Path, mode: int, what: str) -> DlxError:
    return DlxError(f"expected {what} here, but this is not a regular file ({file_kind(mode)}); refusing to read "
                    "it. Replace it with the file, or remove it.", file=path)


def check_regular(path: str | Path, limit: int, what: str = "a file") -> int:
    """The size of `path` if it is a regular file (links followed) of at most `limit` bytes; else a DlxError.
    FileNotFoundError when there is nothing there."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DlxError(f"can't read this file ({exc.strerror or exc}).", file=path) from None
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(path, info.st_mode, what)
    if info.st_size > limit:
        raise _too_big(path, limit)
    return info.st_size


def _too_big(path: Path, limit: int) -> DlxError:
    return DlxError(f"this file is over {limit:,} bytes, more than dlx reads from such a file; it is damaged or "
                    "not dlx's.", file=path)


def read_bytes(path: str | Path, limit: int = MAX_JSON_BYTES, what: str = "a file") -> bytes:
    """At most `limit` bytes of the regular file `path` (more is refused, not cut). Checked before the open and
    again on the open file (O_NONBLOCK), so a FIFO swapped in between can neither block nor be read."""
    path = Path(path)
    check_regular(path, limit, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DlxError(f"can't read this file ({exc.strerror or exc}).", file=path) from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode, what)
        try:
            raw = handle.read(limit + 1)
        except OSError as exc:
            raise DlxError(f"can't read this file ({exc.strerror or exc}).", file=path) from None
    if len(raw) > limit:
        raise _too_big(path, limit)
    return raw


def read_text(path: str | Path, limit: int = MAX_JSON_BYTES, what: str = "a file") -> str:
    """`read_bytes` decoded as UTF-8 (anything else is refused, naming the byte)."""
    raw = read_bytes(path, limit, what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotJson(f"this file is not UTF-8 text (byte {exc.start}); it is damaged.", file=path) from None


def nesting_depth(value: Any, limit: int) -> int:
    """How deep lists and objects nest in `value`, counted without recursion and stopping past `limit`."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(text: str, file: str | Path | None = None, depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict-enough JSON: malformed text, or lists and objects nested deeper than `depth`, is a DlxError."""
    try:
        data = json.loads(text)
    except RecursionError:
        data, too_deep = None, True
    except ValueError as exc:
        raise NotJson(f"not valid JSON ({exc}); the file is damaged.", file=file) from None
    else:
        too_deep = nesting_depth(data, depth) > depth
    if too_deep:
        raise NotJson(f"JSON nested more than {depth} levels deep; the file is damaged or not dlx's.", file=file)
    return data


def load_json(path: str | Path, limit: int = MAX_JSON_BYTES, depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value in the regular file `path`, bounded in size and depth (`read_bytes`, `parse_json`)."""
    return parse_json(read_text(path, limit, "a JSON file"), path, depth)
