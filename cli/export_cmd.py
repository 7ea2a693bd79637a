"""`dlx export`: a run or ensemble folder as one ONNX, TorchScript or torch.export graph, verified."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from dlx.cli.common import JsonOption, console, friendly_errors, model_folder, print_json


class Format(str, Enum):
    onnx = "onnx"
    torchscript = "torchscript"
    pt2 = "pt2"


@friendly_errors
def export(source: Annotated[Path, typer.Argument(help="A run folder, an ensemble folder, or a search folder (its best "
                                                         "trial).")],
           format: Annotated[Format, typer.Option("--format", help="onnx (onnxruntime), torchscript "
                                                  "(torch.jit.load) or pt2 (torch.export.load).")] = Format.onnx,
           out: Annotated[Optional[Path], typer.Option(help="Folder to write into (default: "
                                                       "SOURCE/export/FORMAT).")] = None,
           json: JsonOption = False) -> None:
    """Export the model with its preprocessing as one graph, and export.json beside it.

    The graph takes `images`: float32 N×H×W×C pixel values in 0–255, as decoded from image files (any batch
    size), and returns `probabilities`: N×classes. An ensemble becomes one graph (members, temperatures, weights
    or stacking combiner). The file is reloaded in its own runtime and checked against PyTorch on the run's test
    split (probabilities within 1e-4, the same class for every sample); a model that fails is refused with exit
    code 2. `dlx predict MODEL.onnx INPUT` runs an ONNX export without PyTorch.
    """
    from dlx.export import export_model
    result = export_model(model_folder(source), format.value, out)
    if json:
        print_json(result)
        return
    check = result["verification"]
    console.print(f"{result['format']} model written to {Path(result['out']) / result['file']} (export.json beside "
                  f"it); verified on {check['samples']} test samples: max |Δp| {check['max_abs_difference']:.2g}, "
                  f"same class on {check['same_class']}/{check['samples']}.", highlight=False, soft_wrap=True)


COMMANDS = [export]
