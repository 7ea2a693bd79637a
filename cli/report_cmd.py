"""`dlx report`: figures, report.html and report.json for a run, search or ensemble folder."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import JsonOption, console, friendly_errors, print_json


@friendly_errors
def report(path: Annotated[Path, typer.Argument(help="A run, search or ensemble folder.")],
           out: Annotated[Optional[Path], typer.Option(help="Where to write (default: PATH/report).")] = None,
           open_: Annotated[bool, typer.Option("--open", help="Open report.html in the web browser.")] = False,
           json: JsonOption = False) -> None:
    """Plot a run, search or ensemble folder: PNG and SVG figures, a self-contained report.html and report.json."""
    from report.api import make_report
    result = make_report(path, out)
    if open_:
        import webbrowser
        webbrowser.open(Path(result["html"]).resolve().as_uri())
    if json:
        print_json(result)
        return
    from rich.table import Table
    table = Table(title=f"{result['kind']} report of {path}: {len(result['files'])} file(s) in {result['out']}")
    table.add_column("file")
    table.add_column("what")
    what = {"report.html": "the report: open it in a browser", "report.json": "figures and key numbers (JSON)"}
    for figure in result["figures"]:
        what |= {Path(figure["png"]).name: figure["title"], Path(figure["svg"]).name: f"{figure['title']} (SVG)"}
    for file in result["files"]:
        table.add_row(file, what.get(Path(file).name, ""))
    console.print(table)
    for note in result["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


COMMANDS = [report]
