"""`dlx import keras MODEL [--out SPEC.yaml]`: a Keras model's architecture as a dlx spec."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dlx.cli.common import console, friendly_errors

import_app = typer.Typer(name="import", help="Turn another framework's model into a dlx spec.",
                         no_args_is_help=True, rich_markup_mode=None)


@import_app.command("keras")
@friendly_errors
def keras(model: Annotated[Path, typer.Argument(help="A Keras 3 model file (.keras) or its model.to_json() JSON.")],
          out: Annotated[Optional[Path], typer.Option(
              "--out", help="Write the spec here (YAML) instead of printing it.")] = None) -> None:
    """A Keras Sequential or Functional model's architecture (no weights) as a dlx spec."""
    from dlx.archs import keras_spec, write_spec
    result, text = keras_spec(model)
    if out is None:
        typer.echo(text, nl=False)
        return
    write_spec(out, text)
    shape = ",".join(map(str, result.input_shape))
    classes = f" --classes {result.outputs}" if result.outputs else ""
    console.print(f"wrote {out}: {len(result.layers)} layers; check it with "
                  f"`dlx summary {out} --input-shape {shape}{classes}`", highlight=False, soft_wrap=True)


COMMANDS: list = []
GROUPS = [import_app]
