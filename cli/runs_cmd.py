"""`dlx runs`: find your best runs among hundreds."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import JsonOption, console, friendly_errors, print_json


def _fmt(value, kind: str = "") -> str:
    if value is None:
        return "-"
    if kind == "acc":
        return f"{value:.4f}"
    if kind == "int":
        return f"{value:,}"
    if kind == "s":
        return f"{value:.1f}"
    return str(value)


@friendly_errors
def runs(folder: Annotated[Path, typer.Argument(help="Folder of run folders.")] = Path("runs"),
         sort: Annotated[str, typer.Option(help="Column to sort by (numbers: highest first).")] = "val_accuracy",
         filter: Annotated[Optional[list[str]], typer.Option(help="Keep rows where key=value, e.g. dataset=digits.")] = None,
         json: JsonOption = False) -> None:
    """List runs, searches and ensembles with their best validation and test accuracy."""
    from report.runs import list_runs
    rows = list_runs(folder, sort, filter)
    if json:
        print_json(rows)
        return
    from rich.table import Table
    table = Table(title=f"{len(rows)} folder(s) in {folder}")
    for column in ("name", "kind", "dataset", "params", "val acc", "test acc", "epochs", "wall s", "status", "trials"):
        table.add_column(column, justify="right" if column in ("params", "val acc", "test acc", "epochs", "wall s",
                                                               "trials") else "left")
    for r in rows:
        table.add_row(r["name"], r["kind"], _fmt(r.get("dataset")), _fmt(r.get("trainable_params"), "int"),
                      _fmt(r.get("val_accuracy"), "acc"), _fmt(r.get("test_accuracy"), "acc"), _fmt(r.get("epochs")),
                      _fmt(r.get("wall_seconds"), "s"), r["status"], _fmt(r.get("trials")))
    console.print(table)


COMMANDS = [runs]
