"""`dlx summary`: a Keras-style model summary."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dlx.cli.common import JsonOption, SetOption, console, friendly_errors, located_in, print_json

InputShapeOption = Annotated[Optional[str], typer.Option(
    "--input-shape", help="H,W,C (or F for flat features): use this input instead of the dataset's.")]
ClassesOption = Annotated[Optional[int], typer.Option(
    "--classes", help="Use this number of classes instead of the dataset's (with --input-shape, no data is read).")]


@friendly_errors
def summary(config: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")], set: SetOption = None,
            input_shape: InputShapeOption = None, classes: ClassesOption = None, json: JsonOption = False) -> None:
    """Show each layer's output shape and parameters, as Keras's model.summary()."""
    from dlx.archs.summary import summarize, summary_inputs
    from dlx.archs.check import load_spec
    shape, classes = summary_inputs(input_shape, classes)
    spec = load_spec(config, set)
    with located_in(config):
        if shape is None or classes is None:  # the dataset supplies only what is not given
            from dlx.train.data import dataset_info
            info = dataset_info(spec.data)
            shape = info.input_shape if shape is None else shape
            classes = info.classes if classes is None else classes
        result = summarize(spec, shape, classes)
    if json:
        print_json(result)
        return
    print_table(result)


def _layer_cell(row: dict) -> str:
    """'  conv2d_7 (Conv2D, shortcut)': indented under its Residual, the shortcut's layers marked."""
    role = ", shortcut" if row["role"] == "shortcut" else ""
    return f"{'  ' * row['depth']}{row['name']} ({row['type']}{role})"


def print_table(result: dict) -> None:
    """Keras's layout: a row per layer (a Residual's own row heads its layers and has no Param # of its own), then
    the totals. Param # counts trainable and non-trainable parameters, so the rows add up to the total. A graph
    (layers with `inputs:`) adds Keras's "Connected to" column; its names and the layer cells wrap at spaces to fit
    the console, while shapes and counts never break."""
    from rich.markup import escape
    from rich.table import Table
    table = Table(title=f"Model: {result['name']}  (input {result['input_shape']})")
    graph = result.get("graph", False)
    for column in ("Layer (type)", "Output Shape", "Param #", *(["Connected to"] if graph else [])):
        table.add_column(column, justify="right" if column == "Param #" else "left", overflow="fold",
                         no_wrap=column in ("Output Shape", "Param #"))
    for row in result["layers"]:
        params = "" if row["role"] == "block" else f"{row['params']:,}"
        connected = [escape(", ".join(row["inputs"]))] if graph else []
        table.add_row(escape(_layer_cell(row)), str(tuple(row["output_shape"])), params, *connected)
    console.print(table)
    console.print(f"Total params: {result['total_params']:,}\nTrainable params: {result['trainable_params']:,}\n"
                  f"Non-trainable params: {result['non_trainable_params']:,}\n"
                  f"Estimated MFLOPs per image: {result['mflops']:.2f}")


COMMANDS = [summary]
