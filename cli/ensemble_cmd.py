"""`dlx ensemble`: pool several runs with weights fitted on validation data."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import JsonOption, console, friendly_errors, print_json


class Method(str, Enum):
    weighted = "weighted"
    greedy = "greedy"
    average = "average"
    stacking = "stacking"


def _fmt(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_result(result: dict) -> None:
    from rich.table import Table
    members = Table(title=f"members ({result['method']})")
    for column in ("run", "architecture", "val acc", "val NLL", "test acc", "weight", "mean disagr.", "NLL lost w/o"):
        members.add_column(column, justify="left" if column in ("run", "architecture") else "right")
    for row in result["members"]:
        loo = row["leave_one_out"] or {}
        weight = "dropped" if row["dropped"] else _fmt(row["weight"], 3)
        members.add_row(Path(row["run"]).name, row["architecture"], _fmt(row["val_accuracy"]), _fmt(row["val_nll"]),
                        _fmt(row["test_accuracy"]), weight, _fmt(row["mean_disagreement"], 3),
                        _fmt(loo.get("val_nll_loss")))
    console.print(members)
    comparison = Table(title="validation (weights fitted here) and test")
    for column in ("", "val acc", "val NLL", "val ECE", "test acc", "test NLL", "test ECE"):
        comparison.add_column(column, justify="left" if not column else "right")
    labels = {"best_member": "best member", "average": "plain average", "ensemble": f"ensemble ({result['method']})"}
    for key, label in labels.items():
        r = result["results"][key]
        comparison.add_row(label, *(_fmt(r[s][m]) for s in ("val", "test") for m in ("accuracy", "nll", "ece")))
    console.print(comparison)
    for pair in result["near_duplicates"]:
        console.print(f"[yellow]near-duplicates:[/] {Path(pair['a']).name} and {Path(pair['b']).name} disagree on "
                      f"{pair['disagreement']:.1%} of validation samples.", highlight=False)
    for line in result["advice"]:
        console.print(line, highlight=False)
    for item in result["skipped"]:
        console.print(f"[yellow]skipped[/] {item['run']}: {item['reason']}", highlight=False)
    cache = result["cache"]
    console.print(f"predictions: {cache['hits']} from cache, {cache['misses']} computed\n"
                  f"ensemble folder: {result['ensemble_dir']}", highlight=False)


@friendly_errors
def ensemble(run_dirs: Annotated[list[Path], typer.Argument(help="Run folders or search folders (e.g. runs/*).")],
             method: Annotated[Method, typer.Option(help="How members are pooled.")] = Method.weighted,
             out: Annotated[Optional[Path], typer.Option(help="Ensemble folder (default: runs/ensemble-<time>).")] = None,
             temperature: Annotated[bool, typer.Option("--temperature", help="Fit a temperature per member first.")] = False,
             duplicate_threshold: Annotated[float, typer.Option(
                 help="Flag pairs disagreeing on fewer than this fraction of validation samples.")] = 0.02,
             json: JsonOption = False) -> None:
    """Combine runs into an ensemble with weights fitted on validation data (never on test data)."""
    from ensemble.api import build_ensemble
    result = build_ensemble(run_dirs, method=method.value, out=out, temperature=temperature,
                            duplicate_threshold=duplicate_threshold)
    if json:
        print_json(result)
    else:
        _print_result(result)


COMMANDS = [ensemble]
