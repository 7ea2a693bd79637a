"""Shared CLI plumbing: the error boundary (DlxError → one paragraph, exit code 2) and consoles."""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from typing import Annotated, Optional

import typer


class LazyConsole:
    """A rich Console built on first use: importing rich costs `dlx --help` ~40 ms it need not pay."""

    def __init__(self, **options):
        self._options, self._console = options, None

    def __getattr__(self, name):
        if self._console is None:
            from rich.console import Console
            self._console = Console(**self._options)
        return getattr(self._console, name)


console = LazyConsole()
err_console = LazyConsole(stderr=True)

SetOption = Annotated[Optional[list[str]], typer.Option("--set", help="Override a key: key.path=value (YAML value).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]


def friendly_errors(func):
    """Turn DlxError into exit code 2 with one paragraph; Ctrl-C into exit code 130. A command that fails removes
    the folders it made that hold nothing of value (train.outdir.discard_unused)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from dlx.core.errors import DlxError
        try:
            return _discarding_unused(func, *args, **kwargs)
        except DlxError as exc:
            from rich.markup import escape
            err_console.print(f"[bold red]error:[/] {escape(exc.render())}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            if reports():
                err_console.print("interrupted.")
            raise typer.Exit(130) from None

    return wrapper


def reports() -> bool:
    """Whether this process tells the user about a Ctrl-C: under torchrun every rank gets it, and rank 0 alone
    says so."""
    return os.environ.get("RANK", "0") in ("", "0")


def _discarding_unused(func, *args, **kwargs):
    from dlx.core.files import noting_made
    with noting_made() as made:
        try:
            return func(*args, **kwargs)
        except BaseException:
            if made:
                from dlx.train.outdir import discard_unused
                discard_unused(made)
            raise


@contextlib.contextmanager
def located_in(path):
    """Errors raised while using a spec (e.g. building its model) name the spec file."""
    from dlx.core.errors import DlxError
    try:
        yield
    except DlxError as exc:
        if exc.file is None and path is not None:
            raise exc.with_context(file=path) from None
        raise


def model_folder(path):
    """The folder `dlx evaluate`, `predict` and `export` read a model from: `path`, or for a search folder its best
    trial's run folder (what one wants from a search), said in one line on stderr (stdout may be --json)."""
    from pathlib import Path
    if not (Path(path) / "search.yaml").is_file():
        return path
    from dlx.search.folder import best_trial
    number, run_dir = best_trial(Path(path))
    err_console.print(f"search folder: using its best trial {number} ({run_dir})", highlight=False, soft_wrap=True)
    return run_dir


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
