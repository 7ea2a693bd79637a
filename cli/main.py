"""The `dlx` command. Each command lives in its own `cli/*_cmd.py` module, listed in that module's
COMMANDS, and imports heavy libraries (torch, optuna, ...) only when it runs."""
from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from dlx import cli

app = typer.Typer(help="dlx: train, search and ensemble deep-learning models from YAML specs.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=True,
                  rich_markup_mode=None)  # click's plain help: typer's rich help imports ~100 ms of markdown

ORDER = ["train", "evaluate", "search", "ensemble", "distill", "predict", "export", "runs", "diff", "report", "summary",
         "config"]


def _register_commands() -> None:
    commands, groups = [], []
    for info in pkgutil.iter_modules(cli.__path__):
        if info.name.endswith("_cmd"):
            module = importlib.import_module(f"dlx.cli.{info.name}")
            commands.extend(module.COMMANDS)
            groups.extend(getattr(module, "GROUPS", []))  # sub-command groups: `dlx import keras`
    rank = {name: i for i, name in enumerate(ORDER)}
    for command in sorted(commands, key=lambda f: rank.get(f.__name__, len(ORDER))):
        app.command()(command)
    for group in groups:
        app.add_typer(group)


_register_commands()


def main() -> None:
    try:
        app()  # ends with SystemExit, whatever the outcome
    except SystemExit as stop:
        distributed = sys.modules.get("dlx.train.distributed")  # imported by the commands that train
        if distributed is not None:
            distributed.exit_rank(stop.code)  # a rank of a process group ends there
        raise


if __name__ == "__main__":
    main()
