"""`dlx predict`: class predictions from a run folder or an ensemble folder."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import JsonOption, console, friendly_errors, print_json


@friendly_errors
def predict(model: Annotated[Path, typer.Argument(help="A run folder or an ensemble folder.")],
            input: Annotated[Path, typer.Argument(help="An image, a folder of images, or an .npz (key x or x_test).")],
            out: Annotated[Optional[Path], typer.Option(help="Write predictions as CSV here.")] = None,
            json: JsonOption = False) -> None:
    """Predict classes with the model's own preprocessing."""
    from ensemble.predict import predict as run_predict
    result = run_predict(model, input, out)
    if json:
        print_json(result)
        return
    if out is not None:
        console.print(f"{len(result['predictions'])} predictions written to {out}", highlight=False)
        return
    from rich.table import Table
    table = Table()
    for column in ("input", "class", "probability"):
        table.add_column(column, justify="right" if column == "probability" else "left")
    for row in result["predictions"]:
        table.add_row(row["input"], row["class"], f"{row['probabilities'][row['predicted']]:.4f}")
    console.print(table)


COMMANDS = [predict]
