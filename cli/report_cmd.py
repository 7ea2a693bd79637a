"""`dlx report`: figures, report.html and report.json for a run, search or ensemble folder."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dlx.cli.common import JsonOption, console, friendly_errors, print_json


def _shown(file: str, out: str) -> str:
    """A file as the table shows it: relative to the output folder printed above the table, or in full."""
    import os
    shown = os.path.relpath(file, out)
    return file if shown.startswith("..") else shown


@friendly_errors
def report(path: Annotated[Path, typer.Argument(help="A run, search or ensemble folder.")],
           out: Annotated[Optional[Path], typer.Option(help="Where to write (default: PATH/report).")] = None,
           open_: Annotated[bool, typer.Option("--open", help="Open report.html in the web browser.")] = False,
           json: JsonOption = False) -> None:
    """Plot a run, search or ensemble folder: PNG and SVG figures, a self-contained report.html and report.json."""
    from dlx.report import make_report
    result = make_report(path, out)
    if open_:
        import webbrowser
        webbrowser.open(Path(result["html"]).resolve().as_uri())
    if json:
        print_json(result)
        return
    from dlx.cli.tables import Column, fit_table
    console.print(f"{result['kind']} report of {path}: {len(result['files'])} file(s) in {result['out']}",
                  highlight=False, soft_wrap=True)
    what = {"report.html": "the report: open it in a browser", "report.json": "figures and key numbers (JSON)"}
    for figure in result["figures"]:
        what |= {Path(figure["png"]).name: figure["title"], Path(figure["svg"]).name: f"{figure['title']} (SVG)"}
    rows = [[_shown(file, result["out"]), what.get(Path(file).name, "")] for file in result["files"]]
    table, _ = fit_table([Column("file", 0), Column("what", 1, wrap=True)], rows, console.width)
    console.print(table)
    for note in result["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


COMMANDS = [report]
