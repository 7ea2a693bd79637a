"""`dlx config`: print the fully resolved spec."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlx.cli.common import JsonOption, SetOption, friendly_errors, print_json


@friendly_errors
def config(config: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")], set: SetOption = None,
           json: JsonOption = False) -> None:
    """Print the fully resolved experiment spec (defaults filled in, --set applied)."""
    from dlx.archs.check import load_spec
    from dlx.experiment.load import spec_to_dict
    from dlx.experiment.yamlio import dump_yaml
    resolved = spec_to_dict(load_spec(config, set))
    if json:
        print_json(resolved)
    else:
        typer.echo(dump_yaml(resolved), nl=False)
COMMANDS = [config]
