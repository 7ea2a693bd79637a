"""The one exception type dlx raises for bad input; the CLI turns it into exit code 2."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable


class DlxError(Exception):
    """A user-facing error: which file, which key path, what was expected.

    Rendered by the CLI as one paragraph and exit code 2, never a traceback.
    """

    def __init__(self, message: str, *, file: str | Path | None = None, key: str | None = None,
                 line: int | None = None, hint: str | None = None):
        self.message = message
        self.file = str(file) if file is not None else None
        self.key = key
        self.line = line
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        if self.key:
            where = f"{where} at '{self.key}'" if where else f"at '{self.key}'"
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text = f"{text} {self.hint}"
        return text

    def with_context(self, *, file=None, key_prefix: str | None = None, line=None) -> "DlxError":
        """Return a copy placed in a file and under a key prefix (for nested parsing)."""
        key = self.key
        if key_prefix:
            key = f"{key_prefix}.{key}" if key else key_prefix
        return DlxError(self.message, file=file or self.file, key=key, line=line or self.line, hint=self.hint)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' Did you mean 'x'?' for a near miss, or '' when nothing is close."""
    known = list(known)
    lowered = {k.lower(): k for k in known}
    match = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.6)
    return f" Did you mean '{lowered[match[0]]}'?" if match else ""


def unknown_name(kind: str, name: str, known: Iterable[str], **context) -> DlxError:
    """Error for a name missing from a registry: lists the known names and the nearest one."""
    known = sorted(known)
    return DlxError(f"unknown {kind} '{name}'; expected one of: {', '.join(known)}.{did_you_mean(name, known)}",
                    **context)
