"""`dlx predict`: class predictions from a run folder or an ensemble folder."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dlx.cli.common import JsonOption, console, err_console, friendly_errors, model_folder, print_json
from dlx.core.errors import DlxError

ResizeOption = Annotated[bool, typer.Option("--resize", help="Resize images (or .npz arrays) of another height×width "
                                                             "to the model's (bilinear); without it they are refused.")]


@friendly_errors
def predict(model: Annotated[Path, typer.Argument(help="A run folder, an ensemble folder, a search folder (its "
                                                        "best trial), or an exported .onnx model (run by "
                                                        "onnxruntime).")],
            input: Annotated[Path, typer.Argument(help="An image, a folder of images, or an .npz (key x or x_test).")],
            out: Annotated[Optional[Path], typer.Option(help="Write predictions as CSV here.")] = None,
            resize: ResizeOption = False, json: JsonOption = False) -> None:
    """Predict classes with the model's own preprocessing.

    Input contract: the checkpoint records the dtype, value range, channels and height×width of the data the
    model was trained on, and the input must match them. Two conversions are made, each with a one-line notice:
    uint8 0–255 input to a model trained on floats in 0–1 (÷ 255) and floats in 0–1 to a uint8 model (× 255);
    RGB to grayscale and grayscale to RGB. Any other value range (e.g. floats in 0–16 for a 0–1 model), another
    height×width (unless --resize), another channel count, and NaN or inf are refused with exit code 2, naming
    what the model expects (the same text is under input_contract in --json).
    """
    if model.suffix.lower() == ".onnx":  # an exported model: onnxruntime, without importing torch
        from dlx.export import predict_onnx
        if resize:
            raise DlxError("--resize is not available for an exported .onnx model; resize the images first.",
                           key="--resize")
        result = predict_onnx(model, input, out)
    else:
        from dlx.ensemble import predict as run_predict
        result = run_predict(model_folder(model), input, out, resize)
    for notice in result["notices"]:
        err_console.print(f"notice: {notice}", highlight=False, soft_wrap=True)
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
    console.print(f"model input: {result['input_contract']['description']}", highlight=False)


COMMANDS = [predict]
