"""`dlx summary`: a Keras-style model summary."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonOption, SetOption, console, friendly_errors, located_in, print_json


@friendly_errors
def summary(config: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")], set: SetOption = None,
            json: JsonOption = False) -> None:
    """Show each layer's output shape and parameters, as Keras's model.summary()."""
    from archs.summary import summarize
    from spec.load import load_spec
    spec = load_spec(config, set)
    with located_in(config):
        result = summarize(spec)
    if json:
        print_json(result)
        return
    from rich.table import Table
    table = Table(title=f"Model: {result['name']}  (input {result['input_shape']})")
    for column in ("Layer (type)", "Output Shape", "Param #"):
        table.add_column(column, justify="right" if column == "Param #" else "left")
    for row in result["layers"]:
        indent = "  " * row["depth"]
        table.add_row(f"{indent}{row['name']} ({row['type']})", str(tuple(row["output_shape"])), f"{row['params']:,}")
    console.print(table)
    total = result["trainable_params"] + result["non_trainable_params"]
    console.print(f"Total params: {total:,}\nTrainable params: {result['trainable_params']:,}\n"
                  f"Non-trainable params: {result['non_trainable_params']:,}\n"
                  f"Estimated MFLOPs per image: {result['mflops']:.2f}")
COMMANDS = [summary]
