"""`dlx evaluate`: loss, accuracy and the confusion matrix of a run's (or an ensemble's) best checkpoint."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlx.cli.common import JsonOption, console, friendly_errors, model_folder, print_json


def confusion_table(matrix: list[list[int]], names: list[str]):
    """(table, the width it needs). Rows are true classes, columns predicted ones, class names on both axes.
    Counts are never cut: each count column is at least as wide as its largest number, long class names fold
    in the header instead, and a table that can't fit the terminal is printed wider rather than cropped."""
    from rich import box
    from rich.table import Table
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1), pad_edge=False)
    table.add_column("true \\ pred", style="bold", no_wrap=True)
    widths = [max(len(str(row[column])) for row in matrix) for column in range(len(names))]
    for name, width in zip(names, widths):
        table.add_column(name, justify="right", overflow="fold", min_width=width)
    for index, (name, row) in enumerate(zip(names, matrix)):
        table.add_row(name, *(f"[bold]{count}[/]" if column == index else str(count) if count else "[dim]0[/]"
                              for column, count in enumerate(row)))
    label = max([len("true \\ pred"), *map(len, names)])
    return table, label + sum(width + 2 for width in widths) + 1


@friendly_errors
def evaluate(run_dir: Annotated[Path, typer.Argument(help="A run folder, an ensemble folder, or a search folder (its "
                                                          "best trial).")],
             split: Annotated[str, typer.Option(help="val or test.")] = "test", json: JsonOption = False) -> None:
    """Reload the best checkpoint and report loss, accuracy and the confusion matrix (rows: true class,
    columns: predicted; also under confusion_matrix in --json).

    Input contract: the split is re-read from the run's dataset and must still look like what the model was
    trained on, as its checkpoint records it: the same dtype, channels and height×width, images still within
    the recorded value range (0–1 or 0–255), and no NaN or inf. Data that no longer match are refused with exit
    code 2, naming what was expected and what was found.
    """
    from dlx.ensemble import evaluate_folder
    result = evaluate_folder(model_folder(run_dir), split)
    if json:
        print_json(result)
        return
    console.print(f"{result['split']}: accuracy {result['accuracy']:.4f}  loss {result['loss']:.4f}  "
                  f"({result['samples']} samples)", highlight=False)
    matrix = result["confusion_matrix"]
    names = result.get("class_names") or [str(c) for c in range(len(matrix))]
    table, needed = confusion_table(matrix, names)
    console.print("confusion matrix (rows: true class, columns: predicted):", highlight=False)
    if needed > console.width:  # wider than the terminal: lines wrap there rather than crop a count
        from rich.console import Console
        Console(width=needed).print(table)
    else:
        console.print(table)
    if result.get("input_contract"):
        console.print(f"model input: {result['input_contract']['description']}", highlight=False)


COMMANDS = [evaluate]
