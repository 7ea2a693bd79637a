"""`dlx runs`: find your best runs among hundreds."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from dlx.cli.common import JsonOption, console, friendly_errors, print_json
from dlx.cli.tables import EMPTY, Column
from dlx.core.numbers import fmt


STYLES = {"acc": ("fixed", 4), "int": ("thousands", 0), "s": ("fixed", 1), "": ("plain", 0)}


def _fmt(value, kind: str = "") -> str:
    """Fixed precision, so a number always has the same width and is never cut."""
    style, digits = STYLES[kind]
    return fmt(value, digits, style=style, empty=EMPTY)


def relative(path: str, folder: Path) -> str:
    """What tells the rows apart: the run folder relative to the folder listed (its own name if it is that folder)."""
    shown = os.path.relpath(path, folder)
    return Path(path).resolve().name if shown == "." else shown


# In display order; priority: which columns are left out first when the console is narrow (highest first).
COLUMNS = [Column("run", 0), Column("status", 1), Column("val acc", 2, "right"), Column("test acc", 3, "right"),
           Column("epochs", 5, "right"), Column("kind", 4), Column("dataset", 8), Column("params", 7, "right"),
           Column("wall s", 9, "right"), Column("trials", 6, "right"), Column("name", 10)]


def _cells(r: dict, folder: Path) -> list[str]:
    return [relative(r["path"], folder), r["status"], _fmt(r.get("val_accuracy"), "acc"),
            _fmt(r.get("test_accuracy"), "acc"), _fmt(r.get("epochs")), r["kind"], _fmt(r.get("dataset")),
            _fmt(r.get("trainable_params"), "int"), _fmt(r.get("wall_seconds"), "s"), _fmt(r.get("trials")),
            _fmt(r.get("name"))]


@friendly_errors
def runs(folder: Annotated[Path, typer.Argument(help="Folder of run folders.")] = Path("runs"),
         sort: Annotated[str, typer.Option(help="Column to sort by (numbers: highest first).")] = "val_accuracy",
         filter: Annotated[Optional[list[str]], typer.Option(help="Keep rows where key=value, e.g. dataset=digits.")] = None,
         columns: Annotated[Optional[list[str]], typer.Option(
             help="Also show these spec keys (key paths, comma-separated or repeated), e.g. "
                  "model.vars.width,train.optimizer.lr; --sort and --filter take them too.")] = None,
         json: JsonOption = False) -> None:
    """List runs, searches and ensembles with their best validation and test accuracy.

    The table fits the terminal: columns of less use are left out first when it is narrow (--json has them all)."""
    from dlx.report import list_runs
    keys = [key.strip() for text in columns or [] for key in text.split(",") if key.strip()]
    rows = list_runs(folder, sort, filter, keys)
    if json:
        print_json(rows)
        return
    from dlx.cli.tables import fit_table
    console.print(f"{len(rows)} folder(s) in {folder}", highlight=False, soft_wrap=True)
    if not rows:
        return
    # asked-for keys come right after the accuracies when the table must be narrowed (their headers break after dots)
    shown = COLUMNS[:4] + [Column(key, 3.5, "right") for key in keys] + COLUMNS[4:]
    cells = [(lambda c: c[:4] + [_fmt(r.get(key)) for key in keys] + c[4:])(_cells(r, folder)) for r in rows]
    table, dropped = fit_table(shown, cells, console.width)
    console.print(table)
    if dropped:
        console.print(f"not shown at this width: {', '.join(dropped)} (a wider terminal or --json shows them).",
                      highlight=False)


COMMANDS = [runs]
